"""Every model family trains at batch size 1, and on 1x1 feature maps, with the CPU
kernels `import keras_memseg` chooses for this CPU and with Eigen's (issue #34).

On an Intel Xeon with AVX-512 VNNI, and on an AMD EPYC with AVX-512 VNNI and BF16,
`fit` at batch 1 died with a segmentation fault or a glibc heap-corruption abort inside
oneDNN's AVX-512 kernels (fine with oneDNN off, fine at batch 2). A native crash kills
the process, so each setting trains in a subprocess and the test reads its exit status.
`import keras_memseg` turns oneDNN off on AVX-512 CPUs and on elsewhere
(`keras_memseg.tensorflow_runtime.prefer_onednn`). The crash is intermittent and depends
on the process (on the AMD EPYC these subprocesses trained with oneDNN on while the
benchmark worker of `benchmarks/compare_reference.py --batch 1` died 3 of 3 times): the
slow test `tests/benchmarks/test_compare_reference.py` runs that worker too.
"""

import json
import os
import subprocess
import sys

import pytest

from keras_memseg.tensorflow_runtime import onednn_is_safe

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SCRIPT = r"""
import keras_memseg  # first: it chooses TensorFlow's CPU kernels before TensorFlow loads
import json
import sys
import numpy as np
import keras
from keras_memseg.backbones import DilatedResNetBackbone
from keras_memseg.models import DeepLabV3, MemorySegmenter
from keras_memseg.optimizers import TorchSGD
from tensorflow.python.util import _pywrap_util_port

families = {
    "deeplabv3": lambda b: DeepLabV3(b, num_classes=3, feats_channels=16, aux_channels=8),
    "mcibi_aspp": lambda b: MemorySegmenter(
        b, num_classes=3, feats_channels=16, transform_channels=8, aux_channels=8
    ),
    "mcibi_ppm": lambda b: MemorySegmenter(
        b, num_classes=3, context="ppm", feats_channels=16, transform_channels=8,
        aux_channels=8, ppm_bins=(1, 2),
    ),
    "mcibi_none": lambda b: MemorySegmenter(
        b, num_classes=3, context=None, feats_channels=16, transform_channels=8,
        aux_channels=8,
    ),
}
rng = np.random.default_rng(0)
# "name@size": 32x32 at output stride 8 is a 4x4 feature map, 8x8 a 1x1 feature map.
for case in sys.argv[1:]:
    name, size = case.split("@")
    size, build = int(size), families[name]
    keras.utils.set_random_seed(0)
    backbone = DilatedResNetBackbone(depth=18, output_stride=8, base_channels=4)
    model = build(backbone)
    model.compile(optimizer=TorchSGD(0.01, momentum=0.9))
    x = rng.random((1, size, size, 3)).astype("float32")
    y = rng.integers(0, 3, (1, size, size)).astype("int32")
    history = model.fit(x, y, batch_size=1, epochs=2, verbose=0)
    loss = history.history["loss"][-1]
    weights_finite = all(np.isfinite(w).all() for w in model.get_weights())
    print("TRAINED", json.dumps({"model": name, "size": size, "loss": float(loss),
                                 "finite": bool(weights_finite)}), flush=True)
print("ONEDNN", bool(_pywrap_util_port.IsMklEnabled()), flush=True)
"""


FAMILIES = ("deeplabv3", "mcibi_aspp", "mcibi_ppm", "mcibi_none")
# Each case traces a fresh train step (~30 CPU-seconds), so the default run covers both
# families and both map sizes with oneDNN on and one case with it off (the CI budget);
# `--run-slow` runs every family (ASPP, PPM, no context) and map size in both settings.
FAST = {
    "chosen": ("deeplabv3@32", "mcibi_ppm@8"),  # both families, a 4x4 and a 1x1 map
    "0": ("mcibi_aspp@8",),
}
# The package's choice on this CPU (the oneDNN state the "chosen" run must report).
CHOSEN_ONEDNN = onednn_is_safe()
FULL = tuple(f"{name}@{size}" for size in (32, 8) for name in FAMILIES)


def _train_at_batch_one(onednn, cases):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("TF_ENABLE_ONEDNN_OPTS", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")
    }
    env.update(KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT)
    if onednn != "chosen":
        env["TF_ENABLE_ONEDNN_OPTS"] = onednn
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, *cases],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
    )
    # A negative code is the signal that killed it (-11: SIGSEGV, -6: SIGABRT).
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stderr[-3000:]}"
    rows = [
        json.loads(line.split(" ", 1)[1])
        for line in proc.stdout.splitlines()
        if line.startswith("TRAINED ")
    ]
    assert [f"{r['model']}@{r['size']}" for r in rows] == list(cases)
    for row in rows:
        assert row["finite"] and row["loss"] == row["loss"], row  # no NaN weights or loss
    expected = CHOSEN_ONEDNN if onednn == "chosen" else onednn == "1"
    assert f"ONEDNN {expected}" in proc.stdout  # the setting asked for is in force


@pytest.mark.parametrize("onednn", ["chosen", "0"])
def test_every_family_trains_at_batch_one(onednn):
    _train_at_batch_one(onednn, FAST[onednn])


@pytest.mark.slow
@pytest.mark.parametrize("onednn", ["chosen", "0"])
def test_every_family_and_map_size_at_batch_one(onednn):
    _train_at_batch_one(onednn, FULL)
