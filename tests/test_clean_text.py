"""A posting's text is cleaned once, as every door hands it on: any mix of spaces, zero-width characters and normal
forms gives the clean text's answer."""

import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from escotag.text.normalization import clean_text
from escotag.text.postings import Posting, description_lead
from variants import described, spaced

# real titles and a real posting's lines (jobbert validation titles; an aida posting)
TITLES = ["Internship Digital Marketer", "MARKETING STAFF", "Senior Technical Artist", "Bäcker (m/w/d)",
          "Café Manager – Zürich", "مصمم - Kitchen Designer (AutoCAD)", "Verpleegkundige in de thuiszorg"]
DESCRIPTION = ("We are looking for a pastry chef to join our team.\nResponsibilities: prepare desserts and bread.\n"
               "Über uns: ein Familienbetrieb seit 1950.")


@settings(max_examples=200, derandomize=True, deadline=None)
@given(st.sampled_from(TITLES).flatmap(lambda t: st.tuples(st.just(t), spaced(t))))
def test_a_title_in_any_spacing_or_normal_form_cleans_to_the_same_text(pair):
    clean, variant = pair
    assert clean_text(variant) == clean_text(clean) == unicodedata.normalize("NFC", clean)
    assert Posting(variant).title == clean
    assert clean_text(clean_text(variant)) == clean_text(variant)  # idempotent


@settings(max_examples=100, derandomize=True, deadline=None)
@given(described(DESCRIPTION))
def test_a_description_keeps_its_lines_and_their_words(variant):
    posting = Posting("pastry chef", variant)
    assert posting.description == DESCRIPTION
    assert description_lead(posting.description) == description_lead(DESCRIPTION)


def test_control_and_zero_width_characters_go_and_words_stay():
    assert clean_text("\x00Bäcker\x07\u200b (m/w/d)\u00ad\ufeff") == "Bäcker (m/w/d)"
    assert clean_text("a\u00a0\u2009\u3000b\tc\nd") == "a b c d"
    assert clean_text(" first \r\n\r\n  second\t line \n", lines=True) == "first\nsecond line"
    assert clean_text("\u200b \u00a0") == ""


@settings(max_examples=25, derandomize=True, deadline=None)
@given(st.lists(st.sampled_from(TITLES[:5]).flatmap(spaced), min_size=6, max_size=6))
def test_python_answers_a_variant_as_its_clean_title(tagger, variants):
    clean = [clean_text(v) for v in variants]
    got = tagger.tag_with_models(variants, topk=5)
    want = tagger.tag_with_models(clean, topk=5)
    assert [(t.model, t.predictions) for t in got] == [(t.model, t.predictions) for t in want]
