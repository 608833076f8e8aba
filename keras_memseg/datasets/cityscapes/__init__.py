"""Cityscapes (gtFine), 19 train ids; see `cityscapes_dataset_builder`."""
