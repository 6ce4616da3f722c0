"""What `turnout serve` may serve and where it may listen, decided before anything binds.

Only this machine's in-process engines are served: a remote model string is refused, so
the server can never become an open proxy to a cloud account. Off loopback an API key is
required, so a misplaced `--host 0.0.0.0` cannot hand the GPU to the whole network.
"""

from __future__ import annotations

from turnout.config import ServeSettings, Settings
from turnout.engines._checks import check_model
from turnout.engines.privacy import is_loopback_host, split_model
from turnout.engines._registry import LOCAL_ENGINES, is_local_provider
from turnout.errors import ConfigError


def served_models(settings: Settings) -> list[str]:
    """`[serve] models`, or else the distinct in-process models of the roles; each checked
    to exist here (ModelNotFound / EngineUnavailable say what is missing)."""
    models = list(dict.fromkeys(settings.serve.models))
    if not models:
        roles = (settings.roles.get(role).model for role in settings.roles.names())
        models = list(dict.fromkeys(m for m in roles if is_local_provider(split_model(m)[0])))
        if not models:
            raise ConfigError(
                "nothing to serve: no role runs on an in-process engine; name models in [serve] models "
                "or with --model (e.g. llamacpp/smollm2)"
            )
    for model in models:
        if "/" not in model:
            raise ConfigError(f"[serve] models: {model!r} has no provider: write provider/name, e.g. llamacpp/smollm2")
    remote = [m for m in models if not is_local_provider(split_model(m)[0])]
    if remote:
        engines = ", ".join(f"{provider}/…" for provider in LOCAL_ENGINES)
        raise ConfigError(
            f"[serve] models may name only this machine's in-process engines ({engines}); "
            f"{', '.join(remote)} is not one: serving it would make this server a proxy to a remote model"
        )
    for model in models:
        check_model(model)
    return models


def api_key_of(serve: ServeSettings) -> str | None:
    """The key clients must send, or None (an empty key counts as none)."""
    key = serve.api_key.get_secret_value().strip() if serve.api_key is not None else ""
    return key or None


def check_binding(serve: ServeSettings) -> None:
    """Refuse to listen beyond this machine without an API key."""
    if is_loopback_host(serve.host) or api_key_of(serve) is not None:
        return
    raise ConfigError(
        f"refusing to serve on {serve.host} without an API key: anyone who can reach this machine "
        "could run its models. Set [serve] api_key (or TURNOUT_SERVE__API_KEY, or --api-key), "
        "or bind 127.0.0.1"
    )


def serving_settings(settings: Settings) -> Settings:
    """`settings` as the server runs under them: no trace files and no call recordings unless
    config asks for them (`traces_dir`, `record_calls`): a server would leave two files per
    request, the recordings holding its clients' prompts. Spans still go to OTLP and the
    console as configured."""
    update: dict[str, object] = {}
    if "traces_dir" not in settings.model_fields_set:
        update["traces_dir"] = "off"
    if "record_calls" not in settings.model_fields_set:
        update["record_calls"] = False
    return settings.model_copy(update=update)
