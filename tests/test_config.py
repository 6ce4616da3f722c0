from pathlib import Path

import pytest

from turnout.config import DEFAULT_MODEL, ROLE_NAMES, load_settings
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
    with pytest.raises(ConfigError, match=r"roles\.planer: unknown key \(roles are planner"):
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
