import numpy as np
import pytest

from escotag.evaluation.protocol import melo_languages
from escotag.metrics import gold_ranks, metrics


def test_metrics_by_hand():
    # ranks 1, 2, 4 and a miss: MRR = (1 + 1/2 + 1/4 + 0) / 4
    mrr, acc = metrics([1, 2, 4, None])
    assert mrr == pytest.approx(0.4375)
    assert acc == {1: 0.25, 5: 0.75, 10: 0.75}


def test_gold_ranks_best_gold_and_ties():
    scores = np.array([[0.9, 0.5, 0.7, 0.1],
                       [0.2, 0.8, 0.8, 0.3],
                       [0.1, 0.2, 0.3, 0.4]])
    # row 0: gold {2} behind 0 -> 2; row 1: gold {2} tied with 1 -> tie counts against it -> 2;
    # row 2: golds {0, 3} -> best is 3 at rank 1
    assert gold_ranks(scores, [[2], [2], [0, 3]]) == [2, 2, 1]
    assert gold_ranks(scores[:1], [[]]) == [None]


def test_melo_language_rule():
    assert melo_languages("deu_q_de_c_de") == ["de", "en"]
    assert melo_languages("deu_q_de_c_en") == ["en"]
