"""What every page handler shares: the app's state, a rendered page, a form field, and
``require_session``, the one check that a signed-in annotator is behind a request."""
from __future__ import annotations

import inspect
import time
from dataclasses import dataclass
from functools import wraps

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from quality.review.auth import session_key
from quality.review.config import ReviewConfig
from quality.review.export import ExportConfig
from quality.review.store import ReviewStore, Session
from quality.review.warm_export import WarmExport

SESSION, LOGIN_CSRF = "review_session", "review_login_csrf"
COOKIE = {"httponly": True, "samesite": "strict", "path": "/"}


@dataclass(frozen=True)
class ReviewState:
    """One app's store, settings and helpers; kept on ``app.state.review`` for the handlers."""
    store: ReviewStore
    config: ReviewConfig
    templates: Jinja2Templates
    exports: WarmExport
    export_to: ExportConfig | None  # what the admin page's Export publishes (None: no Export there)


def state(request: Request) -> ReviewState:
    return request.app.state.review


def field(form, name: str) -> str:
    """A form field as text. A client may send anything: a field that is missing or a file upload is empty."""
    value = form.get(name)
    return value if isinstance(value, str) else ""


def page(request: Request, name: str, status: int = 200, **context) -> Response:
    return state(request).templates.TemplateResponse(request, name, context, status_code=status)


def current_session(request: Request) -> Session | None:
    """The live session named by the request's cookie, if any (the store keeps only the id's hash)."""
    sid = request.cookies.get(SESSION)
    return state(request).store.session(session_key(sid), time.time()) if sid else None


def require_session(handler):
    """Route handlers that need a signed-in annotator take ``(request, session)``: without a live session
    the client is sent to sign in. A plain function stays plain, so Starlette still runs it in its
    thread pool (the store's calls block); a coroutine's check runs on the event loop."""
    if inspect.iscoroutinefunction(handler):
        @wraps(handler)
        async def endpoint(request: Request) -> Response:
            session = current_session(request)
            return await handler(request, session) if session else to_login()
    else:
        @wraps(handler)
        def endpoint(request: Request) -> Response:
            session = current_session(request)
            return handler(request, session) if session else to_login()
    return endpoint


def to_login() -> Response:
    return RedirectResponse("/login", status_code=303)

