"""Accuracy on labelled sets through the code that tags: MELO (``melo``), labelled postings (``postings``),
ESCO cross-lingual (``xling``), by the rules of ``protocol``; scored with ``escotag.metrics``."""
