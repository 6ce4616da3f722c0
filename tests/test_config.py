import re
from pathlib import Path

import pytest

from turnout.config import DEFAULT_MODEL, ROLE_NAMES, load_settings
from turnout.engines import check_policy, model_locality
from turnout.graphs import build_hybrid_graph
from turnout.errors import ConfigError


def test_without_config_every_role_runs_on_the_embedded_model() -> None:
    settings = load_settings()
    assert {settings.roles.get(role).model for role in ROLE_NAMES} == {DEFAULT_MODEL}


def test_toml_file_in_working_directory_is_read(tmp_path: Path) -> None:
    (tmp_path / "turnout.toml").write_text(
        '[roles]\nplanner = "anthropic/claude-sonnet-4-5"\n'
        '[roles.coder]\nmodel = "hosted_vllm/qwen"\napi_base = "http://127.0.0.1:8000/v1"\n'
        'fallbacks = ["llamacpp/smollm2"]\n'
        "[llamacpp]\nn_ctx = 2048\n"
    )
    settings = load_settings()
    assert settings.roles.planner.model == "anthropic/claude-sonnet-4-5"  # type: ignore[union-attr]
    coder = settings.roles.get("coder")
    assert (coder.model, coder.api_base, coder.fallbacks) == (
        "hosted_vllm/qwen", "http://127.0.0.1:8000/v1", ["llamacpp/smollm2"]
    )
    assert settings.llamacpp.n_ctx == 2048


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "turnout.toml").write_text('[roles]\nplanner = "anthropic/claude-sonnet-4-5"\n')
    monkeypatch.setenv("TURNOUT_ROLES__PLANNER", "openai/gpt-5")
    monkeypatch.setenv("TURNOUT_TIMEOUT_S", "7.5")
    settings = load_settings()
    assert settings.roles.get("planner").model == "openai/gpt-5"
    assert settings.timeout_s == 7.5


def test_explicit_config_path_is_used(tmp_path: Path) -> None:
    path = tmp_path / "other.toml"
    path.write_text('[roles]\nrouter = "scripted/router"\n')
    assert load_settings(path).roles.get("router").model == "scripted/router"


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")


def test_misspelt_role_names_the_key_and_the_valid_roles(tmp_path: Path) -> None:
    (tmp_path / "turnout.toml").write_text('[roles]\nplaner = "openai/gpt-5"\n')
    with pytest.raises(ConfigError, match=r"roles: unknown role 'planer': roles are planner, .*; did you mean 'planner'\?"):
        load_settings()


def test_model_string_without_provider_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TURNOUT_ROLES__CODER", "gpt-5")
    with pytest.raises(ConfigError, match="roles.coder.*has no provider"):
        load_settings()


def test_malformed_toml_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "turnout.toml").write_text("[roles\nplanner = ")
    with pytest.raises(ConfigError, match="cannot read config"):
        load_settings()


def test_bad_value_names_the_key(tmp_path: Path) -> None:
    (tmp_path / "turnout.toml").write_text("timeout_s = -1\n")
    with pytest.raises(ConfigError, match="timeout_s"):
        load_settings()


def test_policy_accepts_aliases_and_per_role_shorthand() -> None:

    settings = load_settings(policy={"mode": "none", "roles": {"planner": "no-code", "coder": {"on_forbidden": "outline"}}})
    assert settings.policy.for_role("planner") == ("no-code", "refuse")
    assert settings.policy.for_role("coder") == ("local-only", "outline")
    assert settings.policy.for_role(None) == ("local-only", "refuse")


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ({"mode": "closed"}, "policy.mode: Input should be 'open', 'no-code' or 'local-only'"),
        ({"roles": {"plannr": "no-code"}}, "policy.roles.plannr"),
        ({"roles": {"coder": {"on_forbiden": "outline"}}}, "policy.roles.coder.on_forbiden: unknown key"),
        ({"local_hosts": ["10.0.0.0/33"]}, "'10.0.0.0/33' is not a network"),
        ({"on_forbidden": "drop"}, "policy.on_forbidden"),
    ],
)
def test_malformed_policy_names_the_offending_key(policy: dict[str, object], message: str) -> None:

    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings(policy=policy)


@pytest.mark.parametrize(
    ("api_base", "hosts", "expected"),
    [
        ("http://10.1.2.3:8000/v1", ["10.0.0.0/8"], "local"),
        ("http://gpu.internal:8000/v1", ["gpu.internal:8000"], "local"),
        ("http://gpu.internal:9000/v1", ["gpu.internal:8000"], "remote"),
        ("http://gpu.internal/v1", ["gpu.internal"], "local"),
        ("http://203.0.113.9/v1", ["10.0.0.0/8"], "remote"),
        ("http://127.0.0.1:4000/v1", [], "local"),
    ],
)
def test_local_hosts_make_on_prem_servers_local(api_base: str, hosts: list[str], expected: str) -> None:

    settings = load_settings(policy={"local_hosts": hosts})
    assert model_locality("openai/served", api_base, settings) == expected


def test_a_role_can_declare_a_loopback_proxy_remote() -> None:

    settings = load_settings(roles={"planner": {"model": "openai/x", "api_base": "http://127.0.0.1:4000", "locality": "remote"}})
    config = settings.roles.get("planner")
    assert model_locality(config.model, config.api_base, settings, config.locality) == "remote"


def test_local_only_with_a_remote_role_fails_at_start_up_naming_the_role_and_the_fix() -> None:

    settings = load_settings(
        roles={"planner": "anthropic/claude-sonnet-4-5", "coder": {"model": "llamacpp/smollm2", "fallbacks": ["openai/gpt-4o"]}},
        policy={"mode": "local-only"},
        hybrid={"escalate_to": "openai/gpt-4o"},
    )
    with pytest.raises(ConfigError) as error:
        check_policy(settings, models={"[hybrid] escalate_to": settings.hybrid.escalate_to})
    message = str(error.value)
    assert "role planner: its model anthropic/claude-sonnet-4-5 is remote" in message
    assert "set [roles] planner to a local model" in message
    assert "role coder: its fallback 1 openai/gpt-4o is remote" in message
    assert "[hybrid] escalate_to = 'openai/gpt-4o' is remote" in message
    with pytest.raises(ConfigError, match="role planner"):
        build_hybrid_graph(settings=settings)


def test_offline_overrides_every_role_policy() -> None:

    settings = load_settings(policy={"mode": "open", "roles": {"planner": "open"}}).with_policy("local-only", everywhere=True)
    assert {settings.policy.for_role(r)[0] for r in ("planner", "coder", None)} == {"local-only"}


def test_the_readme_configuration_example_loads(tmp_path: Path) -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    section = readme[readme.index("## Configuration"):]
    example = section[section.index("```toml") + len("```toml"):]
    example = example[: example.index("```")]
    (tmp_path / "turnout.toml").write_text(example)
    settings = load_settings(tmp_path / "turnout.toml")
    assert settings.policy.for_role("coder") == ("local-only", "outline")
    assert settings.roles.get("coder").fallbacks == ["llamacpp/smollm2"] and settings.timeout_s == 120


@pytest.mark.parametrize("typed, planner, coder", [
    ("local-only", "local-only", "local-only"),
    ("no-code", "no-code", "local-only"),  # config may make a role stricter than what was typed, never looser
    ("open", "open", "local-only"),
])
def test_a_policy_typed_for_the_run_is_a_floor_config_cannot_loosen(
    tmp_path: Path, typed: str, planner: str, coder: str
) -> None:
    from turnout.cli._common import settings_from

    config = tmp_path / "turnout.toml"
    config.write_text('[policy]\nmode = "open"\n\n[policy.roles.planner]\nmode = "open"\n\n'
                      '[policy.roles.coder]\nmode = "local-only"\n')
    settings = settings_from(config, traced=False, policy=typed)
    assert settings.policy.for_role("planner")[0] == planner and settings.policy.for_role("coder")[0] == coder
    assert settings.policy.for_role(None)[0] == typed


def test_a_policy_set_in_the_environment_is_a_floor_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "turnout.toml"
    config.write_text('[policy.roles.planner]\nmode = "open"\n')
    monkeypatch.setenv("TURNOUT_POLICY__MODE", "no-code")
    assert load_settings(config).policy.for_role("planner")[0] == "no-code"
    monkeypatch.delenv("TURNOUT_POLICY__MODE")
    assert load_settings(config).policy.for_role("planner")[0] == "open"
