"""LIP class names, palette and the left/right pairs swapped by horizontal flips."""

from keras_memseg.datasets._palette import voc_palette

CLASS_NAMES = (
    "background",
    "hat",
    "hair",
    "glove",
    "sunglasses",
    "upper-clothes",
    "dress",
    "coat",
    "socks",
    "pants",
    "jumpsuits",
    "scarf",
    "skirt",
    "face",
    "left-arm",
    "right-arm",
    "left-leg",
    "right-leg",
    "left-shoe",
    "right-shoe",
)
PALETTE = voc_palette(len(CLASS_NAMES))
FLIP_PAIRS = ((14, 15), (16, 17), (18, 19))


def raw_to_train_table():
    """256-entry table: 0..19 are classes, 255 ignore, anything else invalid (-1).

    Example:
    >>> t = raw_to_train_table()
    >>> t[0], t[19], t[20], t[255]
    (0, 19, -1, 255)
    """
    table = [-1] * 256
    for raw in range(len(CLASS_NAMES)):
        table[raw] = raw
    table[255] = 255
    return tuple(table)
