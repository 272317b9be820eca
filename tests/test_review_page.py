"""The review page in a real headless Chromium: decide three items with the keyboard and one through the label
search, then make a rule from a decision."""

import csv

import httpx
import pytest

from conftest import serve
from escotag import Tagger
from escotag.service import Settings, create_app

TITLES = ["bread and cake maker", "care assistant nights", "site engineer roads", "kitchen lead"]


@pytest.fixture
def queued(esco_slice, models_dir, tmp_path):
    rules = tmp_path / "rules.csv"
    rules.write_text("kind,pattern,language,occupation_uri\n", encoding="utf-8")  # a rule made on the page goes here
    tagger = Tagger(esco_slice, progress=False, models=models_dir, rules=rules)
    server, thread, base = serve(create_app(tagger, Settings(database_url=f"sqlite:///{tmp_path / 'q.sqlite3'}")))
    items = httpx.post(f"{base}/v1/tag", timeout=60, json={
        "items": [{"title": t} for t in TITLES], "model": "EnV2", "review_below": 1.0}).json()["items"]
    yield base, [i["occupations"] for i in items], rules
    server.should_exit = True
    thread.join(10)


def test_decide_with_the_keyboard_and_the_search(browser, queued):
    base, candidates, rules = queued
    page = browser.new_page()
    page.goto(base + "/review")
    page.fill("#reviewer", "dana")
    page.locator("#reviewer").dispatch_event("change")
    page.locator("#reviewer").blur()
    page.wait_for_selector("#candidates button.candidate")
    assert page.inner_text("#title") == TITLES[0]
    assert "4 open" in page.inner_text("#counts")

    def wait_for(title: str) -> None:
        page.wait_for_function(f"document.querySelector('#title').textContent === {title!r}")

    page.keyboard.press("1")  # the first candidate
    wait_for(TITLES[1])
    page.keyboard.press("3")  # the third
    wait_for(TITLES[2])
    page.keyboard.press("n")  # no ESCO occupation fits
    wait_for(TITLES[3])
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "search"
    page.keyboard.type("pharmacist")
    page.wait_for_selector("#hits button")
    pharmacist = page.get_attribute("#hits button", "data-uri")
    page.keyboard.press("Enter")
    page.wait_for_selector("#empty", state="visible")
    assert "0 open · 4 decided" in page.inner_text("#counts")

    decided = httpx.get(f"{base}/v1/review", params={"status": "decided"}).json()["items"]
    assert [(d["title"], d["decided_uri"], d["reviewer"]) for d in decided] == [
        (TITLES[0], candidates[0][0]["uri"], "dana"), (TITLES[1], candidates[1][2]["uri"], "dana"),
        (TITLES[2], None, "dana"), (TITLES[3], pharmacist, "dana")]

    page.click("#make-rule")  # the last decision becomes a title rule
    page.wait_for_function("document.querySelector('#status').textContent.startsWith('Rule added')")
    with rules.open(encoding="utf-8", newline="") as f:
        assert list(csv.reader(f))[1:] == [["title", TITLES[3], "en", pharmacist]]
    answer = httpx.post(f"{base}/v1/tag", json={"items": [{"title": TITLES[3]}], "model": "EnV2"}).json()
    assert (answer["items"][0]["occupations"][0]["uri"], answer["items"][0]["occupations"][0]["source"]) == \
        (pharmacist, "rule")
    page.close()
