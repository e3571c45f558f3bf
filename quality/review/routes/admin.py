"""The admin page (annotators, agreement, progress) and its Export, for admin annotators only."""
from __future__ import annotations

import time

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from quality.review.agreement import agreement_report
from quality.review.auth import same
from quality.review.store import Session
from quality.review.web import field, page, require_session, state


@require_session
def admin(request: Request, session: Session) -> Response:
    if not session.annotator.is_admin:
        return page(request, "message.html", 403, session=session, title="Admins only",
                    message="This page is for admin annotators.")
    app = state(request)
    return page(request, "admin.html", session=session, annotators=app.store.annotator_counts(),
                agreement=agreement_report(app.store.decisions()), progress=app.store.progress(session.annotator),
                export_to=app.export_to)


@require_session
async def admin_export(request: Request, session: Session) -> Response:
    form, app = await request.form(), state(request)
    if not session.annotator.is_admin or not same(field(form, "csrf"), session.csrf):
        return page(request, "message.html", 403, session=session, title="Not exported",
                    message="Only an admin's own form can export.")
    if app.export_to is None:
        return page(request, "message.html", 404, session=session, title="Not exported",
                    message="This app was started without an export folder.")
    lines: list[str] = []
    started = time.perf_counter()
    error = await run_in_threadpool(app.exports.run, app.export_to, lines.append)
    return page(request, "export.html", 409 if error else 200, session=session, lines=lines, error=error,
                output=app.export_to.output_dir, seconds=time.perf_counter() - started)
