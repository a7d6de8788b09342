"""An output folder the bag tools may write (and, with ``--overwrite``, empty).

Data-safety rules, checked before anything is touched:

- ``--out`` may not be, contain or lie inside an input (a bag, or the folder of bags):
  ``--overwrite`` deletes ``--out``, and an evaluation must never delete a recording.
- A summary file is replaced atomically (``write_json``): a reader sees the old or the new
  one, never a partial one, also when the disk fills up while it is written.
- One run at a time per output folder: a lock (``fcntl.flock`` on ``.<name>.lock`` beside the
  folder, holding the owner's pid) is taken before the folder is emptied or written; a second
  run is refused naming the first one's pid. The OS drops the lock when its process ends.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from pathlib import Path


class BagOutputError(OSError):
    """The output cannot be (or could not be) written; the message names the path."""


def write_failure(error: BaseException, out_dir: Path, what: str) -> str:
    """One line: which file could not be written, why, and that ``what`` in ``out_dir`` is
    incomplete (a full disk says only "[Errno 28] No space left on device" otherwise)."""
    path = getattr(error, "filename", None) or out_dir
    reason = getattr(error, "strerror", None) or " ".join(str(error).split())
    return f"writing {path} failed ({reason}); the {what} in {out_dir} is incomplete"


def check_outside_inputs(out_dir: Path, inputs: list[Path]) -> None:
    """Refuse an ``out_dir`` that is, contains or lies inside one of ``inputs``."""
    out = out_dir.resolve()
    for given in inputs:
        source = given.resolve()
        if out == source:
            relation = "is"
        elif source.is_relative_to(out):
            relation = "contains"
        elif out.is_relative_to(source):
            relation = "lies inside"
        else:
            continue
        raise BagOutputError(
            f"--out {out_dir} {relation} the input {given}; choose an output folder outside the inputs "
            "(nothing was written or deleted)"
        )


class OutputLock:
    """Exclusive use of one output folder by this process (see the module doc)."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.path = out_dir.parent / f".{out_dir.name}.lock"
        self._fd: int | None = None

    def acquire(self) -> OutputLock:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return self._lock()
        except BagOutputError:  # another run holds it
            raise
        except OSError as error:
            raise BagOutputError(f"cannot create output directory {self.out_dir}: {error.strerror or error}") from error

    def _lock(self) -> OutputLock:
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
                os.close(fd)
                raise BagOutputError(
                    f"output folder {self.out_dir} is being written by another run "
                    f"(pid {owner}, lock {self.path}); wait for it or choose another --out"
                ) from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:  # the previous owner removed it between our open and lock
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            self.path.unlink(missing_ok=True)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> OutputLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def claim_output_dir(out_dir: Path, overwrite: bool, inputs: list[Path]) -> OutputLock:
    """Check ``out_dir`` against the inputs, lock it, then empty it (``overwrite``) or require
    it to be new or empty, and create it. Use the result as a context manager."""
    check_outside_inputs(out_dir, inputs)
    lock = OutputLock(out_dir).acquire()
    try:
        if out_dir.exists() and any(out_dir.iterdir()):
            if not overwrite:
                raise BagOutputError(
                    f"output directory {out_dir} exists and is not empty; pass --overwrite to replace it"
                )
            shutil.rmtree(out_dir)
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise BagOutputError(f"cannot create output directory {out_dir}: {error.strerror or error}") from error
    except BaseException:
        lock.release()
        raise
    return lock


def write_json(path: Path, data: dict) -> None:
    """Write ``path`` whole or not at all (temporary file, then rename); a failed write leaves
    the previous file and no temporary one, and raises OSError naming ``path``."""
    temporary = path.with_name(f".{path.name}.partial")
    try:
        temporary.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise OSError(error.errno, error.strerror or str(error), str(path)) from error
    except BaseException:  # interrupted (Ctrl-C, SIGTERM) while writing: no partial file stays
        temporary.unlink(missing_ok=True)
        raise
