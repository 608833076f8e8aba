"""Cityscapes 19 train classes, official colours and the labelIds -> trainIds table."""

CLASS_NAMES = (
    "road",
    "sidewalk",
    "building",
    "wall",
    "fence",
    "pole",
    "traffic light",
    "traffic sign",
    "vegetation",
    "terrain",
    "sky",
    "person",
    "rider",
    "car",
    "truck",
    "bus",
    "train",
    "motorcycle",
    "bicycle",
)
PALETTE = (
    (128, 64, 128),
    (244, 35, 232),
    (70, 70, 70),
    (102, 102, 156),
    (190, 153, 153),
    (153, 153, 153),
    (250, 170, 30),
    (220, 220, 0),
    (107, 142, 35),
    (152, 251, 152),
    (70, 130, 180),
    (220, 20, 60),
    (255, 0, 0),
    (0, 0, 142),
    (0, 0, 70),
    (0, 60, 100),
    (0, 80, 100),
    (0, 0, 230),
    (119, 11, 32),
)
# Official label id -> train id; every other id in 0..33 is ignored.
LABEL_ID_TO_TRAIN_ID = {
    7: 0,
    8: 1,
    11: 2,
    12: 3,
    13: 4,
    17: 5,
    19: 6,
    20: 7,
    21: 8,
    22: 9,
    23: 10,
    24: 11,
    25: 12,
    26: 13,
    27: 14,
    28: 15,
    31: 16,
    32: 17,
    33: 18,
}
NUM_LABEL_IDS = 34


def label_ids_table():
    """256-entry table labelId -> trainId (255 ignore); -1 marks invalid values.

    Example:
    >>> t = label_ids_table()
    >>> t[7], t[33], t[0], t[255], t[40]
    (0, 18, 255, 255, -1)
    """
    table = [-1] * 256
    for label_id in range(NUM_LABEL_IDS):
        table[label_id] = LABEL_ID_TO_TRAIN_ID.get(label_id, 255)
    table[255] = 255
    return tuple(table)


def train_ids_table():
    """256-entry table for pre-made `*_labelTrainIds.png` (0..18 and 255 valid).

    Example:
    >>> t = train_ids_table()
    >>> t[18], t[19], t[255]
    (18, -1, 255)
    """
    table = [-1] * 256
    for train_id in range(len(CLASS_NAMES)):
        table[train_id] = train_id
    table[255] = 255
    return tuple(table)
