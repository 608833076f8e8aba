"""A run folder: one run at a time (an OS lock), and resumed only with its own config.

`RunFolder(path).open(config)` takes an exclusive `fcntl` lock on `path/.lock` for
as long as the run lives, so a second run into the same folder stops at once with the
holder's pid instead of overwriting its files; then compares `config` with the
`config.json` a previous run wrote there: a resume must train the same model on the
same data with the same schedule, so any difference in those fields is refused before
a weight is touched, with the list of differences. Evaluation and bookkeeping fields
(`RESUMABLE_FIELDS`) may change between the runs.
"""

import errno
import fcntl
import json
import os
import tempfile

CONFIG_FILE = "config.json"
LOCK_FILE = ".lock"
# Fields that change nothing about the trained weights: a resume may differ in them.
RESUMABLE_FIELDS = frozenset(
    {
        "data_dir",
        "manual_dir",
        "test_scale",
        "test_keep_ratio",
        "eval_mode",
        "eval_crop_size",
        "eval_stride",
        "eval_scales",
        "eval_flip",
        "probs_before_resize",
        "max_eval_examples",
        "strategy",
        "tpu",
        "jit_compile",
        "inter_op_parallelism_threads",
        "intra_op_parallelism_threads",
        "run_dir",
        "export_dir",
        "checkpoint_every",
        "keep_checkpoints",
        "eval_every",
        "show_dir",
        "verbose",
        "eval_split",
        "name",
        "max_nonfinite_batches",
        "steps_per_epoch",
        "memory_loss_start_step",
    }
)


# Fields added to RecipeConfig after runs were written: a config.json without one holds
# its default (a run of an earlier version resumes).
ADDED_FIELDS = {"init_from": ""}


class RunFolderError(RuntimeError):
    """The run folder cannot be used by this run; the message says why and what to do."""


def atomic_write_text(path, text):
    """Writes `text` to `path` through a temporary file and a rename (never half-written)."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def config_differences(old, new):
    """`["field: old -> new", ...]` for the fields of two config dicts that matter."""
    out = []
    for key in sorted(set(old) | set(new)):
        if key in RESUMABLE_FIELDS:
            continue
        missing = ADDED_FIELDS.get(key, "<absent>")
        a, b = old.get(key, missing), new.get(key, missing)
        if a != b:
            out.append(f"{key}: {a!r} -> {b!r}")
    return out


class RunFolder:
    """The folder of one training run, locked while the run lives.

    Example:
    >>> import tempfile
    >>> with RunFolder(tempfile.mkdtemp()).open({"lr": 0.1}) as run:
    ...     os.path.exists(os.path.join(run.path, "config.json"))
    True
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        self._lock = None
        self.resumed = False  # set by `open`: the folder already held this run's config

    def open(self, config):
        """Locks the folder and checks or records `config` (a JSON-serialisable dict).

        Raises `RunFolderError` (one line naming the folder) when it is held by another
        run, holds another config, or cannot be written (a read-only location, a file).
        """
        try:
            os.makedirs(self.path, exist_ok=True)
            self.lock()
        except OSError as error:
            raise self._unwritable(error) from None
        try:
            self.check_or_record(config)
        except OSError as error:
            self.release()
            raise self._unwritable(error) from None
        except BaseException:
            self.release()
            raise
        return self

    def _unwritable(self, error):
        """The `RunFolderError` of an `OSError` met while creating or writing the folder."""
        reason = error.strerror or type(error).__name__
        return RunFolderError(
            f"cannot write the run folder {self.path} ({reason}): pass a writable --run_dir"
        )

    def lock(self):
        path = os.path.join(self.path, LOCK_FILE)
        handle = open(path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno not in (errno.EAGAIN, errno.EACCES):
                handle.close()
                raise
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise RunFolderError(
                f"run folder {self.path} is in use by another run (pid {holder}); wait for "
                "it to finish or pass another --run_dir"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._lock = handle

    def release(self):
        if self._lock is not None:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None

    def check_or_record(self, config):
        config = json.loads(json.dumps(config))  # tuples become lists, as in the file
        path = os.path.join(self.path, CONFIG_FILE)
        self.resumed = os.path.exists(path)
        if self.resumed:
            try:
                with open(path) as f:
                    old = json.load(f)
            except (OSError, ValueError) as error:
                raise RunFolderError(
                    f"{path} is unreadable ({error}); this run folder cannot "
                    "be resumed: pass another --run_dir"
                ) from None
            differences = config_differences(old, config)
            if differences:
                raise RunFolderError(
                    f"run folder {self.path} holds a run with another config "
                    f"({'; '.join(differences)}): resume it with the same flags, or start a "
                    "new run with another --run_dir"
                )
        atomic_write_text(path, json.dumps(config, indent=2))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()
        return False
