"""IDX and .amat readers on tiny hand-made files, the loaders, and the real MNIST mirror."""

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from elbolab.data import load_binarized_mnist, load_mnist, read_amat, read_idx
from elbolab.errors import ConfigError, DataError


def idx_bytes(arr, code=0x08):
    arr = np.asarray(arr)
    head = struct.pack(">I", (code << 8) | arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    dtype = {0x08: ">u1", 0x0C: ">i4", 0x0D: ">f4"}[code]
    return head + arr.astype(dtype).tobytes()


def put(path, data, compress=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    compress = path.name.endswith(".gz") if compress is None else compress
    path.write_bytes(gzip.compress(data, mtime=0) if compress else data)
    return path


def amat_text(x):
    return "".join(" ".join(map(str, row)) + "\n" for row in x)


# -------------------------------------------------------------------------------- IDX


@pytest.mark.parametrize("name", ["imgs.gz", "imgs.idx"])
def test_read_idx_images_and_labels(tmp_path, name):
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    got = read_idx(put(tmp_path / name, idx_bytes(imgs)), magic=0x00000803)
    assert got.dtype == np.uint8 and got.shape == (5, 28, 28)
    np.testing.assert_array_equal(got, imgs)
    got[0, 0, 0] = 1  # writable
    labels = read_idx(put(tmp_path / "l.gz", idx_bytes(np.arange(7) % 10)), magic=0x00000801)
    np.testing.assert_array_equal(labels, np.arange(7) % 10)


def test_read_idx_multibyte_types_native_order(tmp_path):
    a = np.array([[1, -2, 70000], [3, 4, -5]])
    got = read_idx(put(tmp_path / "i32.gz", idx_bytes(a, 0x0C)))
    assert got.dtype == np.int32 and got.dtype.isnative
    np.testing.assert_array_equal(got, a)
    f = read_idx(put(tmp_path / "f32", idx_bytes(np.array([0.5, -1.25]), 0x0D)))
    np.testing.assert_array_equal(f, [0.5, -1.25])


def test_read_idx_wrong_magic(tmp_path):
    path = put(tmp_path / "labels.gz", idx_bytes(np.arange(3)))
    with pytest.raises(DataError, match=r"bad magic 0x00000801, expected 0x00000803") as err:
        read_idx(path, magic=0x00000803)
    assert "labels.gz" in str(err.value)
    junk = put(tmp_path / "junk.gz", b"\x12\x34\x08\x01" + b"\0" * 8)
    with pytest.raises(DataError, match="junk.gz: bad magic 0x12340801"):
        read_idx(junk)


@pytest.mark.parametrize(
    "cut, match", [(-10, "expected 2352 bytes .* found 2342"), (10, "found more than 2352")]
)
def test_read_idx_wrong_length(tmp_path, cut, match):
    data = idx_bytes(np.zeros((3, 28, 28)))
    data = data[:cut] if cut < 0 else data + b"\0" * cut
    with pytest.raises(DataError, match=match) as err:
        read_idx(put(tmp_path / "t.gz", data))
    assert "t.gz" in str(err.value)


def test_read_idx_short_header(tmp_path):
    with pytest.raises(DataError, match="too short for an IDX header"):
        read_idx(put(tmp_path / "e.gz", b""))
    with pytest.raises(DataError, match="header truncated"):
        read_idx(put(tmp_path / "h.gz", b"\0\0\x08\x03\0\0\0\x05"))


def test_read_idx_corrupt_gzip(tmp_path):
    good = gzip.compress(idx_bytes(np.zeros((20, 28, 28))), mtime=0)
    trunc = put(tmp_path / "trunc.gz", good[: len(good) // 2], compress=False)
    with pytest.raises(DataError, match="trunc.gz: corrupt or truncated gzip"):
        read_idx(trunc)
    bad = put(tmp_path / "bad.gz", b"\x1f\x8b" + b"garbage" * 10, compress=False)
    with pytest.raises(DataError, match="bad.gz: corrupt or truncated gzip"):
        read_idx(bad)


def test_read_idx_missing(tmp_path):
    with pytest.raises(DataError, match="none.gz: IDX file not found"):
        read_idx(tmp_path / "none.gz")


# ------------------------------------------------------------------------------- amat


def test_read_amat_fast_and_slow_paths_agree(tmp_path):
    x = (np.random.default_rng(1).random((6, 784)) < 0.3).astype(np.uint8)
    fast = read_amat(put(tmp_path / "a.amat.gz", amat_text(x).encode()))
    np.testing.assert_array_equal(fast, x)
    assert fast.dtype == np.uint8 and fast.flags.c_contiguous
    # CRLF, double spaces and no final newline force the line-by-line parser.
    odd = amat_text(x).replace("\n", "\r\n").replace(" ", "  ").rstrip()
    np.testing.assert_array_equal(read_amat(put(tmp_path / "b.amat", odd.encode())), x)


@pytest.mark.parametrize(
    "row, edit, match",
    [
        (2, lambda s: s[:10] + "2" + s[11:], "values must be 0 or 1, found '2'"),
        (3, lambda s: s[:-2] + "\n", "expected 784 values, found 783"),
        (1, lambda s: s[:-1] + " 1\n", "expected 784 values, found 785"),
        (2, lambda s: "\n", "expected 784 values, found 0"),
        (3, lambda s: s.replace("0 ", "01", 1), "expected 784 values, found 783"),
        (2, lambda s: s.replace("1", "x", 1) if "1" in s else "x" + s[1:], "found 'x'"),
    ],
)
def test_read_amat_reports_first_bad_line(tmp_path, row, edit, match):
    x = (np.random.default_rng(2).random((4, 784)) < 0.5).astype(np.uint8)
    lines = amat_text(x).splitlines(keepends=True)
    lines[row - 1] = edit(lines[row - 1])
    path = put(tmp_path / "bad.amat.gz", "".join(lines).encode())
    with pytest.raises(DataError, match=match) as err:
        read_amat(path)
    assert f"bad.amat.gz:{row}:" in str(err.value)


def test_read_amat_empty_and_corrupt(tmp_path):
    with pytest.raises(DataError, match="e.amat: no images"):
        read_amat(put(tmp_path / "e.amat", b""))
    good = gzip.compress(amat_text(np.zeros((50, 784), np.uint8)).encode(), mtime=0)
    trunc = put(tmp_path / "t.amat.gz", good[:-20], compress=False)
    with pytest.raises(DataError, match="t.amat.gz: corrupt or truncated gzip"):
        read_amat(trunc)
    with pytest.raises(DataError, match="not found"):
        read_amat(tmp_path / "missing.amat.gz")


# ---------------------------------------------------------------------------- loaders


def fake_mnist_root(tmp_path, n_train=4, n_train_labels=4):
    rng = np.random.default_rng(3)
    for prefix, n, n_lab in (("train", n_train, n_train_labels), ("t10k", 2, 2)):
        imgs = rng.integers(0, 256, size=(n, 28, 28))
        put(tmp_path / f"mnist/{prefix}-images-idx3-ubyte.gz", idx_bytes(imgs))
        put(tmp_path / f"mnist/{prefix}-labels-idx1-ubyte.gz", idx_bytes(np.arange(n_lab) % 10))
    return tmp_path


def test_load_mnist_tiny_root(tmp_path):
    root = fake_mnist_root(tmp_path)
    imgs, labels = load_mnist(root, "train")
    assert imgs.shape == (4, 28, 28) and labels.tolist() == [0, 1, 2, 3]
    imgs, labels = load_mnist(root, "test")
    assert imgs.shape == (2, 28, 28) and labels.shape == (2,)


def test_load_mnist_as_torch(tmp_path):
    torch = pytest.importorskip("torch")
    imgs, labels = load_mnist(fake_mnist_root(tmp_path), "train", as_torch=True)
    assert isinstance(imgs, torch.Tensor) and imgs.dtype == torch.uint8
    assert tuple(imgs.shape) == (4, 28, 28) and labels.tolist() == [0, 1, 2, 3]


def test_load_mnist_count_mismatch(tmp_path):
    root = fake_mnist_root(tmp_path, n_train=4, n_train_labels=3)
    with pytest.raises(DataError, match="4 images in train-images-idx3-ubyte.gz but 3 labels"):
        load_mnist(root, "train")


def test_load_mnist_bad_arguments(tmp_path):
    with pytest.raises(ConfigError, match="split"):
        load_mnist(fake_mnist_root(tmp_path), "valid")
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz"):
        load_mnist(tmp_path / "empty")
    with pytest.raises(ConfigError, match="split"):
        load_binarized_mnist(tmp_path, "dev")


def test_load_binarized_tiny_root(tmp_path):
    x = (np.random.default_rng(4).random((3, 784)) < 0.2).astype(np.uint8)
    for split in ("train", "valid", "test"):
        put(tmp_path / f"binarized_mnist/binarized_mnist_{split}.amat.gz", amat_text(x).encode())
    np.testing.assert_array_equal(load_binarized_mnist(tmp_path, "valid"), x)


# ------------------------------------------------------------------------------- real


def test_real_mnist(real_data):
    root = Path(real_data("mnist"))
    imgs, labels = load_mnist(root, "train")
    assert imgs.shape == (60000, 28, 28) and imgs.dtype == np.uint8
    assert np.bincount(labels).tolist() == [
        5923,
        6742,
        5958,
        6131,
        5842,
        5421,
        5918,
        6265,
        5851,
        5949,
    ]
    assert round(float(imgs.mean()), 3) == 33.318
    imgs, labels = load_mnist(root, "test")
    assert imgs.shape == (10000, 28, 28)
    assert np.bincount(labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert round(float(imgs.mean()), 3) == 33.791


@pytest.mark.parametrize(
    "split, n, mean",
    [("train", 50000, 0.13056), ("valid", 10000, 0.13113), ("test", 10000, 0.13251)],
)
def test_real_binarized_mnist(split, n, mean, real_data):
    x = load_binarized_mnist(real_data("binarized_mnist"), split)
    assert x.shape == (n, 784) and x.dtype == np.uint8 and x.max() == 1
    assert round(float(x.mean()), 5) == mean
