"""The review queue: the next leased item for the signed-in annotator, and their decision on it."""
from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from quality.review.auth import same
from quality.review.store import DECISIONS, InvalidEdit, Session, StaleSubmission, unified_line_breaks
from quality.review.web import field, page, require_session, state

VERSION = re.compile(r"[0-9]{1,9}")  # ASCII digits only: str.isdigit() passes "²", which int() refuses


@require_session
def review(request: Request, session: Session) -> Response:
    store = state(request).store
    lease = store.next_lease(session.annotator, state(request).config.lease_s)
    progress = store.progress(session.annotator)
    if lease is None:
        return page(request, "done.html", session=session, progress=progress)
    item = lease.item
    answers = [("chosen", item.chosen), ("rejected", item.rejected)]
    return page(request, "review.html", session=session, progress=progress, item=item,
                answers=answers if lease.chosen_left else answers[::-1])


@require_session
async def decide(request: Request, session: Session) -> Response:
    form = await request.form()

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
        state(request).store.submit(session.annotator, field(form, "item"), int(version), decision,
                                    unified_line_breaks(field(form, "comment")).strip() or None, *edited)
    except StaleSubmission as stale:
        return refused(409, str(stale))
    except InvalidEdit as invalid:
        return refused(400, f"Your edit was not saved: {invalid}.")
    return RedirectResponse("/review", status_code=303)
