"""The web page in a real headless Chromium (Debian's), driven by Playwright."""

import pytest

from conftest import serve
from escotag.service import Settings, create_app


@pytest.fixture(scope="module")
def base(tagger):
    server, thread, url = serve(create_app(tagger, Settings()))
    yield url
    server.should_exit = True
    thread.join(10)


def test_tag_a_posting_on_the_page(browser, base):
    page = browser.new_page()
    page.goto(base + "/")
    page.wait_for_function("document.querySelectorAll('#model option').length > 5")  # models loaded from the API
    page.fill("#title", "Bäckerin")
    page.fill("#description", "Wir backen jeden Morgen Brot und Brötchen.")
    page.click("#submit")
    page.wait_for_selector("tr.result")
    rows = page.locator("tr.result")
    assert rows.count() == 5
    first = rows.nth(0)
    assert "baker" in first.inner_text()
    assert first.locator("a").get_attribute("href").startswith("https://esco.ec.europa.eu/")
    assert "7512" in first.inner_text()  # ISCO code of bakers
    assert "model De" in page.inner_text("#meta") and "cross-lingual" not in page.inner_text("#meta")
    page.fill("#title", "Insegnante di scuola primaria")  # Italian has no model: English labels answer it
    page.fill("#description", "")
    page.click("#submit")
    page.wait_for_function("document.querySelector('#meta').innerText.includes('language it')")
    assert "model EnV2" in page.inner_text("#meta") and "cross-lingual" in page.inner_text("#meta")
    page.close()


def test_arabic_example_renders_right_to_left(browser, base):
    page = browser.new_page()
    page.goto(base + "/")
    page.click("#example-ar")
    assert page.input_value("#title") == "مطور برمجيات"
    assert page.eval_on_selector("#title", "e => getComputedStyle(e).direction") == "rtl"
    page.click("#submit")
    page.wait_for_selector("tr.result")
    link = page.locator("tr.result a").first
    assert link.evaluate("e => getComputedStyle(e).direction") == "rtl"
    assert "software developer" in page.inner_text("#results")
    page.close()


def test_bad_request_shows_the_error(browser, base):
    page = browser.new_page()
    page.goto(base + "/")
    page.fill("#title", "chef")
    page.select_option("#topk", "20")
    page.evaluate("document.getElementById('title').removeAttribute('required')")
    page.fill("#title", "   ")
    page.click("#submit")
    page.wait_for_function("document.getElementById('error').textContent.length > 0")
    assert "title" in page.inner_text("#error")
    page.close()
