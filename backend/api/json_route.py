"""The worker protocol's route class (``/api/internal``): the API's biggest and most frequent
requests (a training run reports several times a second, 200 events a batch), so the per-request
costs FastAPI adds around an endpoint matter here.

- JSON bodies are parsed by orjson: the standard library's parser was a tenth of a batch's cost.
- A plain (``def``) endpoint runs as one thread-pool call. FastAPI would also run the answer's
  validation on the thread pool (a second hop to a thread and back for a few fields); wrapped
  in a coroutine, the answer is serialised on the event loop instead.
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool


class _OrjsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            try:
                self._json = orjson.loads(body)
            except orjson.JSONDecodeError:
                # What orjson refuses and the standard library reads: NaN and Infinity literals
                # (Python's json.dumps writes them), integers beyond 64 bits. A body neither
                # reads raises json's error, which FastAPI answers with its usual 422.
                self._json = json.loads(body)
        return self._json


def on_thread(endpoint: Callable[..., Any]) -> Callable[..., Coroutine[Any, Any, Any]]:
    """``endpoint`` (blocking: it talks to the database) as a coroutine that runs it on the
    thread pool. FastAPI reads the parameters through ``__wrapped__``, so dependencies, the
    body and OpenAPI stay those of the endpoint."""

    @functools.wraps(endpoint)
    async def call(**kwargs: Any) -> Any:
        return await run_in_threadpool(endpoint, **kwargs)

    return call


class OrjsonRoute(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if not inspect.iscoroutinefunction(endpoint):
            endpoint = on_thread(endpoint)
        super().__init__(path, endpoint, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route_handler(request: Request) -> Response:
            return await handler(_OrjsonRequest(request.scope, request.receive))

        return route_handler
