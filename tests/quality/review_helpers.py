"""The review app for tests: a store with annotators and items, the real app served by uvicorn on a
loopback port, and an HTTP client that signs in and reads the page's form as a browser would."""
from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass

import httpx
import uvicorn

from quality.review.app import create_app
from quality.review.auth import hash_token
from quality.review.config import load_review_config
from quality.review.sqlite_store import SqliteReviewStore
from quality_samples import preferences


def review_store(path, annotators: dict[str, bool], items: int = 6, overlap: int = 1, rows=None):
    """A store at ``path`` with ``annotators`` ({name: is_admin}, token = name + "-token") and preference items."""
    store = SqliteReviewStore(path)
    for name, admin in annotators.items():
        store.add_annotator(name, hash_token(f"{name}-token"), admin)
    store.load_items(rows if rows is not None else preferences(items).to_pylist(), overlap)
    return store


@dataclass
class Served:
    url: str
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def serve(store, export_to=None, **settings) -> Served:
    config = load_review_config().model_copy(update=settings)
    server = uvicorn.Server(uvicorn.Config(create_app(store, config, export_to), host="127.0.0.1", port=0,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not server.started:
        assert time.time() < deadline, "the review app did not start"
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    return Served(f"http://127.0.0.1:{port}", server, thread)


def hidden(html: str, name: str) -> str | None:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    return found.group(1) if found else None


def sign_in(url: str, name: str, token: str | None = None) -> httpx.Client:
    client = httpx.Client(base_url=url, follow_redirects=False, timeout=30)
    csrf = hidden(client.get("/login").text, "csrf")
    response = client.post("/login", data={"csrf": csrf, "annotator": name, "token": token or f"{name}-token"})
    assert response.status_code == 303, response.text
    return client


def next_form(client: httpx.Client) -> dict | None:
    """The decision form of the page /review shows, or None when nothing is left."""
    html = client.get("/review").text
    item = hidden(html, "item")
    if item is None:
        return None
    return {"item": item, "version": hidden(html, "version"), "csrf": hidden(html, "csrf"), "html": html}


def decide(client: httpx.Client, form: dict, decision: str, **fields) -> httpx.Response:
    data = {"csrf": form["csrf"], "item": form["item"], "version": form["version"], "decision": decision, **fields}
    return client.post("/review/decide", data=data)
