"""LIP (Look Into Person), 20 classes; see `lip_dataset_builder`."""
