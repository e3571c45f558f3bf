"""The review app in headless Chromium (Debian's, driven by Playwright): an annotator signs in,
judges items with clicks and with keyboard shortcuts, swaps, edits, rejects and skips, and the export
holds exactly those decisions, byte for byte (a browser submits a textarea with CRLF line breaks).
Markup in a model's answer is shown as text and never runs; its images are links."""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import published, write_parquet
from quality_samples import preferences, replace_row
from review_helpers import review_store, serve
from review_processes import Server, cli, listed_votes, set_up

from quality.review.export import ExportConfig, export

pytestmark = pytest.mark.slow
CHROMIUM = "/usr/bin/chromium"
# as the machine's probe runs it: no background connections to a network this machine cannot reach
ARGS = ["--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", "--disable-quic"]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "the browser tests need Debian's chromium; `make test` installs it"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser):
    context = browser.new_context()
    yield context.new_page()
    context.close()


def sign_in(page, url: str, name: str, token: str | None = None) -> None:
    page.goto(f"{url}/login")
    page.get_by_label("Annotator").fill(name)
    page.get_by_label("Token").fill(token or f"{name}-token")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{url}/review")


def test_an_annotator_judges_with_clicks_and_shortcuts_and_the_export_holds_exactly_that(tmp_path, page):
    rows = preferences(7).to_pylist()
    # answers with line breaks of every kind, one starting with one (HTML drops a textarea's first line break)
    rows[2].update(chosen="Report 2 says:\nall units pass.\n\n- unit 1\n- unit 2",
                   rejected="\nI do not know\r\nabout report 2.")
    rows[6].update(chosen="Report 6 says:\r\nthe pump is fine.\n", rejected="No idea\nabout report 6.")
    edited_chosen, edited_rejected = "An edited, better answer\nabout report 2.\n\nIt has three lines.", "Worse\nstill."
    store = review_store(tmp_path / "r.sqlite", {"ann": False}, rows=rows)
    served = serve(store)
    try:
        sign_in(page, served.url, "ann")
        shown_left, seen = {}, []
        while page.locator("input[name=item]").count():
            item = page.input_value("input[name=item]")
            seen.append(item)
            shown_left[item] = page.locator(".answers article").first.get_attribute("data-label")
            if item == "p2":  # edit mode first: the save button then submits
                page.get_by_role("button", name="Edit").click()
                page.get_by_label("Edit the chosen answer").fill(edited_chosen)
            if item == "p6":  # edit mode by its shortcut, only the rejected answer changed
                page.keyboard.press("e")
                page.get_by_label("Edit the rejected answer").fill(edited_rejected)
            if item == "p5":
                page.get_by_label("Comment (optional)").fill("fine as it is")
                page.locator("h2", has_text="Prompt").click()  # leave the text box: shortcuts apply again
            with page.expect_navigation():  # each decision posts the form and loads the next item
                {
                    "p0": lambda: page.get_by_role("button", name="Keep").click(),
                    "p1": lambda: page.keyboard.press("s"),
                    "p2": lambda: page.get_by_role("button", name="Save edit and keep").click(),
                    "p3": lambda: page.keyboard.press("r"),
                    "p4": lambda: page.get_by_role("button", name="Skip").click(),
                    "p5": lambda: page.keyboard.press("k"),
                    "p6": lambda: page.keyboard.press("Control+Enter"),
                }[item]()
        assert seen == [f"p{i}" for i in range(7)]
        assert "Nothing left for you" in page.content()
        # the skip is seen, not a vote, and nobody is left to give p4 its vote
        assert "You: 7 seen (6 voted, 1 skipped), 0 open" in page.inner_text(".progress")
        assert page.locator("#progress-mine").get_attribute("value") == "7"
        assert page.locator("#progress-all").get_attribute("value") == "6"
        assert page.inner_text("#progress-unreachable").startswith("1 item(s) still need 1 vote(s)")
        decisions = {d.item_id: d for d in store.decisions()}
        assert {i: d.decision for i, d in decisions.items()} == {
            "p0": "keep", "p1": "swap", "p2": "edit", "p3": "reject_both", "p4": "skip", "p5": "keep", "p6": "edit"}
        assert decisions["p5"].comment == "fine as it is"
        assert all(d.chosen_left == (shown_left[i] == "chosen") for i, d in decisions.items())  # order recorded
    finally:
        served.stop()
    export(store, ExportConfig(db=str(tmp_path / "r.sqlite"), output_dir=str(tmp_path / "out")))
    out = {r["id"]: r for r in pq.read_table(published(tmp_path / "out") / "preferences").to_pylist()}
    assert set(out) == {"p0", "p1", "p2", "p5", "p6"}
    assert (out["p0"]["chosen"], out["p0"]["rejected"]) == (rows[0]["chosen"], rows[0]["rejected"])
    assert (out["p1"]["chosen"], out["p1"]["rejected"]) == (rows[1]["rejected"], rows[1]["chosen"])
    # the edited answer as typed (LF line breaks), the untouched one byte for byte as loaded
    assert (out["p2"]["chosen"], out["p2"]["rejected"]) == (edited_chosen, rows[2]["rejected"])
    assert (out["p6"]["chosen"], out["p6"]["rejected"]) == (rows[6]["chosen"], edited_rejected)
    assert all(r["review_status"] == "approved" and r["annotators"] == ["ann"] for r in out.values())


def test_markup_in_an_answer_is_shown_as_text_and_never_runs(tmp_path, page):
    attack = ('Look: <img src=x onerror="window.__pwned = 1"> and <script>window.__pwned = 2</script> '
              '[click](javascript:window.__pwned=3) ![a diagram](https://example.org/diagram.png)')
    rows = replace_row(preferences(1), 0, chosen=attack).to_pylist()
    store = review_store(tmp_path / "r.sqlite", {"ann": False}, rows=rows)
    served = serve(store)
    try:
        dialogs = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        sign_in(page, served.url, "ann")
        shown = page.inner_text("#answer-chosen .markdown")
        assert '<img src=x onerror="window.__pwned = 1">' in shown and "<script>window.__pwned = 2</script>" in shown
        assert page.locator("#answer-chosen img").count() == 0 and page.locator("#answer-chosen script").count() == 0
        # an image from another site would be blocked by the page's policy: it is a link instead
        image = page.locator("#answer-chosen a.image-link")
        assert image.inner_text() == "image: a diagram"
        assert image.get_attribute("href") == "https://example.org/diagram.png"
        page.wait_for_timeout(300)
        assert page.evaluate("window.__pwned") is None and dialogs == []
    finally:
        served.stop()


def test_two_annotators_in_the_browser_with_commands_beside_the_app_keep_all_24_decisions(tmp_path, browser):
    """The run that lost 22 of 24 decisions: two annotators in Chromium against ``review serve``, the lead running
    ``annotators list`` beside the app every few decisions; then the export and the list count all 24."""
    db, preferences_dir = tmp_path / "r.sqlite", tmp_path / "preferences"
    write_parquet(preferences_dir / "part-0.parquet", preferences(12).to_pydict(), preferences(1).schema)
    tokens = set_up(db, {"ann": False, "bob": False}, preferences_dir, overlap=2)
    server = Server(db, tmp_path / "admin-export", tmp_path / "serve.log")
    contexts = {name: browser.new_context() for name in tokens}
    try:
        pages = {name: context.new_page() for name, context in contexts.items()}
        for name, page in pages.items():
            sign_in(page, server.url, name, tokens[name])
        for decided in range(1, 13):
            for name, page in pages.items():
                with page.expect_navigation():
                    page.keyboard.press("k" if decided % 3 else "s")
            if decided % 4 == 0:
                listed = listed_votes(db)  # the lead's shell, beside the app
                assert {name: sum(listed[name].values()) for name in tokens} == {"ann": decided, "bob": decided}
        assert "Nothing left for you" in pages["ann"].content()
        assert "24 of 24 votes" in pages["bob"].inner_text(".progress")
    finally:
        for context in contexts.values():
            context.close()
        server.stop()
    assert listed_votes(db) == {"ann": {"keep": 8, "swap": 4}, "bob": {"keep": 8, "swap": 4}}
    cli("review", "export", "--db", str(db), "--out", str(tmp_path / "out"))
    manifest = json.loads((published(tmp_path / "out") / "manifest.json").read_text())
    assert manifest["decision_counts"] == {"keep": 16, "swap": 8} and manifest["review_db"]["decisions"] == 24
