"""Read a dataset's files from `manual_dir`, whether extracted or still zipped.

`ManualSource` presents one tree of relative POSIX paths: the files under
`manual_dir` plus the members of every `*.zip` directly inside it (members
keep their in-archive paths). Extracted files win over archive members.

Every file it reads must resolve (`os.path.realpath`) inside the resolved
`manual_dir`: a list entry such as `train/../outside.png` or a folder that is a
symlink pointing elsewhere is refused, never read.
"""

import os
import pathlib
import posixpath
import zipfile

from keras_memseg.datasets.errors import DatasetNotFoundError


class ManualSource:
    """The union of the extracted files and zip members under `manual_dir`.

    Args:
        manual_dir: folder holding the archives and/or extracted folders.
        name: dataset name, for error messages.

    Example:
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "a.txt").write_text("hi")
    >>> src = ManualSource(d, "demo")
    >>> src.exists("a.txt"), src.read("a.txt")
    (True, b'hi')
    """

    def __init__(self, manual_dir, name):
        from keras_memseg.datasets.errors import missing_data_message

        if manual_dir is None or not pathlib.Path(manual_dir).is_dir():
            raise DatasetNotFoundError(
                f"manual_dir {manual_dir} does not exist or is not a folder.\n"
                + missing_data_message(name, manual_dir)
            )
        self.root = pathlib.Path(manual_dir)
        self.real_root = os.path.realpath(self.root)
        self.name = name
        self._members = {}  # member path -> archive path
        self._archives = {}  # archive path -> open ZipFile (this instance only)
        for archive in sorted(self.root.glob("*.zip")):
            if not _within(os.path.realpath(archive), self.real_root):
                raise DatasetNotFoundError(self.outside_message(archive.name))
            try:
                with zipfile.ZipFile(archive) as handle:
                    names = handle.namelist()
            except zipfile.BadZipFile as error:
                raise DatasetNotFoundError(
                    f"{archive} is not a readable zip archive ({error}); "
                    "re-download it or extract it by hand"
                ) from error
            for member in names:
                if not member.endswith("/"):
                    self._members.setdefault(member, archive)

    def is_empty(self):
        """True when manual_dir has neither files nor archive members."""
        return not self._members and not any(self.root.iterdir())

    def exists(self, rel):
        """True when `rel` is a file on disk or an archive member."""
        return (self.root / rel).is_file() or rel in self._members

    def dir_exists(self, rel):
        """True when folder `rel` exists on disk or inside an archive."""
        if (self.root / rel).is_dir():
            return True
        prefix = rel.rstrip("/") + "/"
        return any(member.startswith(prefix) for member in self._members)

    def resolve(self, rel):
        """Real path of `rel` on disk (symlinks and `..` resolved), whether or not it exists."""
        return os.path.realpath(self.root / rel)

    def is_inside(self, rel):
        """True when reading `rel` stays inside `manual_dir`.

        A file on disk (or a path that is nowhere) must resolve inside the
        resolved `manual_dir`; an archive member must not climb out with `..`.

        Example:
        >>> import tempfile
        >>> src = ManualSource(tempfile.mkdtemp(), "demo")
        >>> src.is_inside("a/b.png"), src.is_inside("a/../../b.png")
        (True, False)
        """
        if not (self.root / rel).is_file() and rel in self._members:
            normal = posixpath.normpath(rel)
            return not (normal.startswith("/") or normal == ".." or normal.startswith("../"))
        return _within(self.resolve(rel), self.real_root)

    def outside_message(self, rel):
        """One line saying that `rel` resolves outside `manual_dir` and is refused."""
        return (
            f"{self.root / rel} resolves to {self.resolve(rel)}, outside manual_dir "
            f"{self.real_root}; refusing to read it (copy the files into manual_dir)"
        )

    def read(self, rel):
        """Returns the bytes of `rel`; FileNotFoundError names the path.

        Raises:
            DatasetNotFoundError: `rel` resolves outside `manual_dir`.
        """
        if not self.is_inside(rel):
            raise DatasetNotFoundError(self.outside_message(rel))
        path = self.root / rel
        if path.is_file():
            return path.read_bytes()
        archive = self._members.get(rel)
        if archive is None:
            raise FileNotFoundError(f"{self.describe(rel)} not found")
        if archive not in self._archives:
            self._archives[archive] = zipfile.ZipFile(archive)
        return self._archives[archive].read(rel)

    def describe(self, rel):
        """Human-readable location of `rel`: a path, or `archive.zip:member`."""
        archive = self._members.get(rel)
        if archive is not None and not (self.root / rel).is_file():
            return f"{archive}:{rel}"
        return str(self.root / rel)

    def list_files(self, rel_dir, suffix="", recursive=False):
        """Sorted relative paths of files in `rel_dir` ending with `suffix`."""
        prefix = rel_dir.rstrip("/") + "/" if rel_dir else ""
        found = set()
        disk_dir = self.root / rel_dir
        if disk_dir.is_dir():
            if recursive:
                for folder, _, files in os.walk(disk_dir):
                    rel_folder = pathlib.Path(folder).relative_to(self.root).as_posix()
                    for file_name in files:
                        if file_name.endswith(suffix):
                            found.add(f"{rel_folder}/{file_name}")
            else:
                for entry in disk_dir.iterdir():
                    if entry.is_file() and entry.name.endswith(suffix):
                        found.add(prefix + entry.name)
        for member in self._members:
            if member.startswith(prefix) and member.endswith(suffix):
                if recursive or "/" not in member[len(prefix) :]:
                    found.add(member)
        return sorted(found)

    def find_root(self, anchor, candidates=("",)):
        """First prefix `p` (from `candidates`, then one folder deeper) with `p + anchor`.

        Lets users extract an archive into an extra folder, e.g.
        `manual_dir/cocostuff-10k-v1.1/imageLists/train.txt`. Returns None
        when the anchor is nowhere.
        """
        tried = list(candidates)
        top = {m.split("/", 1)[0] + "/" for m in self._members if "/" in m}
        top |= {p.name + "/" for p in self.root.iterdir() if p.is_dir()}
        for base in list(candidates):
            tried += [t + base for t in sorted(top)]
        for prefix in tried:
            if self.exists(prefix + anchor) or self.dir_exists(prefix + anchor):
                return prefix
        return None

    def close(self):
        """Closes the archives opened by `read`."""
        for handle in self._archives.values():
            handle.close()
        self._archives.clear()


def _within(path, root):
    """True when real path `path` is `root` or lies below it."""
    return os.path.commonpath([path, root]) == root
