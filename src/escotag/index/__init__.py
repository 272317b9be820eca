"""The concept index: per-language blocks of label and description vectors and character n-grams, fused channels
(``concepts``), and the on-disk cache of encoded texts (``cache``)."""
