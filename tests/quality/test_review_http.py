"""The review app over real HTTP on loopback: nothing is written without a session and its CSRF
token, nobody submits as someone else, and twenty annotators at once lose no decision."""
from __future__ import annotations

import threading
from collections import Counter

import json

import httpx
import pytest
from conftest import published
from review_helpers import decide, hidden, next_form, review_store, serve, sign_in

from quality.review.export import ExportConfig


@pytest.fixture
def app(tmp_path):
    store = review_store(tmp_path / "r.sqlite", {"ann": False, "bob": False, "boss": True}, items=4)
    served = serve(store)
    yield store, served.url
    served.stop()


def test_writes_need_a_session_and_its_csrf_token(app):
    store, url = app
    client = sign_in(url, "ann")
    form = next_form(client)
    anonymous = httpx.Client(base_url=url, follow_redirects=False)
    assert anonymous.post("/review/decide", data={**form, "decision": "keep"}).headers["location"] == "/login"
    assert decide(client, {**form, "csrf": ""}, "keep").status_code == 403
    assert decide(client, {**form, "csrf": "forged"}, "keep").status_code == 403
    # another annotator's token is theirs alone
    bob = sign_in(url, "bob")
    assert decide(client, {**form, "csrf": hidden(bob.get("/review").text, "csrf")}, "keep").status_code == 403
    assert store.decisions() == []
    assert decide(client, form, "keep").status_code == 303
    assert [(d.annotator, d.decision) for d in store.decisions()] == [("ann", "keep")]


def test_sign_in_needs_the_annotators_own_token(app):
    _, url = app
    client = httpx.Client(base_url=url, follow_redirects=False)
    page = client.get("/login")
    csrf = hidden(page.text, "csrf")
    assert client.post("/login", data={"csrf": csrf, "annotator": "ann", "token": "bob-token"}).status_code == 401
    fresh = httpx.Client(base_url=url, follow_redirects=False)  # no login cookie: a forged login form
    assert fresh.post("/login", data={"csrf": csrf, "annotator": "ann", "token": "ann-token"}).status_code == 403
    cookie = page.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    signed = sign_in(url, "ann")
    assert signed.get("/review").status_code == 200


def test_an_item_leased_to_one_annotator_cannot_be_decided_by_another(app):
    store, url = app
    ann, bob = sign_in(url, "ann"), sign_in(url, "bob")
    anns_item = next_form(ann)
    bobs_form = next_form(bob)
    assert bobs_form["item"] != anns_item["item"]
    response = decide(bob, {**bobs_form, "item": anns_item["item"], "version": anns_item["version"]}, "swap")
    assert response.status_code == 409 and "given to another annotator" in response.text
    assert store.decisions() == []


def test_pages_forbid_foreign_scripts_and_admin_is_for_admins(app):
    _, url = app
    client = sign_in(url, "ann")
    page = client.get("/review")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy
    assert client.get("/admin").status_code == 403
    boss = sign_in(url, "boss")
    admin = boss.get("/admin")
    assert admin.status_code == 200 and "Cohen" in admin.text and "Fleiss" in admin.text


def test_an_admin_exports_from_the_running_app(tmp_path):
    """The app that serves the pages has run the gate once already (a scratch export at start): an export
    there skips the seconds of importing and setting up the gate's libraries."""
    store = review_store(tmp_path / "r.sqlite", {"ann": False, "boss": True}, items=3)
    out = tmp_path / "reviewed"
    served = serve(store, ExportConfig(db=str(tmp_path / "r.sqlite"), output_dir=str(out)))
    try:
        ann, boss = sign_in(served.url, "ann"), sign_in(served.url, "boss")
        while (form := next_form(ann)) is not None:
            assert decide(ann, form, "keep").status_code == 303
        assert ann.post("/admin/export", data={"csrf": hidden(ann.get("/review").text, "csrf")}).status_code == 403
        assert boss.post("/admin/export", data={"csrf": "forged"}).status_code == 403 and not out.exists()
        admin = boss.get("/admin").text
        assert str(out) in admin
        response = boss.post("/admin/export", data={"csrf": hidden(admin, "csrf")})
        assert response.status_code == 200 and "exported 3 approved pair(s)" in response.text
        manifest = json.loads((published(out) / "manifest.json").read_text())
        assert manifest["outputs"]["preferences"]["rows"] == 3 and manifest["quality"]["success"]
    finally:
        served.stop()


def test_twenty_annotators_at_once_lose_no_decision(tmp_path):
    names = {f"a{i:02d}": False for i in range(20)}
    store = review_store(tmp_path / "r.sqlite", names, items=30, overlap=2)
    served = serve(store)
    accepted: Counter = Counter()
    refused: list[str] = []
    start = threading.Barrier(len(names))

    def annotate(name: str) -> None:
        client = sign_in(served.url, name)
        start.wait()
        while (form := next_form(client)) is not None:
            response = decide(client, form, "keep" if hash((name, form["item"])) % 3 else "swap")
            if response.status_code == 303:
                accepted[name] += 1
            else:
                refused.append(response.text)

    threads = [threading.Thread(target=annotate, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    served.stop()
    decisions = store.decisions()
    assert len(decisions) == sum(accepted.values()) == 60  # every accepted decision stored, every item complete
    per_item = Counter(d.item_id for d in decisions)
    assert set(per_item.values()) == {2}  # never more than the overlap
    assert all(len({d.annotator for d in decisions if d.item_id == item}) == 2 for item in per_item)
    assert refused == []  # leases kept annotators apart: no one was handed an item that then was full


def odd_values(valid: str) -> dict[str, object]:
    """What a client may send in place of a field's value (httpx sends a list as the field repeated)."""
    return {"non-ASCII": "ü✓–日本語", "digits of another script": "²", "very long": "7" * 100_000, "empty": "",
            "invisible": "\u200b\u2060", "missing": None, "repeated": [valid, valid]}


def with_field(data: dict, name: str, value) -> dict:
    return {k: v for k, v in data.items() if k != name} | ({} if value is None else {name: value})


def test_odd_input_in_any_form_field_is_refused_or_stored_never_a_server_error(tmp_path):
    store = review_store(tmp_path / "r.sqlite", {"ann": False}, items=40)
    served = serve(store)
    try:
        for name in ("csrf", "annotator", "token"):  # the sign-in form
            for what, value in odd_values({"annotator": "ann", "token": "ann-token"}.get(name, "")).items():
                client = httpx.Client(base_url=served.url, follow_redirects=False, timeout=30)
                data = {"csrf": hidden(client.get("/login").text, "csrf"), "annotator": "ann", "token": "ann-token"}
                if what == "repeated" and name == "csrf":
                    value = [data["csrf"]] * 2
                status = client.post("/login", data=with_field(data, name, value)).status_code
                expected = 303 if what == "repeated" else 403 if name == "csrf" else 401
                assert status == expected, (name, what, status)
        client = sign_in(served.url, "ann")
        for name in ("csrf", "item", "version", "decision", "comment", "chosen", "rejected"):  # the decision form
            for what, value in odd_values("").items():
                form = next_form(client)
                data = {"csrf": form["csrf"], "item": form["item"], "version": form["version"], "decision": "edit",
                        "comment": "ok", "chosen": f"A better answer {what}.", "rejected": "A worse one."}
                if what == "repeated":
                    value = [data[name]] * 2
                response = client.post("/review/decide", data=with_field(data, name, value))
                if what == "repeated" or name == "comment" or (name in ("chosen", "rejected") and value
                                                               and value.strip() and value != "\u200b\u2060"):
                    expected = 303
                else:
                    expected = {"csrf": 403, "item": 409, "version": 400, "decision": 400}.get(name, 400)
                assert response.status_code == expected, (name, what, response.status_code, response.text[-300:])
                if name in ("chosen", "rejected") and expected == 400:
                    assert f"the {name} answer is blank" in response.text
        # a file where a text field belongs counts as no text
        form = next_form(client)
        files = {"csrf": ("csrf.txt", form["csrf"].encode())}
        response = client.post("/review/decide", files=files, data={k: form[k] for k in ("item", "version")}
                               | {"decision": "keep"})
        assert response.status_code == 403
        assert client.post("/logout", data={"csrf": "ü✓"}).status_code == 303
    finally:
        served.stop()
    items = {item.id: item for item in store.items()}
    assert all(item.chosen.strip() and item.rejected.strip() and "\r" not in item.chosen + item.rejected
               for item in items.values())
    comments = {d.comment for d in store.decisions()}
    assert {"ü✓–日本語", "7" * 100_000, None} <= comments


def test_an_edit_that_leaves_an_answer_blank_or_both_the_same_is_refused(app):
    store, url = app
    client = sign_in(url, "ann")
    form = next_form(client)
    for chosen, rejected, message in (("\r\n \t", "A worse one.", "the chosen answer is blank"),
                                      ("A better one.", "\u200b", "the rejected answer is blank"),
                                      ("Same\r\ntext.", "Same\ntext.", "the chosen and rejected answers are the same")):
        response = decide(client, form, "edit", chosen=chosen, rejected=rejected)
        assert response.status_code == 400 and message in response.text
    assert store.decisions() == [] and next_form(client)["version"] == form["version"] == "1"


def test_every_page_but_sign_in_sends_a_signed_out_browser_to_sign_in(app):
    """Walks the app's own route table, so a page added later without ``require_session`` fails here."""
    from starlette.routing import Route

    from quality.review.app import ROUTES

    _, url = app
    public = {"/", "/login", "/logout"}
    guarded = [(route.path, sorted(route.methods - {"HEAD"})[0]) for route in ROUTES
               if isinstance(route, Route) and route.path not in public]
    assert {path for path, _ in guarded} >= {"/review", "/review/decide", "/admin", "/admin/export"}
    client = sign_in(url, "boss")
    csrf, sid = hidden(client.get("/review").text, "csrf"), client.cookies["review_session"]
    assert client.post("/logout", data={"csrf": csrf}).headers["location"] == "/login"
    ended = httpx.Client(base_url=url, follow_redirects=False, cookies={"review_session": sid})  # a stolen old cookie
    for browser in (httpx.Client(base_url=url, follow_redirects=False), ended):
        for path, method in guarded:
            response = browser.request(method, path, data={"csrf": csrf} if method == "POST" else None)
            assert (response.status_code, response.headers.get("location")) == (303, "/login"), (path, method)
