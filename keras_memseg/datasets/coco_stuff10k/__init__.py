"""COCO-Stuff (coco_stuff10k); see `coco_stuff10k_dataset_builder`."""
