"""CamVid class names, palette and raw-id mapping (11 = Unlabelled -> 255)."""

CLASS_NAMES = (
    "Sky",
    "Building",
    "Pole",
    "Road",
    "Pavement",
    "Tree",
    "SignSymbol",
    "Fence",
    "Car",
    "Pedestrian",
    "Bicyclist",
)
# Colours of the SegNet tutorial's CamVid colour map.
PALETTE = (
    (128, 128, 128),
    (128, 0, 0),
    (192, 192, 128),
    (128, 64, 128),
    (60, 40, 222),
    (128, 128, 0),
    (192, 128, 128),
    (64, 64, 128),
    (64, 0, 128),
    (64, 64, 0),
    (0, 128, 192),
)
UNLABELLED_ID = 11


def raw_to_train_table():
    """256-entry table raw id -> train id; -1 marks values that are errors.

    Example:
    >>> table = raw_to_train_table()
    >>> table[3], table[11], table[255], table[12]
    (3, 255, 255, -1)
    """
    table = [-1] * 256
    for raw in range(len(CLASS_NAMES)):
        table[raw] = raw
    table[UNLABELLED_ID] = 255
    table[255] = 255
    return tuple(table)
