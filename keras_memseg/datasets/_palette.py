"""Deterministic colour palettes for datasets without an official one."""


def voc_palette(num_classes):
    """Returns the PASCAL VOC bit-interleaved colour map for `num_classes` ids.

    Used for datasets whose authors publish no palette of their own; colours
    are distinct for the first 256 ids and identical on every machine.

    Example:
    >>> voc_palette(3)
    ((0, 0, 0), (128, 0, 0), (0, 128, 0))
    """
    colours = []
    for index in range(num_classes):
        r = g = b = 0
        value = index
        for shift in range(7, -1, -1):
            r |= ((value >> 0) & 1) << shift
            g |= ((value >> 1) & 1) << shift
            b |= ((value >> 2) & 1) << shift
            value >>= 3
        colours.append((r, g, b))
    return tuple(colours)
