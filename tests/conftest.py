"""Fixtures shared by the whole test suite."""

from __future__ import annotations

import contextlib
import gzip
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from elbolab.data import Corpus, write_ldac
from elbolab.data.fetch import DATASETS
from elbolab.data.synthetic import lda_corpus


def real_data_root(*names: str) -> str:
    """The dataset mirror for tests on real data.

    Unset ``ELBOLAB_DATA``: the test skips (a clone without the mirror still runs every
    test on synthetic data). Set ``ELBOLAB_DATA`` (as the README's test command does):
    the data must be there, and a missing dataset fails the test instead of skipping it.
    """
    root = os.environ.get("ELBOLAB_DATA")
    if not root:
        pytest.skip("ELBOLAB_DATA is not set; real-data tests need the dataset mirror")
    for name in names or ("ap",):
        for file in DATASETS[name].files:
            if not (Path(root) / file.path).is_file():
                pytest.fail(f"ELBOLAB_DATA={root} is set but {file.path} is not under it")
    return root


@pytest.fixture(scope="session")
def real_data():
    """:func:`real_data_root` as a fixture: ``root = real_data("mnist")``."""
    return real_data_root


@pytest.fixture(scope="module")
def one_torch_thread():
    """Run a module's tiny tensor ops on one thread: faster, and leaves the other core free."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# ------------------------------------------------------------------ tiny data root
# A tiny data root in the real file formats, so that every study runs end to end.
#
# ``tiny_data`` writes, once per session, a folder laid out like the dataset mirror::
#
#     ap/ap.dat, ap/vocab.txt, ap/ap.txt.gz          an lda-c corpus drawn from known topics
#     mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz   IDX, gzip: a fake MNIST
#     binarized_mnist/binarized_mnist_{train,valid,test}.amat.gz   0/1 text, gzip
#
# The loaders (:func:`elbolab.data.load_ap`, :func:`~elbolab.data.load_mnist`,
# :func:`~elbolab.data.load_binarized_mnist`) find a dataset under an explicit root by the
# presence of its files only (no sha256 check on load), so the studies read these files
# through exactly the code that reads the mirror. ``elbolab data check`` would reject
# them (their content hashes are not the mirror's), which is as it should be.
#
# The images are drawn from ten smooth random "digit" templates, so that there is
# structure for a VAE or pPCA to find; the corpus comes from
# :func:`elbolab.data.synthetic.lda_corpus`, and its true topics travel with the root.

# Sizes: enough for every smoke preset (surgery/zoo keep n_train=500 training images;
# linear uses 100 + 200 + 100 training images; fkl 3 test images; lda 200 documents,
# landscape 120), small enough to write in well under a second.
AP_DOCS, AP_WORDS, AP_TOPICS = 240, 60, 3
MNIST_TRAIN, MNIST_TEST = 400, 60
BIN_TRAIN, BIN_VALID, BIN_TEST = 600, 100, 100
N_CLASSES = 10


@dataclass(frozen=True)
class TinyData:
    """The tiny data root and the truth it was drawn from."""

    root: Path
    topics: np.ndarray  # (AP_TOPICS, AP_WORDS): the true topics of ap/ap.dat, rows sum to 1


def _templates(rng: np.random.Generator, n: int) -> np.ndarray:
    """n smooth blob images in [0, 1], (n, 28, 28): a few Gaussian strokes each."""
    yy, xx = np.mgrid[0:28, 0:28]
    out = np.zeros((n, 28, 28))
    for i in range(n):
        for _ in range(4):
            cy, cx = rng.uniform(7, 21, size=2)
            sy, sx = rng.uniform(1.5, 4.0, size=2)
            out[i] += np.exp(-0.5 * (((yy - cy) / sy) ** 2 + ((xx - cx) / sx) ** 2))
        out[i] /= out[i].max()
    return out


def _grey_images(rng, templates, n):
    labels = rng.integers(0, len(templates), size=n)
    x = templates[labels] + 0.1 * rng.standard_normal((n, 28, 28))
    return np.clip(np.round(255 * x), 0, 255).astype(np.uint8), labels.astype(np.uint8)


def _write_idx(path: Path, array: np.ndarray) -> None:
    magic = 0x00000800 | array.ndim  # uint8
    header = struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def _write_amat(path: Path, x: np.ndarray) -> None:
    # Canonical layout of the real files: "0 1 ... 1\n", one image per line.
    digits = (x.astype(np.uint8) + ord("0")).reshape(len(x), -1)
    grid = np.full((len(x), 2 * digits.shape[1]), ord(" "), dtype=np.uint8)
    grid[:, 0::2] = digits
    grid[:, -1] = ord("\n")
    with gzip.open(path, "wb") as f:
        f.write(grid.tobytes())


def write_tiny_root(root: Path, seed: int = 0) -> TinyData:
    """Write the tiny data root under ``root``; return it with the true topics."""
    rng = np.random.default_rng(seed)

    ap = root / "ap"
    ap.mkdir(parents=True)
    corpus, topics, _ = lda_corpus(
        AP_DOCS, AP_WORDS, AP_TOPICS, doc_length=80.0, alpha=0.2, eta=0.05, seed=seed
    )
    corpus = Corpus(corpus.counts, [f"word{i:03d}" for i in range(AP_WORDS)])
    write_ldac(corpus, ap / "ap.dat", ap / "vocab.txt")
    with gzip.open(ap / "ap.txt.gz", "wt", encoding="utf-8") as f:
        for d in range(AP_DOCS):
            f.write(f"<DOC>\n<DOCNO> TINY-{d:04d} </DOCNO>\n<TEXT>\n synthetic\n </TEXT>\n</DOC>\n")

    templates = _templates(rng, N_CLASSES)
    mnist = root / "mnist"
    mnist.mkdir()
    for prefix, n in (("train", MNIST_TRAIN), ("t10k", MNIST_TEST)):
        images, labels = _grey_images(rng, templates, n)
        _write_idx(mnist / f"{prefix}-images-idx3-ubyte.gz", images)
        _write_idx(mnist / f"{prefix}-labels-idx1-ubyte.gz", labels)

    binarized = root / "binarized_mnist"
    binarized.mkdir()
    probs = np.clip(templates.reshape(N_CLASSES, -1), 0.02, 0.98)
    for split, n in (("train", BIN_TRAIN), ("valid", BIN_VALID), ("test", BIN_TEST)):
        # Sorted by class, as the real files are.
        labels = np.sort(rng.integers(0, N_CLASSES, size=n))
        x = rng.random((n, 784)) < probs[labels]
        _write_amat(binarized / f"binarized_mnist_{split}.amat.gz", x)
    return TinyData(root, topics)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> TinyData:
    """The tiny data root (see the module docstring), written once per session."""
    return write_tiny_root(tmp_path_factory.mktemp("tiny_data") / "data")


@pytest.fixture
def interrupt_at_checkpoint():
    """``with interrupt_at_checkpoint(n):`` the n-th checkpoint that a RunDir saves in the
    block is written, and then KeyboardInterrupt is raised, as ^C would be there."""
    from elbolab.report import RunDir

    original = RunDir.save_checkpoint

    @contextlib.contextmanager
    def interrupting(n: int):
        saves = 0

        def save_then_die(self, key, obj):
            nonlocal saves
            original(self, key, obj)
            saves += 1
            if saves == n:
                raise KeyboardInterrupt

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(RunDir, "save_checkpoint", save_then_die)
            yield

    return interrupting
