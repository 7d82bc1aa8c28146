"""The ground floor's file helpers: atomic writes and scratch files leave no partial file; read
errors are one DataError."""

import pytest

from elbolab.errors import DataError
from elbolab.files import atomic_path, atomic_write, reading, scratch_file


def test_atomic_path_moves_the_file_into_place_after_the_block(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".a.txt.")
        tmp.write_text("new")
        assert target.read_text() == "old"  # not yet: only when the block ends
    assert target.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_atomic_path_keeps_the_old_file_when_the_block_fails(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    with pytest.raises(KeyboardInterrupt), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise KeyboardInterrupt
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_atomic_write_text_mode_writes_unix_newlines(tmp_path):
    target = atomic_write(tmp_path / "t.txt", lambda fh: fh.write("a\nb\n"), text=True)
    assert target.read_bytes() == b"a\nb\n"


def test_scratch_file_is_removed_after_the_block_whatever_happens(tmp_path):
    with scratch_file(tmp_path, "download") as tmp:
        tmp.write_bytes(b"partial")
        assert tmp.name.startswith(".download.")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError), scratch_file(tmp_path) as tmp:
        raise ValueError
    assert list(tmp_path.iterdir()) == []


def test_reading_turns_os_errors_into_one_data_error_naming_the_file(tmp_path):
    with pytest.raises(DataError, match="vocabulary file not found") as err:
        with reading(tmp_path / "v.txt", "vocabulary file"):
            (tmp_path / "v.txt").read_bytes()
    assert str(tmp_path / "v.txt") in str(err.value)
    with pytest.raises(DataError, match="is a directory, expected a file"):
        with reading(tmp_path, "corpus"):
            tmp_path.read_bytes()
