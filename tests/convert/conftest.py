"""The authors' tiny MCIBI checkpoint and what their code computed with it (see
`fixtures/sssegmentation/README.md`), converted once per test module."""

import json
import pathlib

import numpy as np
import pytest

FIXTURE = pathlib.Path(__file__).parent / "fixtures" / "sssegmentation"
CHECKPOINT = FIXTURE / "mcibi_r18_aspp.pth"
RECORDED = FIXTURE / "mcibi_r18_aspp.npz"


@pytest.fixture(scope="session")
def fixture_paths():
    return {"checkpoint": CHECKPOINT, "recorded": RECORDED}


@pytest.fixture(scope="module")
def recorded():
    """The recorded arrays (NHWC), with the JSON entries decoded."""
    with np.load(RECORDED) as data:
        out = {key: data[key] for key in data.files}
    for key in [k for k in out if k.endswith("_json")]:
        out[key] = json.loads(str(out[key]))
    return out


@pytest.fixture(scope="module")
def state():
    """The checkpoint's state dict as NumPy arrays."""
    from keras_memseg.convert import read_state_dict

    return read_state_dict(CHECKPOINT)


@pytest.fixture(scope="module")
def converted():
    """`(model, mapping)` of the fixture checkpoint (dropout 0, as recorded)."""
    from keras_memseg.convert import convert_checkpoint

    return convert_checkpoint(CHECKPOINT, dropout=0.0)
