"""ADE20K 150 class names (mmsegmentation spelling), palette, reduce-zero-label table."""

from keras_memseg.datasets._palette import voc_palette

CLASS_NAMES = (
    "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed", "windowpane",
    "grass", "cabinet", "sidewalk", "person", "earth", "door", "table", "mountain",
    "plant", "curtain", "chair", "car", "water", "painting", "sofa", "shelf", "house",
    "sea", "mirror", "rug", "field", "armchair", "seat", "fence", "desk", "rock",
    "wardrobe", "lamp", "bathtub", "railing", "cushion", "base", "box", "column",
    "signboard", "chest of drawers", "counter", "sand", "sink", "skyscraper",
    "fireplace", "refrigerator", "grandstand", "path", "stairs", "runway", "case",
    "pool table", "pillow", "screen door", "stairway", "river", "bridge", "bookcase",
    "blind", "coffee table", "toilet", "flower", "book", "hill", "bench", "countertop",
    "stove", "palm", "kitchen island", "computer", "swivel chair", "boat", "bar",
    "arcade machine", "hovel", "bus", "towel", "light", "truck", "tower", "chandelier",
    "awning", "streetlight", "booth", "television receiver", "airplane", "dirt track",
    "apparel", "pole", "land", "bannister", "escalator", "ottoman", "bottle", "buffet",
    "poster", "stage", "van", "ship", "fountain", "conveyer belt", "canopy", "washer",
    "plaything", "swimming pool", "stool", "barrel", "basket", "waterfall", "tent",
    "bag", "minibike", "cradle", "oven", "ball", "food", "step", "tank", "trade name",
    "microwave", "pot", "animal", "bicycle", "lake", "dishwasher", "screen", "blanket",
    "sculpture", "hood", "sconce", "vase", "traffic light", "tray", "ashcan", "fan",
    "pier", "crt screen", "plate", "monitor", "bulletin board", "shower", "radiator",
    "glass", "clock", "flag",
)
# Generated VOC-style colours (not mmsegmentation's hand-picked ADE palette).
PALETTE = voc_palette(len(CLASS_NAMES) + 1)[1:]


def reduce_zero_label_table():
    """256-entry table: 0 -> 255, i -> i-1 for 1..150, 255 -> 255, else -1 (invalid).

    Example:
    >>> t = reduce_zero_label_table()
    >>> t[0], t[1], t[150], t[151], t[255]
    (255, 0, 149, -1, 255)
    """
    table = [-1] * 256
    table[0] = 255
    for raw in range(1, len(CLASS_NAMES) + 1):
        table[raw] = raw - 1
    table[255] = 255
    return tuple(table)
