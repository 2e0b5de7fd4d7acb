"""Security headers on every answer: the built UI runs under a strict Content-Security-Policy.

The UI is Vite output: module scripts and stylesheets from its own origin, no inline script, no
``eval``; Preact and uPlot set styles through the CSSOM, which ``style-src`` does not restrict,
and uPlot draws on canvases. So the policy allows the own origin only (``data:`` for images and
fonts the CSS may inline). Nothing may frame the panel (clickjacking a Cancel or Delete), and no
URL (run ids, ``?token=`` on download links) leaks through ``Referer``. FastAPI's own ``/docs``
and ``/redoc`` pages load Swagger from a CDN with inline scripts: they get every header but the
CSP.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
HEADERS: list[tuple[bytes, bytes]] = [
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
_NO_CSP = ("/docs", "/redoc")


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        extra = list(HEADERS)
        if not path.startswith(_NO_CSP):
            extra.append((b"content-security-policy", CSP.encode()))

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = [
                    *message.get("headers", []),
                    *((k, v) for k, v in extra if k not in present),
                ]
            await send(message)

        await self.app(scope, receive, with_headers)
