"""Output folders: the one rule every command that writes a folder follows, and file hashes.

A command only replaces (or writes into) a folder that it recognizably wrote itself:

- a folder that does not exist yet, or is empty, is taken;
- a folder holding the marker file ``.helu-output.json`` of the same kind (``{"kind":
  "golden"}``, written by :func:`mark` when a command has filled it) is taken: it is ours;
- a folder that looks like one of its kind but has no marker (written before markers existed)
  is taken only with ``--force``;
- anything else (a user's own files, another command's folder, a file, the current folder or a
  folder above it, the home folder, ``/``, a folder that holds one of the command's inputs) is
  refused with a one-line error naming the folder and the way out. ``--force`` never applies to
  those.

:func:`staged` generalizes scratch-then-move: a command writes into a hidden sibling scratch
folder and the result is moved in only when every file was written, so a failure or an interrupt
leaves nothing half-written (and the scratch folder is removed). :func:`prepare` is for steps that
write in place for a long time (``helu flow``, ``helu sim``'s build cache): it checks the folder,
creates it and marks it.

:func:`sha256_file` is the one place where files are hashed to tie a result to its inputs.
"""

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

__all__ = [
    "MARKER",
    "KINDS",
    "claim",
    "mark",
    "kind_of",
    "prepare",
    "staged",
    "sha256_file",
    "sha256_files",
]

MARKER = ".helu-output.json"
# The kinds of folder the commands write, and the files that make an unmarked folder look like
# one of that kind (what --force may replace).
KINDS = {
    "train": ("metrics.json", "checkpoints"),
    "golden": ("manifest.json",),
    "golden-net": ("manifest.json",),
    "verilog": (),
    "sim": ("summary.json",),
    "synth": ("results.json",),
    "prove": ("results.json",),
    "onchip": ("onchip.json",),
    "flow": ("report.md", "summary.json", "skipped.json"),
    "collapse": ("collapse.json", "cells"),
}


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


def _refuse(folder, why: str, way_out: str = "choose a new or empty folder"):
    raise ValueError(f"--out {folder}: {why}; {way_out}")


def _looks_like(folder: Path, kind: str) -> bool:
    names = {p.name for p in folder.iterdir()}
    if kind == "verilog":
        return bool(names) and all(Path(n).suffix in (".v", ".json") for n in names)
    return any(n in names for n in KINDS[kind])


def claim(out, kind: str, *, force: bool = False, inputs=()) -> Path:
    """Check that a ``kind`` command may write folder ``out``; returns it (nothing is created).

    ``inputs`` are the files or folders the command reads: ``out`` may be none of them and hold
    none of them. Raises ``ValueError`` with a one-line message naming the folder and what to do.
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
            f"choose a new folder, or pass --force to replace this {kind} folder",
        )
    _refuse(out, "holds files that helu did not write (they would be lost)")
    return out


def mark(folder, kind: str) -> None:
    """Mark ``folder`` as written by a ``kind`` command (see :func:`claim`)."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    (Path(folder) / MARKER).write_text(json.dumps({"kind": kind}) + "\n")


def _writable(out: Path, exc: OSError):
    return OSError(
        f"--out {out}: cannot write there ({exc.strerror or exc}); choose a writable folder"
    )


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
                    raise ValueError(
                        f"--out {out}: {target} is {what}, in the way of a file of this run; "
                        "move it away or choose another folder"
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
