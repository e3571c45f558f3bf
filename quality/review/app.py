"""The review pages (Starlette, server-rendered Jinja templates, one small script for shortcuts).

Every response carries a strict Content-Security-Policy: only the app's own script and styles run,
so even markup that got into an answer could not execute. Writes need a session cookie and the
session's CSRF token; the annotator always comes from the session, never from the form."""
from __future__ import annotations

import secrets
import time
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from quality.review.agreement import agreement_report
from quality.review.auth import new_token, same, session_key, token_matches
from quality.review.config import ReviewConfig
from quality.review.rendering import safe_markdown
from quality.review.store import DECISIONS, ReviewStore, StaleSubmission

HERE = Path(__file__).parent
SESSION, LOGIN_CSRF = "review_session", "review_login_csrf"
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                               "form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
COOKIE = {"httponly": True, "samesite": "strict", "path": "/"}


class SecurityHeaders(BaseHTTPMiddleware):
    async def dispatch(self, request, call_next):
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response


def create_app(store: ReviewStore, config: ReviewConfig) -> Starlette:
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.filters["markdown"] = safe_markdown

    def current_session(request: Request):
        sid = request.cookies.get(SESSION)
        return store.session(session_key(sid), time.time()) if sid else None

    def page(request: Request, name: str, status: int = 200, **context) -> Response:
        return templates.TemplateResponse(request, name, context, status_code=status)

    def login_form(request: Request, error: str | None = None, status: int = 200) -> Response:
        csrf = secrets.token_urlsafe(24)
        response = page(request, "login.html", status, csrf=csrf, error=error)
        response.set_cookie(LOGIN_CSRF, csrf, **COOKIE)
        return response

    def home(request: Request) -> Response:
        return RedirectResponse("/review" if current_session(request) else "/login", status_code=303)

    async def login(request: Request) -> Response:
        if request.method == "GET":
            return login_form(request)
        form = await request.form()
        if not same(form.get("csrf"), request.cookies.get(LOGIN_CSRF)):
            return login_form(request, "The form expired; please sign in again.", 403)
        found = store.annotator_credentials(str(form.get("annotator", "")).strip())
        if found is None or not token_matches(str(form.get("token", "")), found[1]):
            return login_form(request, "Unknown annotator or wrong token.", 401)
        sid = new_token()
        store.create_session(found[0], session_key(sid), new_token(), time.time() + config.session_hours * 3600)
        response = RedirectResponse("/review", status_code=303)
        response.set_cookie(SESSION, sid, max_age=int(config.session_hours * 3600), **COOKIE)
        response.delete_cookie(LOGIN_CSRF, path="/")
        return response

    async def logout(request: Request) -> Response:
        session, form = current_session(request), await request.form()
        if session and same(form.get("csrf"), session.csrf):
            store.end_session(session.id)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION, path="/")
        return response

    def review(request: Request) -> Response:
        session = current_session(request)
        if session is None:
            return RedirectResponse("/login", status_code=303)
        lease = store.next_lease(session.annotator, config.lease_s)
        progress = store.progress(session.annotator)
        if lease is None:
            return page(request, "done.html", session=session, progress=progress)
        item = lease.item
        answers = [("chosen", item.chosen), ("rejected", item.rejected)]
        return page(request, "review.html", session=session, progress=progress, item=item,
                    answers=answers if lease.chosen_left else answers[::-1])

    async def decide(request: Request) -> Response:
        session, form = current_session(request), await request.form()
        if session is None:
            return RedirectResponse("/login", status_code=303)
        if not same(form.get("csrf"), session.csrf):
            return page(request, "message.html", 403, session=session, title="Not saved",
                        message="The form's security token is missing or wrong. Reload the page and decide again.")
        decision = str(form.get("decision", ""))
        if decision not in DECISIONS:
            return page(request, "message.html", 400, session=session, title="Not saved",
                        message=f"Unknown decision {decision!r}.")
        edited = (str(form.get("chosen", "")), str(form.get("rejected", ""))) if decision == "edit" else (None, None)
        if decision == "edit" and not all(text.strip() for text in edited):
            return page(request, "message.html", 400, session=session, title="Not saved",
                        message="An edit needs both answers; use Reject both to drop the pair.")
        version = str(form.get("version", ""))
        if not version.isdigit():
            return page(request, "message.html", 400, session=session, title="Not saved",
                        message="The form lacks the item's version. Reload the page and decide again.")
        try:
            store.submit(session.annotator, str(form.get("item", "")), int(version), decision,
                         str(form.get("comment", "")).strip() or None, *edited)
        except StaleSubmission as stale:
            return page(request, "message.html", 409, session=session, title="Not saved", message=str(stale))
        return RedirectResponse("/review", status_code=303)

    def admin(request: Request) -> Response:
        session = current_session(request)
        if session is None:
            return RedirectResponse("/login", status_code=303)
        if not session.annotator.is_admin:
            return page(request, "message.html", 403, session=session, title="Admins only",
                        message="This page is for admin annotators.")
        return page(request, "admin.html", session=session, annotators=store.annotator_counts(),
                    agreement=agreement_report(store.decisions()), progress=store.progress(session.annotator))

    return Starlette(
        routes=[
            Route("/", home), Route("/login", login, methods=["GET", "POST"]), Route("/logout", logout, methods=["POST"]),
            Route("/review", review), Route("/review/decide", decide, methods=["POST"]), Route("/admin", admin),
            Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
        ],
        middleware=[Middleware(SecurityHeaders)],
    )
