"""Hypothesis strategies: a real title or posting as feeds send it — other spaces (no-break, tabs, ideographic, runs),
zero-width characters at the edges or between words, decomposed accents, line breaks of another system — the
same words, so every door must answer it as the clean text (``Posting``: ``clean_text``)."""

import unicodedata

from hypothesis import strategies as st

GAPS = st.sampled_from([" ", "  ", "\u00a0", "\t", "\u2009", " \u200b", "\u200b ", "\u3000", " \u00a0 "])
EDGES = st.sampled_from(["", " ", "  ", "\u00a0", "\u200b", "\ufeff", "\n", " \t ", "\u2060"])
FORMS = st.sampled_from(["NFC", "NFD"])


@st.composite
def spaced(draw: st.DrawFn, text: str) -> str:
    """text with its spaces and edges redrawn, in either normal form."""
    words = text.split(" ")
    gaps = draw(st.lists(GAPS, min_size=len(words) - 1, max_size=len(words) - 1))
    body = words[0] + "".join(g + w for g, w in zip(gaps, words[1:], strict=True))
    return unicodedata.normalize(draw(FORMS), draw(EDGES) + body + draw(EDGES))


@st.composite
def described(draw: st.DrawFn, text: str) -> str:
    """A description with its lines' spaces redrawn, \\r\\n or \\n line breaks and blank lines between them."""
    breaks = st.sampled_from(["\n", "\r\n", "\n\n", " \n", "\n \u00a0\n"])
    lines = [draw(spaced(line)) for line in text.split("\n")]
    return lines[0] + "".join(draw(breaks) + line for line in lines[1:])


# other surface forms of the same posting, which may change its answer but must change it alike at every door
RESTYLED = st.sampled_from([str.upper, str.lower, lambda t: f"{t} !!!", lambda t: f"*** {t} ***", lambda t: f"{t}..."])
