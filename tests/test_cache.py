"""Index cache: keyed by content, verified on load, rebuilt with a warning when stale or corrupt."""

import logging

import numpy as np
import pytest

from escotag.encoders import get_encoder
from escotag.encoders.cache import cached_encode
from escotag.settings import get_settings

TEXTS = ["baker", "Bäcker", "مطور برمجيات"]


@pytest.fixture
def encoder():
    return get_encoder()


def _entries():
    return sorted(p for p in (get_settings().home / "index").iterdir() if not p.name.startswith("."))


def test_cache_roundtrip_and_keying(tmp_path, monkeypatch, encoder):
    monkeypatch.setenv("ESCOTAG_HOME", str(tmp_path))
    first = cached_encode(encoder, TEXTS, {"taxonomy": "a"}, progress=False)
    assert first.shape == (3, 512) and np.allclose(np.linalg.norm(first, axis=1), 1, atol=1e-5)
    assert len(_entries()) == 1
    again = cached_encode(encoder, TEXTS, {"taxonomy": "a"}, progress=False)
    assert np.array_equal(first, again) and len(_entries()) == 1
    cached_encode(encoder, TEXTS, {"taxonomy": "b"}, progress=False)  # another taxonomy: another entry
    cached_encode(encoder, [*TEXTS, "chef"], {"taxonomy": "a"}, progress=False)  # other texts: another entry
    assert len(_entries()) == 3


def test_corrupt_cache_is_rebuilt(tmp_path, monkeypatch, encoder, caplog):
    monkeypatch.setenv("ESCOTAG_HOME", str(tmp_path))
    good = cached_encode(encoder, TEXTS, {}, progress=False)
    (entry,) = _entries()
    vectors = np.load(entry / "vectors.npy")
    vectors[0] = 0.0
    np.save(entry / "vectors.npy", vectors)
    with caplog.at_level(logging.WARNING):
        rebuilt = cached_encode(encoder, TEXTS, {}, progress=False)
    assert "checksum mismatch" in caplog.text
    assert np.array_equal(rebuilt, good)
    caplog.clear()
    (entry / "manifest.json").write_text("{not json")
    with caplog.at_level(logging.WARNING):
        assert np.array_equal(cached_encode(encoder, TEXTS, {}, progress=False), good)
    assert "stale or corrupt" in caplog.text
    caplog.clear()
    cached_encode(encoder, TEXTS, {}, progress=False)
    assert caplog.text == ""  # the rebuilt entry verifies


def test_encoder_dedupes_and_keeps_order(encoder):
    out = encoder.encode(["chef", "baker", "chef"])
    assert np.array_equal(out[0], out[2]) and not np.allclose(out[0], out[1])


def test_fast_tokenizer_gives_the_pure_encoders_vectors():
    from escotag.encoders.use import UniversalSentenceEncoder

    texts = ["Softwareentwickler/Softwareentwicklerin", "مطور برمجيات", "Інженер-програміст", "naïve café  chef",
             "Ｆｕｌｌ－ｗｉｄｔｈ", ""]
    fast = UniversalSentenceEncoder(fast_tokenizer=True).encode(texts)
    pure = UniversalSentenceEncoder(fast_tokenizer=False).encode(texts)
    assert np.array_equal(fast, pure)
