"""Fitting a model's learned parts from ESCO and labelled titles: dev splits and fusion weights (``tuning``), heads
and calibration (``training``)."""
