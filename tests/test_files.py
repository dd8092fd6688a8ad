"""Files under the state dir: written whole, and what is generated once, created once."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from hyperhive.files import create_once, write_atomic


def test_write_atomic_replaces_the_file_with_the_mode_asked_and_leaves_no_temp(
    tmp_path: Path,
) -> None:
    path = tmp_path / "d" / "secret.json"
    write_atomic(path, b"one", 0o600)
    write_atomic(path, b"two", 0o600)
    assert path.read_bytes() == b"two"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert os.listdir(path.parent) == ["secret.json"]


def test_create_once_keeps_the_first_writers_file(tmp_path: Path) -> None:
    path = tmp_path / "route.json"
    assert create_once(path, b"first", 0o600)
    assert not create_once(path, b"second", 0o600)
    assert path.read_bytes() == b"first"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert os.listdir(tmp_path) == ["route.json"]


def test_create_once_without_hard_links_still_creates_whole_and_keeps_an_existing_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(src: str, dst: str) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    path = tmp_path / "key"
    assert create_once(path, b"first", 0o600)
    assert not create_once(path, b"second", 0o600)
    assert path.read_bytes() == b"first"
    assert os.listdir(tmp_path) == ["key"]


def test_a_full_disk_names_the_file_and_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")  # as the kernel says it

    monkeypatch.setattr(os, "fsync", full)
    path = tmp_path / "admin.json"
    for write in (write_atomic, create_once):
        with pytest.raises(OSError, match="No space left") as caught:
            write(path, b"secret", 0o600)
        assert caught.value.errno == errno.ENOSPC
        assert caught.value.filename == str(path)
        assert os.listdir(tmp_path) == []
