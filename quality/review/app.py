"""The review pages (Starlette, server-rendered Jinja templates, one small script for shortcuts).

Every response carries a strict Content-Security-Policy: only the app's own script and styles run,
so even markup that got into an answer could not execute. Writes need a session cookie and the
session's CSRF token; the annotator always comes from the session, never from the form.

The handlers live in routes/, one module per resource; what they share (the app's state on
``app.state.review``, and ``require_session``) in web.py. Given an export folder, the app also
exports from its admin page, warmed up in the background when it starts (warm_export.py)."""
from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from quality.review.config import ReviewConfig
from quality.review.export import ExportConfig
from quality.review.rendering import safe_markdown
from quality.review.routes.admin import admin, admin_export
from quality.review.routes.review import decide, review
from quality.review.routes.session import home, login, logout
from quality.review.store import ReviewStore
from quality.review.warm_export import WarmExport
from quality.review.web import ReviewState

HERE = Path(__file__).parent
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                               "form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
ROUTES = [
    Route("/", home), Route("/login", login, methods=["GET", "POST"]), Route("/logout", logout, methods=["POST"]),
    Route("/review", review), Route("/review/decide", decide, methods=["POST"]), Route("/admin", admin),
    Route("/admin/export", admin_export, methods=["POST"]),
    Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
]


class SecurityHeaders(BaseHTTPMiddleware):
    async def dispatch(self, request, call_next):
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response


def create_app(store: ReviewStore, config: ReviewConfig, export_to: ExportConfig | None = None) -> Starlette:
    """``export_to``: what the admin page's Export publishes (None: no Export there)."""
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.filters["markdown"] = safe_markdown
    exports = WarmExport(store)
    if export_to is not None:
        exports.start_warm_up(export_to)
    app = Starlette(routes=ROUTES, middleware=[Middleware(SecurityHeaders)])
    app.state.review = ReviewState(store, config, templates, exports, export_to)
    return app
