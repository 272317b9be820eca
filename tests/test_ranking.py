"""The one rule by which thresholds cut a ranked list (ranking.Thresholds), on lists whose confidence is not
monotonic in the score, as an ensemble's can be."""

import pytest

from escotag import ConfigError, Prediction, Thresholds


def _ranked(confidences: list[float | None], source: str = "model") -> list[Prediction]:
    return [Prediction(f"uri{i}", f"l{i}", f"l{i}", "1234", "group", round(1 - i / 10, 6), c, source)
            for i, c in enumerate(confidences)]


def test_each_prediction_is_judged_on_its_own_after_topk():
    ranked = _ranked([0.2, 0.6, 0.1, 0.5, 0.9, 0.8])
    kept = Thresholds(topk=5, min_confidence=0.5).cut(ranked)
    assert [p.uri for p in kept] == ["uri1", "uri3", "uri4"]  # order by score kept; uri5 is past topk
    assert [p.uri for p in Thresholds(topk=5, min_score=0.75).cut(ranked)] == ["uri0", "uri1", "uri2"]
    assert Thresholds(topk=2).cut(ranked) == ranked[:2]


def test_a_rule_is_kept_and_a_missing_confidence_is_not():
    rule = _ranked([None], source="rule")
    assert Thresholds(min_score=2.0, min_confidence=0.99).cut(rule + _ranked([None, 1.0])) == rule


@pytest.mark.parametrize("kwargs", [{"topk": 0}, {"min_confidence": 1.5}, {"min_confidence": -0.1},
                                    {"review_below": 2.0}])
def test_bad_thresholds_are_refused(kwargs):
    with pytest.raises(ConfigError):
        Thresholds(**kwargs)


def test_review_needs_confidences_and_cuts_nothing():
    ranked = _ranked([0.2, 0.6, 0.1])
    assert Thresholds(review_below=0.9).cut(ranked) == ranked
    assert [Thresholds(**kw).needs_confidence for kw in ({}, {"min_score": 0.1}, {"min_confidence": 0.1},
                                                           {"review_below": 0.1})] == [False, False, True, True]
