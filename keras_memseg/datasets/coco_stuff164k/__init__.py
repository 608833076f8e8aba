"""COCO-Stuff (coco_stuff164k); see `coco_stuff164k_dataset_builder`."""
