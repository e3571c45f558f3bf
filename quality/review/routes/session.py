"""Signing in and out. The login form has no session yet, so it carries its own CSRF token, matched
against a cookie of the same value."""
from __future__ import annotations

import secrets
import time

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from quality.review.auth import new_token, same, session_key, token_matches
from quality.review.web import COOKIE, LOGIN_CSRF, SESSION, current_session, field, page, state


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
    store, hours = state(request).store, state(request).config.session_hours
    found = store.annotator_credentials(field(form, "annotator").strip())
    if found is None or not token_matches(field(form, "token"), found[1]):
        return login_form(request, "Unknown annotator or wrong token.", 401)
    sid = new_token()
    store.create_session(found[0], session_key(sid), new_token(), time.time() + hours * 3600)
    response = RedirectResponse("/review", status_code=303)
    response.set_cookie(SESSION, sid, max_age=int(hours * 3600), **COOKIE)
    response.delete_cookie(LOGIN_CSRF, path="/")
    return response


async def logout(request: Request) -> Response:
    """Ends the session when the form is its own; signs the browser out either way."""
    session, form = current_session(request), await request.form()
    if session and same(field(form, "csrf"), session.csrf):
        state(request).store.end_session(session.id)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION, path="/")
    return response
