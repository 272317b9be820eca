"""The concept index: per-language blocks of label and description vectors (encoded by the caller) and character
n-grams, scored and fused by channel (``concepts``)."""
