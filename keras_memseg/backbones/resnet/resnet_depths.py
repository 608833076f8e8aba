"""The ResNet depths the dilated backbone builds (He et al., CVPR 2016, Table 1)."""

# depth -> (block kind, blocks per stage): the ResNet depths this backbone builds.
RESNET_DEPTHS = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
}
