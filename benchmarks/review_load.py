"""The review app under load: 50 simulated annotators on loopback, each signing in and then fetching
the next item and submitting a decision until nothing is left. The app runs as users run it
(`python -m quality review serve`, its own process); the annotators are threads of this process.

Records p50/p95/p99 latency of fetch-next (GET /review) and submit (POST /review/decide), decisions
per second, and lost decisions (accepted by the app but not in the database): must be zero.

    python benchmarks/review_load.py                         # 50 annotators, 1,500 pairs x overlap 2
    python benchmarks/review_load.py --screenshot docs/review_app.png    # the README's screenshot, then exit
Pairs come from $BENCH_DATA/preference_sample.parquet when present, else are generated.
"""
from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "quality"))

from quality.review.auth import hash_token  # noqa: E402
from quality.review.sqlite_store import SqliteReviewStore  # noqa: E402
from review_helpers import decide, next_form, sign_in  # noqa: E402
from bench_data import BENCH_DATA  # noqa: E402
from benchmarks.measure import run_facts  # noqa: E402

BENCH_CORPUS = BENCH_DATA / "preference_sample.parquet"


def pairs(n: int) -> list[dict]:
    if BENCH_CORPUS.is_file():
        rows = pq.read_table(BENCH_CORPUS).to_pylist()
    else:
        from quality_samples import preferences

        rows = preferences(n).to_pylist()
    return [{**rows[i % len(rows)], "id": f"pair-{i}"} for i in range(n)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(db: Path, port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "quality", "review", "serve", "--db", str(db), "--port", str(port)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"the review app did not start:\n{proc.stdout.read()}")


def percentiles(values: list[float]) -> dict:
    ordered = sorted(values)
    pick = lambda q: round(1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)  # noqa: E731
    return {"n": len(values), "p50_ms": pick(0.50), "p95_ms": pick(0.95), "p99_ms": pick(0.99),
            "mean_ms": round(1000 * statistics.fmean(values), 1)}


def screenshot(path: str) -> None:
    from playwright.sync_api import sync_playwright

    work = Path(tempfile.mkdtemp(prefix="review-shot-"))
    store = SqliteReviewStore(work / "reviews.sqlite")
    store.add_annotator("alice", hash_token("alice-token"), True)
    store.load_items(pairs(3), overlap=1)
    port = free_port()
    app = start_app(work / "reviews.sqlite", port)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium",
                                                 args=["--disable-gpu", "--disable-background-networking"])
            page = browser.new_page(viewport={"width": 1280, "height": 920})
            page.goto(f"http://127.0.0.1:{port}/login")
            page.get_by_label("Annotator").fill("alice")
            page.get_by_label("Token").fill("alice-token")
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url("**/review")
            page.screenshot(path=path, full_page=False)
            browser.close()
    finally:
        app.terminate()
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--annotators", type=int, default=50)
    parser.add_argument("--pairs", type=int, default=1500)
    parser.add_argument("--overlap", type=int, default=2)
    parser.add_argument("--json", default=str(ROOT / "benchmarks/results/review_load.json"))
    parser.add_argument("--screenshot", help="write a screenshot of the review page to this PNG and exit")
    args = parser.parse_args()
    if args.screenshot:
        screenshot(args.screenshot)
        return
    work = Path(tempfile.mkdtemp(prefix="review-load-"))
    store = SqliteReviewStore(work / "reviews.sqlite")
    names = [f"annotator-{i:02d}" for i in range(args.annotators)]
    for name in names:
        store.add_annotator(name, hash_token(f"{name}-token"), False)
    store.load_items(pairs(args.pairs), args.overlap)
    port = free_port()
    app = start_app(work / "reviews.sqlite", port)
    # every response is counted: 303 (stored), 409 (refused: the item changed or was taken), anything else (a
    # failure that "0 lost decisions" must not hide), and exceptions in an annotator's loop
    fetch, submit, accepted, statuses, errors = [], [], set(), Counter(), []
    lock, gate = threading.Lock(), threading.Barrier(len(names))

    def annotate(name: str) -> None:
        try:
            work_through(name)
        except Exception as error:  # counted and reported, never a silently shorter run
            with lock:
                errors.append(f"{name}: {type(error).__name__}: {error}")

    def work_through(name: str) -> None:
        client = sign_in(f"http://127.0.0.1:{port}", name)
        gate.wait()
        while True:
            t0 = time.perf_counter()
            form = next_form(client)
            t1 = time.perf_counter()
            if form is None:
                break
            choice = ("keep", "keep", "swap", "reject_both", "edit")[hash((name, form["item"])) % 5]
            extra = {"chosen": "An edited answer.", "rejected": "A worse answer."} if choice == "edit" else {}
            status = decide(client, form, choice, **extra).status_code
            t2 = time.perf_counter()
            with lock:
                fetch.append(t1 - t0)
                submit.append(t2 - t1)
                statuses[status] += 1
                if status == 303:
                    accepted.add((name, form["item"]))

    start = time.perf_counter()
    threads = [threading.Thread(target=annotate, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    app.terminate()
    # the store's rows against the submissions it accepted: each accepted one stored once, nothing else stored
    stored = {(d.annotator, d.item_id) for d in store.decisions() if d.decision != "skip"}
    failed = {str(code): n for code, n in statuses.items() if code not in (303, 409)}
    result = {
        **run_facts("starlette", "uvicorn"),
        "command": " ".join(sys.argv), "annotators": len(names),
        "pairs": args.pairs, "overlap": args.overlap, "wall_s": round(wall, 1),
        "submissions": sum(statuses.values()), "decisions_accepted": len(accepted), "decisions_stored": len(stored),
        "refused_stale": statuses[409], "failed_responses": failed, "annotator_errors": errors,
        "lost_decisions": len(accepted - stored), "stored_not_accepted": len(stored - accepted),
        "decisions_per_s": round(len(stored) / wall, 1),
        "fetch_next": percentiles(fetch), "submit": percentiles(submit),
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    if result["lost_decisions"] or result["stored_not_accepted"] or failed or errors:
        sys.exit("review load: decisions lost, failed responses or annotator errors (above)")


if __name__ == "__main__":
    main()
