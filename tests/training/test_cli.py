"""`train_main`: what a recipe prints at the end of a run and when the disk is full."""

from keras_memseg.training import cli
from keras_memseg.training import get_recipe
from keras_memseg.training import trainer
from keras_memseg.training.callbacks import DiskFullError


def test_a_resume_that_is_not_exact_says_so_on_the_last_line(tmp_path, monkeypatch, capsys):
    note = "resume not exact: resumed from checkpoint c/ckpt-0000002.weights.h5 (step 2), ..."
    result = trainer.TrainResult(None, str(tmp_path), None, 4, 1.0, [], resume_note=note)
    monkeypatch.setattr(trainer, "train", lambda config: result)
    assert cli.train_main(get_recipe("sample")) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == f"note: {note}"


def test_a_full_disk_is_one_error_line(monkeypatch, capsys):
    def full(config):
        raise DiskFullError("no space left on the device of r/checkpoints to write x; ...")

    monkeypatch.setattr(trainer, "train", full)
    assert cli.train_main(get_recipe("sample")) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: no space left on the device of r/checkpoints to write x; ..."]
