"""Output folders: the one rule every writer of a folder follows, and file hashes.

A writer (a command, a golden export, a simulation) only replaces or writes into a folder that it
recognizably wrote itself. Each names its folder's **kind**, registered here by the module that
owns the folder's format (:func:`register_kind`: ``golden`` and ``golden-net`` in
``golden/vectors.py``, ``sim`` in ``sim/runner.py``, the commands' own kinds in ``helu/``), so
this module names no command:

- a folder that does not exist yet, or is empty, is taken;
- a folder holding the marker file ``.helu-output.json`` of the same kind (``{"kind":
  "golden"}``, written by :func:`mark` when a command has filled it) is taken: it is ours;
- a folder that looks like one of its kind but has no marker (written before markers existed)
  is taken only with ``force``;
- anything else (a user's own files, another kind's folder, a file, the current folder or a
  folder above it, the home folder, ``/``, a folder that holds one of the writer's inputs) is
  refused with :class:`OutputFolderError`, one line naming the folder and the way out. ``force``
  never applies to those.

The errors name the folder, not an option: the command line words them as its ``--out`` and
``--force`` options (``helu.cli``), using the error's fields.

:func:`staged` generalizes scratch-then-move: a command writes into a hidden sibling scratch
folder and the result is moved in only when every file was written, so a failure or an interrupt
leaves nothing half-written (and the scratch folder is removed). :func:`prepare` is for steps that
write in place for a long time (``helu flow``, ``helu sim``'s build cache): it checks the folder,
creates it and marks it.

:func:`sha256_file` is the one place where files are hashed to tie a result to its inputs.
Standard library only: ``golden``, ``hw``, ``sim`` and the command line all import it.
"""

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from helu.common.errors import UserError

__all__ = [
    "MARKER",
    "KINDS",
    "OutputFolderError",
    "UserError",
    "UnwritableFolderError",
    "register_kind",
    "claim",
    "mark",
    "kind_of",
    "prepare",
    "staged",
    "sha256_file",
    "sha256_files",
]

MARKER = ".helu-output.json"

KINDS: dict[str, object] = {}
"""The registered kinds of folder: kind -> what makes an unmarked folder look like one of that
kind (what ``force`` may replace): a set of names, or a callable on the folder's names."""


class OutputFolderError(UserError):
    """A folder a writer may not use: ``folder``, ``why`` and ``way_out`` (the message is
    ``"{folder}: {why}; {way_out}"``). ``force_kind`` is the kind a ``force`` would replace, when
    that is the way out (the command line then names its ``--force``)."""

    def __init__(self, folder, why: str, way_out: str, *, force_kind: str | None = None):
        super().__init__(f"{folder}: {why}; {way_out}")
        self.folder = folder
        self.why = why
        self.way_out = way_out
        self.force_kind = force_kind


class UnwritableFolderError(OSError):
    """A folder that cannot be created or written (``folder``; the message says why)."""

    def __init__(self, folder, detail: str):
        super().__init__(f"{folder}: cannot write there ({detail}); choose a writable folder")
        self.folder = folder


def register_kind(kind: str, names=(), *, looks_like=None) -> str:
    """Register folder kind ``kind``; returns it.

    An unmarked folder looks like one of this kind when it holds any of ``names`` (file or folder
    names), or, with ``looks_like``, when ``looks_like(set of its names)`` is true. Registering a
    kind again with the same names is a no-op (modules may be imported twice); with another rule
    it raises ``ValueError``: two writers would disagree about one kind of folder.
    """
    if not isinstance(kind, str) or not kind:
        raise ValueError(f"a folder kind is a non-empty string, not {kind!r}")
    rule = looks_like if looks_like is not None else frozenset(names)
    if KINDS.get(kind, rule) != rule:
        raise ValueError(f"folder kind {kind!r} is already registered with another rule")
    KINDS[kind] = rule
    return kind


def sha256_file(path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_files(paths) -> str:
    """One hex SHA-256 over several files: their names (not folders) and their hashes, in order."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(f"{Path(path).name}\0{sha256_file(path)}\n".encode())
    return digest.hexdigest()


def kind_of(folder) -> str | None:
    """The kind a folder's marker names, or ``None`` (no marker, or not readable)."""
    try:
        data = json.loads((Path(folder) / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return data.get("kind") if isinstance(data, dict) else None


def _refuse(folder, why: str, way_out: str = "choose a new or empty folder", **kwargs):
    raise OutputFolderError(folder, why, way_out, **kwargs)


def _looks_like(folder: Path, kind: str) -> bool:
    rule, found = KINDS[kind], {p.name for p in folder.iterdir()}
    return bool(rule(found) if callable(rule) else found & rule)


def claim(out, kind: str, *, force: bool = False, inputs=()) -> Path:
    """Check that a ``kind`` writer may write folder ``out``; returns it (nothing is created).

    ``inputs`` are the files or folders the writer reads: ``out`` may be none of them and hold
    none of them. Raises :class:`OutputFolderError` (a ``ValueError``), one line naming the
    folder and what to do, and ``ValueError`` for a kind nobody registered.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown output kind {kind!r}; one of {', '.join(KINDS)}")
    out = Path(out)
    where = out.resolve()
    cwd = Path.cwd().resolve()
    if where == cwd or where in cwd.parents:
        _refuse(out, "is the current folder or one above it, whose files are not helu's")
    if where == Path.home().resolve() or where.parent == where:
        _refuse(out, "is the home folder or the root folder")
    for item in inputs:
        if item is None:
            continue
        src = Path(item).resolve()
        if src == where or where in src.parents:
            _refuse(out, f"holds this command's input {item}", "write the output somewhere else")
    if out.exists() and not out.is_dir():
        _refuse(out, "is a file, not a folder", "choose a folder name")
    if not out.exists() or not any(out.iterdir()):
        return out
    found = kind_of(out)
    if found == kind:
        return out
    if found is not None:
        _refuse(out, f"is a {found} folder written by helu, not a {kind} folder")
    if _looks_like(out, kind):
        if force:
            return out
        _refuse(
            out,
            f"holds files helu did not mark as its own (a {kind} folder from an older helu?)",
            f"choose a new folder, or force the replacement of this {kind} folder",
            force_kind=kind,
        )
    _refuse(out, "holds files that helu did not write (they would be lost)")
    return out


def mark(folder, kind: str) -> None:
    """Mark ``folder`` as written by a ``kind`` writer (see :func:`claim`)."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    (Path(folder) / MARKER).write_text(json.dumps({"kind": kind}) + "\n")


def _writable(out: Path, exc: OSError):
    return UnwritableFolderError(out, str(exc.strerror or exc))


def prepare(out, kind: str, *, force: bool = False, inputs=(), clear: bool = False) -> Path:
    """:func:`claim` ``out``, create and mark it; ``clear`` empties it first (it is ours)."""
    out = claim(out, kind, force=force, inputs=inputs)
    try:
        if clear and out.is_dir():
            for child in out.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
        out.mkdir(parents=True, exist_ok=True)
        mark(out, kind)
    except OSError as exc:
        raise _writable(out, exc) from None
    return out


@contextlib.contextmanager
def staged(out, kind: str, *, force: bool = False, inputs=(), merge: bool = False):
    """Write a ``kind`` folder through a scratch folder; yields the scratch folder's path.

    On success the scratch folder replaces ``out`` (``merge``: its files are moved into ``out``,
    replacing files of the same name, and ``out``'s other files stay); on any exception,
    interrupt included, the scratch folder is removed and ``out`` is left as it was.
    """
    out = claim(out, kind, force=force, inputs=inputs)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    except OSError as exc:
        raise _writable(out, exc) from None
    old = None
    try:
        yield scratch
        mark(scratch, kind)
        if merge and out.is_dir():
            items = [item for item in scratch.iterdir() if item.name != MARKER]
            for item in items:  # every name checked before anything moves: all or nothing
                target = out / item.name
                if (target.exists() or target.is_symlink()) and target.is_dir() != item.is_dir():
                    what = "a folder" if target.is_dir() else "a file"
                    raise OutputFolderError(
                        out,
                        f"{target} is {what}, in the way of a file of this run",
                        "move it away or choose another folder",
                    )
            for item in items:
                target = out / item.name
                if item.is_dir() and target.is_dir():
                    shutil.rmtree(target)
                os.replace(item, target)
            mark(out, kind)
        else:
            if out.exists():
                old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
                os.replace(out, old / out.name)
            try:
                os.replace(scratch, out)
            except BaseException:
                if old is not None:
                    os.replace(old / out.name, out)
                    old = None
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
