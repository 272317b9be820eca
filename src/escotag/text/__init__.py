"""Text in: normalisation and label variants (``normalization``), postings and labelled files (``postings``),
language identification (``langid``)."""
