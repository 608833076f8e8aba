"""CamVid (SegNet tutorial release), 11 classes; see `camvid_dataset_builder`."""
