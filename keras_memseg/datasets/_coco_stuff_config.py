"""Builder configs shared by the COCO-Stuff builders: 182-way (default) or 171 contiguous."""

import dataclasses

import tensorflow_datasets as tfds


@dataclasses.dataclass(eq=False)
class CocoStuffConfig(tfds.core.BuilderConfig):
    """COCO-Stuff label space: `num_classes=182` (reference) or `171` (mmseg remap)."""

    num_classes: int = 182


CONFIGS = (
    CocoStuffConfig(
        name="182",
        num_classes=182,
        description="Reference 182-way ids (raw 1..182 -> 0..181); 11 ids never occur.",
    ),
    CocoStuffConfig(
        name="171",
        num_classes=171,
        description="mmsegmentation's 171 contiguous ids (unused ids removed).",
    ),
)
