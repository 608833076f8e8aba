"""Metrics: the confusion-matrix segmentation metric (see the evaluation issue)."""
