"""The review pages (Starlette, server-rendered Jinja templates, one small script for shortcuts).

Every response carries a strict Content-Security-Policy: only the app's own script and styles run,
so even markup that got into an answer could not execute. Writes need a session cookie and the
session's CSRF token; the annotator always comes from the session, never from the form.

Given an export folder, the app also exports from its admin page. The gate's libraries (Great Expectations,
pandas, matplotlib) take longer to import and set up than a small export takes to run, so the app exports
once into a scratch folder in the background when it starts, and every export after that runs warm."""
from __future__ import annotations

import re
import secrets
import tempfile
import threading
import time
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from core.errors import exit_code
from quality.review.agreement import agreement_report
from quality.review.auth import new_token, same, session_key, token_matches
from quality.review.config import ReviewConfig
from quality.review.export import ExportConfig, export
from quality.review.rendering import safe_markdown
from quality.review.store import DECISIONS, InvalidEdit, ReviewStore, StaleSubmission, unified_line_breaks

HERE = Path(__file__).parent
SESSION, LOGIN_CSRF = "review_session", "review_login_csrf"
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                               "form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
COOKIE = {"httponly": True, "samesite": "strict", "path": "/"}
VERSION = re.compile(r"[0-9]{1,9}")  # ASCII digits only: str.isdigit() passes "²", which int() refuses


def field(form, name: str) -> str:
    """A form field as text. A client may send anything: a field that is missing or a file upload is empty."""
    value = form.get(name)
    return value if isinstance(value, str) else ""


class SecurityHeaders(BaseHTTPMiddleware):
    async def dispatch(self, request, call_next):
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response


def create_app(store: ReviewStore, config: ReviewConfig, export_to: ExportConfig | None = None) -> Starlette:
    """``export_to``: what the admin page's Export publishes (None: no Export there)."""
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.filters["markdown"] = safe_markdown
    exporting = threading.Lock()  # one export at a time: same folder, and the gate's charts are not thread-safe

    def run_export(to: ExportConfig, echo) -> str | None:
        """Export; the message of an expected error that stopped it (a failed gate, a folder it must not replace)."""
        with exporting:
            try:
                export(store, to, echo=echo)
            except Exception as error:
                if exit_code(error) is None:
                    raise
                return str(error)
        return None

    def warm_up() -> None:
        with tempfile.TemporaryDirectory(prefix="review-warm-up-") as scratch:
            run_export(to=export_to.model_copy(update={"output_dir": f"{scratch}/reviewed"}), echo=lambda _: None)

    if export_to is not None:
        threading.Thread(target=warm_up, name="warm-up-export", daemon=True).start()

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
        if not same(field(form, "csrf"), request.cookies.get(LOGIN_CSRF)):
            return login_form(request, "The form expired; please sign in again.", 403)
        found = store.annotator_credentials(field(form, "annotator").strip())
        if found is None or not token_matches(field(form, "token"), found[1]):
            return login_form(request, "Unknown annotator or wrong token.", 401)
        sid = new_token()
        store.create_session(found[0], session_key(sid), new_token(), time.time() + config.session_hours * 3600)
        response = RedirectResponse("/review", status_code=303)
        response.set_cookie(SESSION, sid, max_age=int(config.session_hours * 3600), **COOKIE)
        response.delete_cookie(LOGIN_CSRF, path="/")
        return response

    async def logout(request: Request) -> Response:
        session, form = current_session(request), await request.form()
        if session and same(field(form, "csrf"), session.csrf):
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

        def refused(status: int, message: str) -> Response:
            return page(request, "message.html", status, session=session, title="Not saved", message=message)

        if not same(field(form, "csrf"), session.csrf):
            return refused(403, "The form's security token is missing or wrong. Reload the page and decide again.")
        decision = field(form, "decision")
        if decision not in DECISIONS:
            return refused(400, f"Unknown decision {decision[:40]!r}.")
        version = field(form, "version")
        if not VERSION.fullmatch(version):
            return refused(400, "The form lacks the item's version. Reload the page and decide again.")
        edited = (field(form, "chosen"), field(form, "rejected")) if decision == "edit" else (None, None)
        try:
            store.submit(session.annotator, field(form, "item"), int(version), decision,
                         unified_line_breaks(field(form, "comment")).strip() or None, *edited)
        except StaleSubmission as stale:
            return refused(409, str(stale))
        except InvalidEdit as invalid:
            return refused(400, f"Your edit was not saved: {invalid}.")
        return RedirectResponse("/review", status_code=303)

    def admin(request: Request) -> Response:
        session = current_session(request)
        if session is None:
            return RedirectResponse("/login", status_code=303)
        if not session.annotator.is_admin:
            return page(request, "message.html", 403, session=session, title="Admins only",
                        message="This page is for admin annotators.")
        return page(request, "admin.html", session=session, annotators=store.annotator_counts(),
                    agreement=agreement_report(store.decisions()), progress=store.progress(session.annotator),
                    export_to=export_to)

    async def admin_export(request: Request) -> Response:
        session, form = current_session(request), await request.form()
        if session is None:
            return RedirectResponse("/login", status_code=303)
        if not session.annotator.is_admin or not same(field(form, "csrf"), session.csrf):
            return page(request, "message.html", 403, session=session, title="Not exported",
                        message="Only an admin's own form can export.")
        if export_to is None:
            return page(request, "message.html", 404, session=session, title="Not exported",
                        message="This app was started without an export folder.")
        lines: list[str] = []
        started = time.perf_counter()
        error = await run_in_threadpool(run_export, export_to, lines.append)
        return page(request, "export.html", 409 if error else 200, session=session, lines=lines, error=error,
                    output=export_to.output_dir, seconds=time.perf_counter() - started)

    return Starlette(
        routes=[
            Route("/", home), Route("/login", login, methods=["GET", "POST"]), Route("/logout", logout, methods=["POST"]),
            Route("/review", review), Route("/review/decide", decide, methods=["POST"]), Route("/admin", admin),
            Route("/admin/export", admin_export, methods=["POST"]),
            Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
        ],
        middleware=[Middleware(SecurityHeaders)],
    )
