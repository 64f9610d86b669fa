"""The course's service behind the managed platforms' container contracts.

Introduced in Chapter 14.

A managed hall runs your container and talks to it through a small fixed contract:

- **Amazon SageMaker** (bring your own container): the container is started as
  ``docker run IMAGE serve`` and must answer ``GET /ping`` (200 when healthy) and
  ``POST /invocations`` on port 8080; the request's ``Content-Type`` says what the body is.
- **Google Vertex AI** (custom container): the server listens on ``AIP_HTTP_PORT`` (8080 by
  default), answers health checks on ``AIP_HEALTH_ROUTE`` and predictions on
  ``AIP_PREDICT_ROUTE``; a prediction request is JSON ``{"instances": [...]}`` (binary data as
  ``{"b64": "..."}``) and the answer is JSON ``{"predictions": [...]}``, one per instance.

Neither contract needs a new model server. ``create_app`` builds the course's own service and
puts the platform's routes in front of it; each route translates the platform's request into
the service's own form upload, sends it through the same app in process (the same validation,
micro-batcher, metrics and API keys), and translates the answer back. A bad request gets the
service's one error body with a 4xx and a reason, never a 500.

    uvicorn --factory vampire_detector.platforms:sagemaker_app --port 8080
    AIP_HTTP_PORT=8080 uvicorn --factory vampire_detector.platforms:vertex_app --port 8080
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import httpx2 as httpx
from fastapi import FastAPI, Request, Response
from fastapi.routing import APIRoute
from starlette.responses import JSONResponse

from vampire_detector.service import app as service_app
from vampire_detector.service.auth import HEADER
from vampire_detector.service.errors import ServiceError
from vampire_detector.service.settings import ServiceSettings
from vampire_detector.service.uploads import instances_of
from vampire_detector.torch_serving import load_any

SAGEMAKER_PORT = 8080
VERTEX_DEFAULT_PORT = 8080
VERTEX_HEALTH = "/v1/endpoints/local/deployedModels/vampirenet"  # Vertex's own default form
VERTEX_PREDICT = VERTEX_HEALTH + ":predict"
IMAGE_TYPES = {"image/png", "image/jpeg", "image/webp", "application/x-image",
               "application/octet-stream"}
JSON_TYPES = {"", "*/*", "application/json", "application/*"}


def media_type(value: str | None) -> str:
    return (value or "").split(";")[0].strip().lower()


async def read_capped(request: Request, limit: int) -> bytes:
    """The whole body, refused with a 413 as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ServiceError(413, "too_large", f"the request body may be at most {limit:,} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise ServiceError(413, "too_large",
                               f"the request body may be at most {limit:,} bytes")
    return bytes(body)


def require_json_answer(request: Request) -> None:
    """406 for a client that accepts only something other than JSON."""
    accepted = {media_type(part) for part in request.headers.get("accept", "").split(",")}
    if not accepted & JSON_TYPES:
        raise ServiceError(406, "not_acceptable", "this model answers application/json only")


class Inner:
    """The service's own routes, called in process through its ASGI app."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    async def call(self, request: Request, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {HEADER: request.headers[HEADER]} if HEADER in request.headers else {}
        transport = httpx.ASGITransport(app=self.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service",
                                     timeout=60.0) as client:
            return await client.request(method, path, headers=headers, **kwargs)

    async def ready(self, request: Request) -> bool:
        return (await self.call(request, "GET", "/ready")).status_code == 200

    async def predict(self, request: Request, images: list[bytes],
                      content_type: str = "application/octet-stream") -> list[dict[str, Any]]:
        """Predictions for ``images`` through ``/predict/batch``; its refusals pass through."""
        files = [("images", (f"instance-{i}", data, content_type))
                 for i, data in enumerate(images)]
        answer = await self.call(request, "POST", "/predict/batch", files=files)
        if answer.status_code != 200:
            raise Passed(answer)
        return answer.json()["predictions"]


class Passed(Exception):  # not an error of ours: the service's own answer, passed back
    """The service refused: its status and its error body go back to the platform as they are."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def passed_through(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, Passed)
    headers = {k: v for k, v in exc.response.headers.items() if k.lower() in {"retry-after"}}
    return Response(exc.response.content, exc.response.status_code, headers=headers,
                    media_type="application/json")


def in_front(app: FastAPI, path: str, endpoint: Callable, methods: list[str]) -> None:
    """Add a route that wins over the service's own (a platform may name ``/health``)."""
    app.add_api_route(path, endpoint, methods=methods, include_in_schema=True)
    route = app.router.routes.pop()
    assert isinstance(route, APIRoute)
    app.router.routes.insert(0, route)


def platform_app(settings: ServiceSettings | None, loader: Callable | None,
                 options: Mapping[str, Any]) -> tuple[FastAPI, Inner]:
    app = service_app.create_app(settings, loader=loader or load_any, **options)
    app.add_exception_handler(Passed, passed_through)
    return app, Inner(app)


def sagemaker_app(settings: ServiceSettings | None = None, *,
                  loader: Callable | None = None, **options: Any) -> FastAPI:
    """The service with SageMaker's ``/ping`` and ``/invocations`` (one image per request).

    ``options`` go to the service's ``create_app`` (e.g. ``load_in_background``).
    """
    app, inner = platform_app(settings, loader, options)
    settings = settings or ServiceSettings()

    async def ping(request: Request) -> Response:
        ready = await inner.ready(request)
        return Response(status_code=200 if ready else 503)  # the body is not read

    async def invocations(request: Request) -> JSONResponse:
        require_json_answer(request)
        kind = media_type(request.headers.get("content-type"))
        if kind not in IMAGE_TYPES:
            raise ServiceError(415, "unsupported_media_type",
                               f"send the image bytes as {', '.join(sorted(IMAGE_TYPES))}, "
                               f"not {kind or 'an untyped body'}")
        data = await read_capped(request, settings.max_upload_bytes)
        if not data:
            raise ServiceError(400, "empty", "the request body is empty: send one image")
        declared = "application/octet-stream" if kind == "application/x-image" else kind
        (prediction,) = await inner.predict(request, [data], declared)
        return JSONResponse(prediction)

    in_front(app, "/ping", ping, ["GET"])
    in_front(app, "/invocations", invocations, ["POST"])
    app.state.platform = {"name": "sagemaker", "port": SAGEMAKER_PORT,
                          "health": "/ping", "predict": "/invocations"}
    return app


def vertex_routes(env: Mapping[str, str]) -> tuple[int, str, str]:
    """Port, health route and predict route from Vertex AI's ``AIP_*`` variables."""
    port = int(env.get("AIP_HTTP_PORT", VERTEX_DEFAULT_PORT))
    return (port, env.get("AIP_HEALTH_ROUTE", VERTEX_HEALTH),
            env.get("AIP_PREDICT_ROUTE", VERTEX_PREDICT))


def vertex_app(settings: ServiceSettings | None = None, *, loader: Callable | None = None,
               env: Mapping[str, str] | None = None, **options: Any) -> FastAPI:
    """The service with Vertex AI's health and predict routes, named by ``AIP_*``."""
    app, inner = platform_app(settings, loader, options)
    settings = settings or ServiceSettings()
    port, health_route, predict_route = vertex_routes(os.environ if env is None else env)
    # base64 is 4/3 of the bytes; a little room for the JSON around each instance
    limit = settings.max_batch_files * (settings.max_upload_bytes * 4 // 3 + 64) + 1024

    async def health(request: Request) -> Response:
        ready = await inner.ready(request)
        return JSONResponse({"ready": ready}, status_code=200 if ready else 503)

    async def predict(request: Request) -> JSONResponse:
        require_json_answer(request)
        kind = media_type(request.headers.get("content-type"))
        if kind not in {"application/json", ""}:
            raise ServiceError(415, "unsupported_media_type", f"send application/json, not {kind}")
        images = instances_of(await read_capped(request, limit), settings.max_batch_files)
        return JSONResponse({"predictions": await inner.predict(request, images)})

    in_front(app, health_route, health, ["GET"])
    in_front(app, predict_route, predict, ["POST"])
    app.state.platform = {"name": "vertex", "port": port, "health": health_route,
                          "predict": predict_route}
    return app
