"""Named presets of `MemorySegmenter`: the authors' published MCIBI checkpoints.

One entry per model of the authors' results table (SegmentationBLWX/sssegmentation,
`docs/modelzoo/mcibi/README.md`, their current model zoo: DeepLabV3 + MCIBI on
COCO-Stuff-10k, ADE20K, Cityscapes and LIP; an older page, `docs/performances/memorynet`,
lists the same runs under `ssseg_memorynet/` file names, with slightly different
multi-scale numbers). keras_memseg downloads nothing: an entry says which file to fetch
(`source`) and the command that converts it (`convert_command`) into
`keras_memseg.presets.preset_home()/<name>`, where `MemorySegmenter.from_preset(name)`
then finds it.

Fields of an entry:
    description: one line.
    dataset: the registered dataset it was trained on (`keras_memseg.datasets.get_info`):
        class names, palette, test resize and inference mode of the converted preset.
    backbone: our name of its backbone; `backbone_label`: the authors' name.
    miou: the published single-scale mIoU (%), None where not published (Cityscapes).
    miou_tta: the published mIoU (%) with test-time augmentation: multi-scale + flip,
        flip only for LIP (`tta` says which).
    crop_size: the training crop (h, w); `splits`: "train/eval" sets of the result.
    config: the authors' config file of the run.
    file, source: the checkpoint's file name and its URL (the authors' release).
    sha256: the file's SHA-256, None for all: the authors publish no hashes and the
        machine this table was written on had no network to compute them. The converter
        checks a hash wherever the table has one, and records the hash it computed in the
        preset's metadata.json in any case.
    convertible: whether keras_memseg has the backbone (ResNet-50/101 only; ResNeSt,
        HRNetV2 and ViT are not supported yet, issue #30).
    convert_command: `keras-memseg convert FILE --preset NAME`.

Plain data: nothing here imports Keras.

Example:
>>> entry = mcibi_presets["mcibi_resnet50_ade20k"]
>>> entry["file"], entry["miou"], entry["miou_tta"], entry["convertible"]
('mcibi_deeplabv3_r50_ade20k.pth', 44.39, 45.97, True)
>>> entry["convert_command"]
'keras-memseg convert mcibi_deeplabv3_r50_ade20k.pth --preset mcibi_resnet50_ade20k'
"""

RELEASE_URL = "https://github.com/SegmentationBLWX/modelstore/releases/download/ssseg_mcibi/"
CONFIG_URL = (
    "https://raw.githubusercontent.com/SegmentationBLWX/sssegmentation/main/ssseg/configs/mcibi/"
)
UNSUPPORTED_BACKBONE_ISSUE = 30

# Our backbone name -> (the authors' file-name tag, their config tag, their label, convertible).
_BACKBONES = {
    "resnet50": ("r50", "resnet50os8", "R-50-D8", True),
    "resnet101": ("r101", "resnet101os8", "R-101-D8", True),
    "resnest101": ("s101", "resnest101os8", "ResNeSt-101 (S-101-D8)", False),
    "hrnetv2w48": ("hrnetv2w48", "hrnetv2w48", "HRNetV2p-W48", False),
    "vitlarge": ("vitlarge", "vitlarge", "ViT-Large", False),
}
# Our dataset name -> (the authors' tag, their label, crop (h, w), train/eval sets, TTA).
_DATASETS = {
    "coco_stuff10k": ("cocostuff10k", "COCO-Stuff-10k", (512, 512), "train/test", "ms+flip"),
    "ade20k": ("ade20k", "ADE20K", (512, 512), "train/val", "ms+flip"),
    "cityscapes": ("cityscapes", "Cityscapes", (512, 1024), "trainval/test", "ms+flip"),
    "lip": ("lip", "LIP", (473, 473), "train/val", "flip"),
}
# (backbone, dataset, mIoU %, mIoU with TTA %), as the authors' README publishes them.
_RESULTS = (
    ("resnet50", "coco_stuff10k", 38.84, 39.78),
    ("resnet101", "coco_stuff10k", 39.84, 41.52),
    ("resnest101", "coco_stuff10k", 41.18, 42.38),
    ("hrnetv2w48", "coco_stuff10k", 39.77, 41.48),
    ("vitlarge", "coco_stuff10k", 44.27, 45.50),
    ("resnet50", "ade20k", 44.39, 45.97),
    ("resnet101", "ade20k", 45.66, 47.27),
    ("resnest101", "ade20k", 46.63, 47.39),
    ("hrnetv2w48", "ade20k", 45.79, 47.46),
    ("vitlarge", "ade20k", 49.73, 50.99),
    ("resnet50", "cityscapes", None, 79.97),
    ("resnet101", "cityscapes", None, 82.10),
    ("resnest101", "cityscapes", None, 81.51),
    ("hrnetv2w48", "cityscapes", None, 82.54),
    ("resnet50", "lip", 53.73, 54.08),
    ("resnet101", "lip", 55.02, 55.42),
    ("resnest101", "lip", 56.21, 56.34),
    ("hrnetv2w48", "lip", 56.40, 56.99),
)


def _entry(name, backbone, dataset, miou, miou_tta):
    file_tag, config_tag, backbone_label, convertible = _BACKBONES[backbone]
    data_tag, data_label, crop_size, splits, tta = _DATASETS[dataset]
    file = f"mcibi_deeplabv3_{file_tag}_{data_tag}.pth"
    return {
        "description": f"DeepLabV3 + MCIBI, {backbone_label}, trained on {data_label} "
        "(the authors' weights).",
        "dataset": dataset,
        "backbone": backbone,
        "backbone_label": backbone_label,
        "miou": miou,
        "miou_tta": miou_tta,
        "tta": tta,
        "crop_size": crop_size,
        "splits": splits,
        "config": f"{CONFIG_URL}mcibi_deeplabv3_{config_tag}_{data_tag}.py",
        "file": file,
        "source": RELEASE_URL + file,
        "sha256": None,  # not published; see the module docstring
        "convertible": convertible,
        "convert_command": f"keras-memseg convert {file} --preset {name}",
    }


mcibi_presets = {
    f"mcibi_{backbone}_{dataset}": _entry(f"mcibi_{backbone}_{dataset}", backbone, dataset, *miou)
    for backbone, dataset, *miou in _RESULTS
}
