"""Atomic writes: a reader, or a run resumed after ``kill -9``, sees the old content or the new, never half of either.

Every write goes to a temp file (or directory) beside its target, on the same filesystem, and is renamed over it
with ``os.replace`` (atomic on POSIX). Temp names are ``.<name>.tmp-XXXXXXXX<suffix>``; a directory being replaced
is first moved aside to ``.<name>.old``. ``recover(parent)`` undoes what a killed write left behind::

    atomic_write_text(run_dir / "summary.md", text)
    with atomic_path(out / "model.safetensors") as tmp:      # for writers that need a file name
        save_file(state, str(tmp))
    with atomic_dir(root / "step_000010") as tmp:            # a whole checkpoint directory
        (tmp / "state.json").write_text(...)
"""

from __future__ import annotations

import os
import secrets
import shutil
import stat
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

TMP = ".tmp-"  # in the name of every temp file or directory: .<name>.tmp-XXXXXXXX
OLD = ".old"  # suffix of a directory moved aside while its replacement is renamed in: .<name>.old


def _temp_beside(path: Path, directory: bool) -> Path:
    """Create ``.<name>.tmp-XXXXXXXX<suffix>`` beside ``path`` with the permissions a plain ``open`` / ``mkdir``
    gives (umask applied; ``tempfile.mkstemp`` would make it owner-only)."""
    for _ in range(100):
        tmp = path.with_name(f".{path.name}{TMP}{secrets.token_hex(4)}{'' if directory else path.suffix}")
        try:
            if directory:
                tmp.mkdir(mode=0o777)
            else:
                os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temp name beside {path}")


def _fsync(path: Path) -> None:
    """Flush a written file to disk before it is renamed in (a power cut then keeps the old or the new bytes)."""
    with open(path, "rb") as f:
        os.fsync(f.fileno())


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path beside ``path`` (same suffix, so writers that pick a format by extension still do); when
    the block ends without an error it replaces ``path``, otherwise it is removed and ``path`` is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_beside(path, directory=False)
    mode = stat.S_IMODE(tmp.stat().st_mode)  # what a plain open gives under this umask
    try:
        yield tmp
        os.chmod(tmp, mode)  # writers that replace the file (safetensors' save_file) leave it owner-only
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically; returns ``path``."""
    return atomic_write_bytes(path, text.encode("utf-8"))


@contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield an empty temp directory beside ``path``; when the block ends without an error it becomes ``path``
    (see `swap_dir`), otherwise it is removed and ``path`` is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_beside(path, directory=True)
    try:
        yield tmp
        _normalise_modes(tmp, stat.S_IMODE(tmp.stat().st_mode))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    swap_dir(tmp, path)


def _normalise_modes(root: Path, dir_mode: int) -> None:
    """Give every file under ``root`` the read/write bits a plain ``open`` gives under this umask (``dir_mode`` is
    the umask-applied 0o777): safetensors' ``save_file`` writes owner-only files, which another user serving the
    checkpoint could not read. Execute bits are kept as the writer set them."""
    for f in root.rglob("*"):
        if f.is_file() and not f.is_symlink():
            os.chmod(f, (stat.S_IMODE(f.stat().st_mode) & 0o111 & dir_mode) | (dir_mode & 0o666))


def swap_dir(tmp: Path, path: Path) -> None:
    """Rename the directory ``tmp`` to ``path``. An existing ``path`` is moved aside to ``.<name>.old`` first and
    deleted after, so at every instant one whole copy is on disk (`recover` finds it after a kill)."""
    old = path.with_name(f".{path.name}{OLD}")
    if path.exists():
        shutil.rmtree(old, ignore_errors=True)  # a stale copy from an earlier crash; `path` is whole
        os.replace(path, old)
    os.replace(tmp, path)
    shutil.rmtree(old, ignore_errors=True)


def recover(parent: str | Path) -> None:
    """Undo what killed atomic writes left in ``parent``: temp files and directories go; a directory moved aside
    comes back when its replacement never arrived, and is deleted when it did."""
    parent = Path(parent)
    if not parent.is_dir():
        return
    for p in parent.iterdir():
        if not p.name.startswith("."):
            continue
        if TMP in p.name and p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        elif TMP in p.name:
            p.unlink(missing_ok=True)
        elif p.name.endswith(OLD) and p.is_dir():
            final = parent / p.name[1:-len(OLD)]
            if final.exists():
                shutil.rmtree(p, ignore_errors=True)
            else:
                os.replace(p, final)  # killed between moving the old copy aside and renaming the new one in
