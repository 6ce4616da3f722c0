"""The FastAPI app: routes, the API key check, the body limit and the error handlers."""

from __future__ import annotations

import hmac
import time
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from starlette.responses import Response

from turnout.config import Settings
from turnout.engines import UsageMeter
from turnout.engines._provider import litellm_module
from turnout.serve._admission import Admission
from turnout.serve._body import RequestBody
from turnout.serve._chat import Chat, answer, parse
from turnout.serve._config import (
    api_key_of,
    check_binding,
    served_models,
    serving_settings,
)
from turnout.serve._errors import ApiError, install
from turnout.serve._protocol import ModelCard, ModelList


def _bearer_check(key: str | None) -> Any:
    expected = key.encode() if key is not None else None

    async def require_key(request: Request) -> None:
        if expected is None:
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
            raise ApiError(
                401, "Missing or incorrect API key: send the server's key as `Authorization: Bearer <key>`.",
                code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"},
            )

    return require_key


def build_app(settings: Settings) -> FastAPI:
    settings = serving_settings(settings)
    check_binding(settings.serve)
    models = served_models(settings)
    litellm_module()  # loaded now, not by the first request (about two seconds)
    started = int(time.time())
    chat = Chat(
        settings=settings,
        models={model: started for model in models},
        admission=Admission(settings.serve.max_concurrency, settings.serve.max_queue),
        meter=UsageMeter(),
    )
    app = FastAPI(title="turnout serve", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.chat = chat
    install(app)
    app.add_middleware(RequestBody, max_bytes=settings.serve.max_body_bytes, timeout_s=settings.serve.request_timeout_s)

    @app.get("/health")
    @app.get("/healthz")
    async def health() -> dict[str, Any]:
        """Readiness: the models were found at start-up, and what the server is doing now."""
        totals = chat.meter.totals
        return {
            "status": "ok",
            "load": chat.admission.load().model_dump(),
            "served": {"calls": totals.calls, "tokens": totals.tokens},
        }

    v1 = APIRouter(prefix="/v1", dependencies=[Depends(_bearer_check(api_key_of(settings.serve)))])

    @v1.get("/models")
    async def list_models() -> dict[str, Any]:
        cards = [ModelCard(id=model, created=created) for model, created in chat.models.items()]
        return ModelList(data=cards).model_dump()

    @v1.get("/models/{model:path}")
    async def get_model(model: str) -> dict[str, Any]:
        if model not in chat.models:
            raise ApiError(404, f"The model `{model}` does not exist on this server.", param="model", code="model_not_found")
        return ModelCard(id=model, created=chat.models[model]).model_dump()

    @v1.post("/chat/completions")
    async def chat_completions(request: Request) -> Response:
        return await answer(await parse(request), request, chat)

    app.include_router(v1)
    return app
