"""Accuracy on labelled sets through the code that tags (``evaluators``), scored with ``escotag.metrics``."""
