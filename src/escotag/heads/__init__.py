"""A trained model's learned parts: the classifier head (``head``) and the saved artifact with its fused weight,
calibration and labelled titles (``trained``)."""
