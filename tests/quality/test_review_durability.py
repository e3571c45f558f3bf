"""The review database kept safe across real processes: ``review serve`` takes decisions from several
annotators over HTTP while other processes run ``annotators list``, ``review export`` and ``review load`` and
the admin presses Export; the server is SIGKILLed mid-traffic and started again. Every decision answered with
success is in the database, the export and ``annotators list``; a refused one is not.

The review database is only ever read here through ``sqlite3`` in this test's own process, as an outside
reader (a process the app does not know of) opening and closing it: what dropped the app's locks before."""
from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from conftest import published, write_parquet
from quality_samples import preferences
from review_helpers import decide, hidden, next_form, sign_in
from review_processes import Server, cli, listed_votes, outside_count, outside_decisions, set_up

ANNOTATORS = ("ann", "bob", "cyd")
ADMIN = "boss"


class Ledger:
    """What the annotators were told: decisions answered with success, refused, or cut off by the kill."""

    def __init__(self):
        self.lock = threading.Lock()
        self.acknowledged: dict[tuple[str, str], str] = {}  # (item, annotator) -> decision
        self.refused: list[tuple[str, str, str]] = []  # (item, annotator, decision) answered 409
        self.unanswered: set[tuple[str, str]] = set()  # in flight when the server died
        self.errors: list[str] = []  # what stopped an annotator other than the server going away

    def record(self, key: tuple[str, str], decision: str, status: int | None) -> None:
        with self.lock:
            if status == 303:
                self.acknowledged[key] = decision
            elif status == 409:
                self.refused.append((*key, decision))
            elif status is None:
                self.unanswered.add(key)
            else:
                raise AssertionError(f"unexpected answer {status} to {decision} on {key}")


def annotate(url: str, name: str, token: str, ledger: Ledger, stop: threading.Event, seed: int) -> None:
    """An annotator deciding at a human-ish pace until told to stop or the server goes away. Every few items
    they submit the same item again with another decision, which the app must refuse and not store."""
    rng = random.Random(seed)
    try:
        client = sign_in(url, name, token)
        while not stop.is_set():
            page = client.get("/review")
            if page.status_code != 200:
                raise AssertionError(f"/review answered {page.status_code} {page.headers.get('location', '')}")
            form = next_form(client)
            if form is None:
                return
            decision = rng.choice(["keep", "keep", "swap", "reject_both"])
            key = (form["item"], name)
            try:
                status = decide(client, form, decision).status_code
            except httpx.TransportError:
                ledger.record(key, decision, None)
                return
            ledger.record(key, decision, status)
            if status == 303 and rng.random() < 0.2:
                again = "swap" if decision != "swap" else "keep"
                ledger.record(key, again, decide(client, form, again).status_code)
            time.sleep(rng.uniform(0.05, 0.25))
    except httpx.TransportError:
        return  # the server was killed between two requests
    except Exception as error:  # noqa: BLE001 - a thread's failure is the test's, said at its end
        ledger.errors.append(f"{name}: {error!r}")


def commands_beside(db: Path, preferences_dir: Path, exports: Path, admin: httpx.Client, rounds: int,
                    failures: list[str]) -> None:
    """The lead's shell beside the app: list, export, load again, and the admin page's Export, ``rounds`` times."""
    for round_number in range(rounds):
        for args in (["annotators", "list", "--db", str(db)],
                     ["review", "export", "--db", str(db), "--out", str(exports / f"cli-{round_number}")],
                     ["review", "load", str(preferences_dir), "--db", str(db)]):
            done = cli(*args, check=False)
            if done.returncode != 0:
                failures.append(f"{' '.join(args)}: exit {done.returncode}: {done.stderr[-2000:]}")
        page = admin.get("/admin")
        csrf = hidden(page.text, "csrf")
        if csrf is None:
            failures.append(f"the admin page answered {page.status_code} {page.headers.get('location', '')}")
            continue
        response = admin.post("/admin/export", data={"csrf": csrf}, timeout=300)
        if response.status_code != 200:
            failures.append(f"admin Export answered {response.status_code}")
        outside_count(db)  # and an outside reader, as the lead's own sqlite3 would


@pytest.mark.slow
def test_every_acknowledged_decision_survives_cli_commands_beside_the_app_and_a_killed_server(tmp_path):
    db, exports = tmp_path / "r.sqlite", tmp_path / "exports"
    preferences_dir = tmp_path / "preferences"
    write_parquet(preferences_dir / "part-0.parquet", preferences(300).to_pydict(), preferences(1).schema)
    tokens = set_up(db, {**{name: False for name in ANNOTATORS}, ADMIN: True}, preferences_dir, overlap=2)
    log = tmp_path / "serve.log"
    ledger = Ledger()

    # the reproduction: one annotator, six decisions, an outside reader counting after each
    server = Server(db, exports / "admin", log)
    first = sign_in(server.url, "ann", tokens["ann"])
    time.sleep(3)  # the app's warm-up export at start (in the background) has run
    counted = []
    for _ in range(6):
        form = next_form(first)
        ledger.record((form["item"], "ann"), "keep", decide(first, form, "keep").status_code)
        counted.append(outside_count(db))
    assert counted == [1, 2, 3, 4, 5, 6], f"decisions an outside reader saw after each acknowledged one: {counted}"

    # annotators at work while the lead's commands run beside the app; then the server dies mid-traffic
    stop, failures = threading.Event(), []
    admin = sign_in(server.url, ADMIN, tokens[ADMIN])
    clients = [threading.Thread(target=annotate, args=(server.url, name, tokens[name], ledger, stop, seed))
               for seed, name in enumerate(ANNOTATORS)]
    for client in clients:
        client.start()
    commands_beside(db, preferences_dir, exports, admin, rounds=2, failures=failures)
    assert failures == [] and ledger.errors == []
    assert all(client.is_alive() for client in clients), "the annotators ran out of items before the kill"
    server.kill()
    stop.set()
    for client in clients:
        client.join(timeout=60)
    assert len(ledger.acknowledged) > 30 and ledger.refused, "too little traffic to prove anything"

    # started again: it serves from where it was, and takes more decisions
    server = Server(db, exports / "admin", log)
    stop = threading.Event()
    clients = [threading.Thread(target=annotate, args=(server.url, name, tokens[name], ledger, stop, 10 + seed))
               for seed, name in enumerate(ANNOTATORS)]
    for client in clients:
        client.start()
    time.sleep(3)
    stop.set()
    for client in clients:
        client.join(timeout=60)
    server.kill()

    stored = outside_decisions(db)
    lost = {key: decision for key, decision in ledger.acknowledged.items() if stored.get(key) != decision}
    assert lost == {}, f"{len(lost)} of {len(ledger.acknowledged)} acknowledged decisions are not in the database"
    # what the database holds beyond the acknowledged: at most the requests the kill cut off
    assert set(stored) - set(ledger.acknowledged) <= ledger.unanswered
    for item, name, decision in ledger.refused:
        assert stored[(item, name)] == ledger.acknowledged[(item, name)] != decision

    cli("review", "export", "--db", str(db), "--out", str(exports / "final"))
    exported = published(exports / "final")
    manifest = json.loads((exported / "manifest.json").read_text())
    assert sum(manifest["decision_counts"].values()) == len(stored)
    assert manifest["review_db"]["decisions"] == len(stored)
    per_annotator = Counter(name for _, name in stored)
    listed = listed_votes(db)
    for name in ANNOTATORS:
        kinds = Counter(decision for (_, who), decision in stored.items() if who == name)
        assert listed[name] == dict(kinds), f"annotators list for {name}: {listed[name]}, database {dict(kinds)}"
        assert sum(listed[name].values()) == per_annotator[name]
