"""Files hyperhive writes under its state dir: whole or not at all."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write `path` with `mode` via a fresh temp file and a rename: never a partial file.

    The temp file is created private (mkstemp) and only then given `mode`, so a
    secret is never readable by others, not even for a moment; parents are made
    0700.
    """
    tmp = _written_temp(path, data, mode)
    try:
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def create_once(path: Path, data: bytes, mode: int = 0o644) -> bool:
    """Create `path` whole unless it exists; False if another writer's file is there.

    For what is generated once and shared (a password): two processes that
    generate at the same moment must not each go on with their own. The data is
    written to a temp file and hard-linked into place, which fails if the name
    exists, so the winner's file is complete when anyone can see it; the loser
    reads it.
    """
    tmp = _written_temp(path, data, mode)
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    except OSError:  # a filesystem without hard links: whole, but last writer wins
        if path.exists():
            return False
        os.replace(tmp, path)
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _written_temp(path: Path, data: bytes, mode: int) -> str:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.filename is None:  # a full disk names no file
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise
    return tmp
