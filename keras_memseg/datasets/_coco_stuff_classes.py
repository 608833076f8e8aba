"""COCO-Stuff class names (182 ids, 0-based), palette and the 171-contiguous remap.

Shared by `coco_stuff10k` and `coco_stuff164k`. Ids are the 0-based COCO-Stuff
ids (raw 1..182 minus one); 11 thing ids never occur in any annotation.
"""

from keras_memseg.datasets._palette import voc_palette

CLASS_NAMES_182 = (
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "airplane",
    "bus",
    "train",
    "truck",
    "boat",
    "traffic light",
    "fire hydrant",
    "street sign",
    "stop sign",
    "parking meter",
    "bench",
    "bird",
    "cat",
    "dog",
    "horse",
    "sheep",
    "cow",
    "elephant",
    "bear",
    "zebra",
    "giraffe",
    "hat",
    "backpack",
    "umbrella",
    "shoe",
    "eye glasses",
    "handbag",
    "tie",
    "suitcase",
    "frisbee",
    "skis",
    "snowboard",
    "sports ball",
    "kite",
    "baseball bat",
    "baseball glove",
    "skateboard",
    "surfboard",
    "tennis racket",
    "bottle",
    "plate",
    "wine glass",
    "cup",
    "fork",
    "knife",
    "spoon",
    "bowl",
    "banana",
    "apple",
    "sandwich",
    "orange",
    "broccoli",
    "carrot",
    "hot dog",
    "pizza",
    "donut",
    "cake",
    "chair",
    "couch",
    "potted plant",
    "bed",
    "mirror",
    "dining table",
    "window",
    "desk",
    "toilet",
    "door",
    "tv",
    "laptop",
    "mouse",
    "remote",
    "keyboard",
    "cell phone",
    "microwave",
    "oven",
    "toaster",
    "sink",
    "refrigerator",
    "blender",
    "book",
    "clock",
    "vase",
    "scissors",
    "teddy bear",
    "hair drier",
    "toothbrush",
    "hair brush",
    "banner",
    "blanket",
    "branch",
    "bridge",
    "building-other",
    "bush",
    "cabinet",
    "cage",
    "cardboard",
    "carpet",
    "ceiling-other",
    "ceiling-tile",
    "cloth",
    "clothes",
    "clouds",
    "counter",
    "cupboard",
    "curtain",
    "desk-stuff",
    "dirt",
    "door-stuff",
    "fence",
    "floor-marble",
    "floor-other",
    "floor-stone",
    "floor-tile",
    "floor-wood",
    "flower",
    "fog",
    "food-other",
    "fruit",
    "furniture-other",
    "grass",
    "gravel",
    "ground-other",
    "hill",
    "house",
    "leaves",
    "light",
    "mat",
    "metal",
    "mirror-stuff",
    "moss",
    "mountain",
    "mud",
    "napkin",
    "net",
    "paper",
    "pavement",
    "pillow",
    "plant-other",
    "plastic",
    "platform",
    "playingfield",
    "railing",
    "railroad",
    "river",
    "road",
    "rock",
    "roof",
    "rug",
    "salad",
    "sand",
    "sea",
    "shelf",
    "sky-other",
    "skyscraper",
    "snow",
    "solid-other",
    "stairs",
    "stone",
    "straw",
    "structural-other",
    "table",
    "tent",
    "textile-other",
    "towel",
    "tree",
    "vegetable",
    "wall-brick",
    "wall-concrete",
    "wall-other",
    "wall-panel",
    "wall-stone",
    "wall-tile",
    "wall-wood",
    "water-other",
    "waterdrops",
    "window-blind",
    "window-other",
    "wood",
)
# 0-based ids of the 11 COCO thing classes that have no annotations.
UNUSED_IDS = (11, 25, 28, 29, 44, 65, 67, 68, 70, 82, 90)
CLASS_NAMES_171 = tuple(
    name for index, name in enumerate(CLASS_NAMES_182) if index not in UNUSED_IDS
)
PALETTE_182 = voc_palette(len(CLASS_NAMES_182) + 1)[1:]
PALETTE_171 = tuple(colour for index, colour in enumerate(PALETTE_182) if index not in UNUSED_IDS)


def id182_to_171_table():
    """256-entry table from 0-based 182-way ids to 171 contiguous ids.

    The 11 unused ids map to 255 (they never occur); 255 stays 255.

    Example:
    >>> t = id182_to_171_table()
    >>> t[0], t[11], t[12], t[181], t[255]
    (0, 255, 11, 170, 255)
    """
    table = [-1] * 256
    next_id = 0
    for index in range(len(CLASS_NAMES_182)):
        if index in UNUSED_IDS:
            table[index] = 255
        else:
            table[index] = next_id
            next_id += 1
    table[255] = 255
    return tuple(table)


def zero_based_table(num_classes):
    """256-entry table for 0-based COCO-Stuff PNGs (0..181 valid, 255 ignore).

    With `num_classes=171` the ids are remapped to contiguous ids as well.

    Example:
    >>> zero_based_table(182)[181], zero_based_table(182)[200]
    (181, -1)
    """
    table = [-1] * 256
    for index in range(len(CLASS_NAMES_182)):
        table[index] = index
    table[255] = 255
    if num_classes == 171:
        remap = id182_to_171_table()
        table = [remap[v] if v >= 0 else -1 for v in table]
    elif num_classes != 182:
        raise ValueError(f"COCO-Stuff num_classes must be 182 or 171, got {num_classes}")
    return tuple(table)


def one_based_table(num_classes):
    """Table for COCO-Stuff-10k `.mat` maps: S-1 for 1..182, 0 and 255 -> 255.

    Returns a 256-entry tuple (the .mat values above 255 are always invalid).

    Example:
    >>> t = one_based_table(182)
    >>> t[0], t[1], t[182], t[183], t[255]
    (255, 0, 181, -1, 255)
    """
    zero_based = zero_based_table(num_classes)
    table = [-1] * 256
    table[0] = 255
    for raw in range(1, len(CLASS_NAMES_182) + 1):
        table[raw] = zero_based[raw - 1]
    table[255] = 255
    return tuple(table)
