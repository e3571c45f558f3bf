"""The review app over real HTTP on loopback: nothing is written without a session and its CSRF
token, nobody submits as someone else, and twenty annotators at once lose no decision."""
from __future__ import annotations

import threading
from collections import Counter

import httpx
import pytest
from review_helpers import decide, hidden, next_form, review_store, serve, sign_in


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
