"""Dataset registry, data-root resolution, verified downloads and integrity checks.

Every dataset lives in a folder ``ROOT/<name>/`` under a data root. A root is found in
this order (see :func:`find_root`):

1. the ``root`` argument of a loader (strict: it must hold the dataset),
2. the environment variable ``ELBOLAB_DATA``,
3. the user cache :func:`default_cache` (``~/.cache/elbolab``, honouring
   ``XDG_CACHE_HOME``), where :func:`fetch` puts downloads.

Integrity is defined on *content*: each stored file has the sha256 of its bytes, after
gzip decompression for ``.gz`` files. Content hashes stay valid whichever gzip
implementation compressed the file (the shared mirror used ``gzip -9 -n``, :func:`fetch`
uses Python's zlib), so a mirror and a fresh download verify against the same values.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import posixpath
import shutil
import sys
import tarfile
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path

from elbolab.errors import ConfigError, DataError
from elbolab.files import atomic_path, scratch_file

__all__ = [
    "StoredFile",
    "Source",
    "DatasetSpec",
    "DATASETS",
    "default_cache",
    "find_root",
    "fetch",
    "check",
    "content_sha256",
]

_CHUNK = 1 << 20
_TIMEOUT_S = 60


@dataclass(frozen=True)
class StoredFile:
    """One file of a dataset as stored under the data root.

    Attributes
    ----------
    path : str
        Relative to the root, with forward slashes, e.g. ``"ap/ap.dat"``.
    sha256 : str
        Hex sha256 of the content: the decompressed bytes for ``.gz`` files, the raw
        bytes otherwise.
    """

    path: str
    sha256: str


@dataclass(frozen=True)
class Source:
    """One download and how it becomes stored files.

    Attributes
    ----------
    url : str
        Where to download from. With a ``base_url``, only its last path component (the
        file name) is kept and joined to the base.
    sha256 : str or None
        Hex sha256 of the downloaded bytes, checked before unpacking. None where no
        trusted value is known; the stored files' content hashes are checked anyway.
    files : tuple of (member, path)
        ``path`` is a :class:`StoredFile` path. ``member`` is the file's name inside the
        archive when ``archive`` is true, and ignored (conventionally ``""``) otherwise,
        in which case the whole download becomes ``path``. A ``path`` ending in ``.gz``
        is gzip-compressed on the way unless the member (or the download) is already a
        ``.gz`` file, which is stored as is.
    archive : bool
        The download is a tar archive (any compression ``tarfile`` reads).
    """

    url: str
    sha256: str | None
    files: tuple[tuple[str, str], ...]
    archive: bool = False

    @property
    def filename(self) -> str:
        """Last path component of the URL: the name joined to a ``base_url``."""
        return self.url.rstrip("/").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset: its stored files, the downloads that produce them, and provenance."""

    name: str
    files: tuple[StoredFile, ...]
    sources: tuple[Source, ...]
    description: str = ""

    def file(self, path: str) -> StoredFile:
        for f in self.files:
            if f.path == path:
                return f
        raise ConfigError(f"dataset {self.name!r} has no stored file {path!r}")


# The values below are those of shared/data/README.md (checked against the mirror by
# tests/data/test_fetch.py). MNIST's official gz files for train labels and both test files
# are byte-identical to the mirror's (same md5 as torchvision's), so their download hashes
# are known; the official train-images gz differs from the mirror's recompressed copy, so
# only its content hash is checked.
_AP_TGZ = (
    "https://raw.githubusercontent.com/blei-lab/lda-c/"
    "0c46575e89092683010db077f713f8aa3b3594a2/example/ap.tgz"
)
_MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
_BINARIZED_URL = "http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/"

DATASETS: dict[str, DatasetSpec] = {
    "ap": DatasetSpec(
        name="ap",
        description=(
            "Associated Press sample of lda-c (Blei, Ng & Jordan 2003): 2246 documents, "
            "10473 words. No license stated; research sample data."
        ),
        files=(
            StoredFile(
                "ap/ap.dat", "c9b946b6cdb2c6e876198ae227afb573df023db84fb53a9d2b31c0d59224fea1"
            ),
            StoredFile(
                "ap/vocab.txt", "fbf0d0f836cb2b0360bd3cae0f71c2f34b140b1dd8dd0d0bdb618a64704337f6"
            ),
            StoredFile(
                "ap/ap.txt.gz", "5a44ed0ae1ad3e56985122404afa9377a1bd83676c3bbe82dc3a40f7799a5f23"
            ),
        ),
        sources=(
            Source(
                url=_AP_TGZ,
                sha256="92cbe192631874708540db11969211363cf2f5c0a56b2897e0229925e5d4f2a3",
                files=(
                    ("ap/ap.dat", "ap/ap.dat"),
                    ("ap/vocab.txt", "ap/vocab.txt"),
                    ("ap/ap.txt", "ap/ap.txt.gz"),
                ),
                archive=True,
            ),
        ),
    ),
    "mnist": DatasetSpec(
        name="mnist",
        description="MNIST in IDX format (LeCun, Cortes & Burges), 60000 train / 10000 test.",
        files=(
            StoredFile(
                "mnist/train-images-idx3-ubyte.gz",
                "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            ),
            StoredFile(
                "mnist/train-labels-idx1-ubyte.gz",
                "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            ),
            StoredFile(
                "mnist/t10k-images-idx3-ubyte.gz",
                "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            ),
            StoredFile(
                "mnist/t10k-labels-idx1-ubyte.gz",
                "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
            ),
        ),
        sources=(
            Source(
                _MNIST_URL + "train-images-idx3-ubyte.gz",
                None,
                (("", "mnist/train-images-idx3-ubyte.gz"),),
            ),
            Source(
                _MNIST_URL + "train-labels-idx1-ubyte.gz",
                "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                (("", "mnist/train-labels-idx1-ubyte.gz"),),
            ),
            Source(
                _MNIST_URL + "t10k-images-idx3-ubyte.gz",
                "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                (("", "mnist/t10k-images-idx3-ubyte.gz"),),
            ),
            Source(
                _MNIST_URL + "t10k-labels-idx1-ubyte.gz",
                "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
                (("", "mnist/t10k-labels-idx1-ubyte.gz"),),
            ),
        ),
    ),
    "binarized_mnist": DatasetSpec(
        name="binarized_mnist",
        description=(
            "Fixed stochastic binarization of MNIST (Larochelle & Murray 2011), "
            "50000 train / 10000 valid / 10000 test, no labels."
        ),
        files=(
            StoredFile(
                "binarized_mnist/binarized_mnist_train.amat.gz",
                "ad693b29f94c14277b095f5238ddefbbdaaae0939789dd2f4f0205278cee3e4d",
            ),
            StoredFile(
                "binarized_mnist/binarized_mnist_valid.amat.gz",
                "1de3d397c40fe8eeb33dafd4099a1f665ec01e96d9be234aaeeac8a34930e2e2",
            ),
            StoredFile(
                "binarized_mnist/binarized_mnist_test.amat.gz",
                "e6687bfea3f820c174f33b7865140b2a2dd2930ef786f35d45795fc193b5ab2c",
            ),
        ),
        sources=tuple(
            Source(
                _BINARIZED_URL + f"binarized_mnist_{split}.amat",
                sha,  # the download is the uncompressed content itself
                (("", f"binarized_mnist/binarized_mnist_{split}.amat.gz"),),
            )
            for split, sha in (
                ("train", "ad693b29f94c14277b095f5238ddefbbdaaae0939789dd2f4f0205278cee3e4d"),
                ("valid", "1de3d397c40fe8eeb33dafd4099a1f665ec01e96d9be234aaeeac8a34930e2e2"),
                ("test", "e6687bfea3f820c174f33b7865140b2a2dd2930ef786f35d45795fc193b5ab2c"),
            )
        ),
    ),
}


# ------------------------------------------------------------------------------- roots


def default_cache() -> Path:
    """The user cache for downloads: ``$XDG_CACHE_HOME/elbolab`` or ``~/.cache/elbolab``."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "elbolab"


def _get_spec(name: str, spec: DatasetSpec | None) -> DatasetSpec:
    if spec is not None:
        return spec
    try:
        return DATASETS[name]
    except KeyError:
        raise ConfigError(
            f"unknown dataset {name!r}; known datasets: {', '.join(sorted(DATASETS))}"
        ) from None


def _missing(root: Path, spec: DatasetSpec) -> list[Path]:
    return [root / f.path for f in spec.files if not (root / f.path).is_file()]


def _fetch_hint(name: str) -> str:
    return (
        f"run `elbolab data fetch {name}` (needs internet) or set ELBOLAB_DATA to a folder "
        f"holding {name}/..."
    )


def find_root(
    name: str, root: str | os.PathLike | None = None, spec: DatasetSpec | None = None
) -> Path:
    """Return the data root that holds all files of dataset ``name``.

    Parameters
    ----------
    name : str
        A key of :data:`DATASETS`, e.g. ``"ap"``.
    root : str or Path, optional
        Explicit root. When given it is the only place looked at.
    spec : DatasetSpec, optional
        Overrides ``DATASETS[name]`` (for tests and custom datasets).

    Returns
    -------
    Path
        The root: the dataset's files are ``root / StoredFile.path``. Only presence is
        checked here (hashing on every load would be slow); use :func:`check` for that.

    Raises
    ------
    DataError
        The explicit root lacks a file (named), or neither ``$ELBOLAB_DATA`` nor the cache
        holds the dataset (the searched paths are listed).
    """
    spec = _get_spec(name, spec)
    if root is not None:
        root = Path(root).expanduser()
        missing = _missing(root, spec)
        if missing:
            raise DataError(
                f"dataset {name!r} not found under the given root {root} ({len(missing)} of "
                f"{len(spec.files)} files missing); {_fetch_hint(name)}, or pass a root "
                f"holding {name}/...",
                missing[0],
            )
        return root
    candidates = []
    env = os.environ.get("ELBOLAB_DATA")
    if env:
        candidates.append(("$ELBOLAB_DATA", Path(env).expanduser()))
    candidates.append(("cache", default_cache()))
    for _, cand in candidates:
        if not _missing(cand, spec):
            return cand
    searched = "; ".join(f"{label} {cand / spec.files[0].path}" for label, cand in candidates)
    if not env:
        searched += " ($ELBOLAB_DATA is not set)"
    raise DataError(f"dataset {name!r} not found (searched {searched}); {_fetch_hint(name)}")


# ----------------------------------------------------------------------------- hashing


def content_sha256(path) -> str:
    """Hex sha256 of a file's content, decompressing ``.gz`` files on the fly.

    Raises
    ------
    DataError
        Missing, unreadable or corrupt (truncated gzip) file.
    """
    path = Path(path)
    try:
        return _hash_content(path, gz=path.name.endswith(".gz"))
    except FileNotFoundError:
        raise DataError("not found", path) from None
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise DataError(f"corrupt or truncated gzip data ({exc})", path) from None
    except OSError as exc:
        raise DataError(f"cannot read: {exc.strerror or exc}", path) from None


def _hash_content(path: Path, gz: bool) -> str:
    """Hex sha256 of the bytes of ``path``, gzip-decompressed first when ``gz``."""
    h = hashlib.sha256()
    with (gzip.open if gz else open)(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def check(
    name: str, root: str | os.PathLike | None = None, spec: DatasetSpec | None = None
) -> list[tuple[Path, bool, str]]:
    """Verify presence and content sha256 of every file of a dataset.

    Parameters
    ----------
    name : str
    root : str or Path, optional
        Where to look. By default the root :func:`find_root` would use, or, when no root
        holds the whole dataset, ``$ELBOLAB_DATA`` if set and else the cache.
    spec : DatasetSpec, optional
        Overrides ``DATASETS[name]``.

    Returns
    -------
    list of (path, ok, detail)
        One entry per stored file: its absolute path, whether it is present with the
        right content, and ``"ok"``, ``"missing"`` or what is wrong.
    """
    spec = _get_spec(name, spec)
    if root is None:
        try:
            root = find_root(name, spec=spec)
        except DataError:
            env = os.environ.get("ELBOLAB_DATA")
            root = Path(env).expanduser() if env else default_cache()
    root = Path(root).expanduser()
    results = []
    for f in spec.files:
        path = root / f.path
        if not path.is_file():
            results.append((path, False, "missing"))
            continue
        try:
            actual = content_sha256(path)
        except DataError as exc:
            results.append((path, False, str(exc)))
            continue
        if actual == f.sha256:
            results.append((path, True, "ok"))
        else:
            results.append((path, False, f"sha256 mismatch: expected {f.sha256}, got {actual}"))
    return results


# ---------------------------------------------------------------------------- download


def _resolve_url(source: Source, base_url: str | None) -> str:
    if not base_url:
        return source.url
    return base_url.rstrip("/") + "/" + source.filename


def _download(url: str, dest: Path, progress: bool, name: str) -> str:
    """Stream ``url`` into ``dest``; return the sha256 of the bytes received."""
    hint = (
        f"check the connection, or download the files elsewhere and set ELBOLAB_DATA to a "
        f"folder holding {name}/..."
    )
    h = hashlib.sha256()
    req = urllib.request.Request(url, headers={"User-Agent": "elbolab"})
    try:
        with urllib.request.urlopen(req, timeout=_TIMEOUT_S) as resp, open(dest, "wb") as out:
            size = resp.headers.get("Content-Length")
            size = int(size) if size and size.isdigit() else None
            bar = None
            if progress and size:
                from tqdm.auto import tqdm

                bar = tqdm(
                    total=size,
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1024,
                    desc=url.rsplit("/", 1)[-1],
                    file=sys.stderr,
                    leave=False,
                )
            got = 0
            try:
                while chunk := resp.read(_CHUNK):
                    out.write(chunk)
                    h.update(chunk)
                    got += len(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
            finally:
                if bar is not None:
                    bar.close()
            if size is not None and got != size:
                raise DataError(f"download of {url} incomplete: {got} of {size} bytes; {hint}")
    except DataError:
        raise
    except urllib.error.HTTPError as exc:
        raise DataError(f"download of {url} failed: HTTP {exc.code} {exc.reason}; {hint}") from None
    except urllib.error.URLError as exc:
        raise DataError(f"download of {url} failed: {exc.reason}; {hint}") from None
    except (HTTPException, OSError, ValueError) as exc:
        # ValueError: malformed URL; OSError covers timeouts and resets mid-stream.
        raise DataError(f"download of {url} failed: {exc!r}; {hint}") from None
    return h.hexdigest()


def _write_member(stream, dest: Path, compress: bool) -> None:
    """Copy ``stream`` to ``dest``, gzip-compressing it when asked.

    Compression uses mtime 0 and no file name (like ``gzip -n``) so that the bytes do not
    depend on when they were fetched.
    """
    with open(dest, "wb") as raw:
        if compress:
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as gz:
                shutil.copyfileobj(stream, gz, _CHUNK)
        else:
            shutil.copyfileobj(stream, raw, _CHUNK)


def _unpack(
    source: Source, download: Path, root: Path, url: str, stored: contextlib.ExitStack
) -> list:
    """Write each stored file of ``source`` to a temporary file next to its final place.

    Returns (temporary, final, stored path) triples. Each temporary file comes from
    :func:`~elbolab.files.atomic_path` entered on ``stored``: all of them move into
    place when ``stored`` closes without an error, and none otherwise.
    """
    pairs = []
    tar = None
    try:
        if source.archive:
            try:
                tar = tarfile.open(download, "r:*")
                members = {posixpath.normpath(m.name): m for m in tar.getmembers() if m.isfile()}
            except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
                raise DataError(f"{url}: not a readable tar archive ({exc})") from None
        for member, rel in source.files:
            final = root / rel
            final.parent.mkdir(parents=True, exist_ok=True)
            tmp = stored.enter_context(atomic_path(final))
            if source.archive:
                m = members.get(posixpath.normpath(member))
                if m is None:
                    raise DataError(f"{url}: archive has no file {member!r}")
                compress = rel.endswith(".gz") and not member.endswith(".gz")
                try:
                    with tar.extractfile(m) as stream:
                        _write_member(stream, tmp, compress)
                except (tarfile.TarError, EOFError, zlib.error) as exc:
                    raise DataError(f"{url}: corrupt archive member {member!r} ({exc})") from None
            else:
                compress = rel.endswith(".gz") and not source.filename.endswith(".gz")
                with open(download, "rb") as stream:
                    _write_member(stream, tmp, compress)
            pairs.append((tmp, final, rel))
    finally:
        if tar is not None:
            tar.close()
    return pairs


def _verify_content(tmp: Path, final: Path, stored: StoredFile, url: str) -> None:
    try:
        # The temporary file's name lacks ".gz": the final name says how to read it.
        actual = _hash_content(tmp, gz=final.name.endswith(".gz"))
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise DataError(f"{url}: {stored.path} is not valid gzip data ({exc})") from None
    if actual != stored.sha256:
        raise DataError(
            f"content sha256 mismatch for {stored.path} from {url}: expected {stored.sha256}, "
            f"got {actual}"
        )


def _is_present(root: Path, spec: DatasetSpec, source: Source) -> bool:
    for _, rel in source.files:
        path = root / rel
        if not path.is_file():
            return False
        try:
            if content_sha256(path) != spec.file(rel).sha256:
                return False
        except DataError:
            return False
    return True


def fetch(
    name: str,
    root: str | os.PathLike | None = None,
    base_url: str | None = None,
    progress: bool = True,
    spec: DatasetSpec | None = None,
) -> Path:
    """Download a dataset, verify it and store it under ``root``.

    Each download streams into a hidden scratch file in the destination folder; its
    sha256 is checked (where known), it is unpacked into temporary files whose content
    sha256 is checked, and only then are they all moved into place
    (:func:`elbolab.files.atomic_path`). A failure therefore leaves no file that looks
    complete, and its temporary files are removed. Files
    already present with the right content are not downloaded again.

    Parameters
    ----------
    name : str
        A key of :data:`DATASETS`.
    root : str or Path, optional
        Destination root; defaults to :func:`default_cache`.
    base_url : str, optional
        Replaces everything up to each source's file name (e.g. a local mirror or test
        server); defaults to ``$ELBOLAB_DATA_URL`` when set.
    progress : bool
        Show a tqdm bar on stderr for downloads of known size.
    spec : DatasetSpec, optional
        Overrides ``DATASETS[name]``.

    Returns
    -------
    Path
        The root, ready for ``find_root(name, root)`` and the loaders.

    Raises
    ------
    DataError
        Network failure or HTTP error (with the URL and reason), sha256 mismatch (with the
        URL, expected and actual value), or an unreadable archive.
    """
    spec = _get_spec(name, spec)
    root = Path(root).expanduser() if root is not None else default_cache()
    if base_url is None:
        base_url = os.environ.get("ELBOLAB_DATA_URL") or None
    for source in spec.sources:
        if _is_present(root, spec, source):
            continue
        url = _resolve_url(source, base_url)
        folder = root / posixpath.dirname(source.files[0][1])
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with (
                scratch_file(folder, "elbolab-download") as download,
                contextlib.ExitStack() as stored,
            ):
                actual = _download(url, download, progress, name)
                if source.sha256 is not None and actual != source.sha256:
                    raise DataError(
                        f"sha256 mismatch for {url}: expected {source.sha256}, got {actual}"
                    )
                for tmp, final, rel in _unpack(source, download, root, url, stored):
                    _verify_content(tmp, final, spec.file(rel), url)
        except OSError as exc:
            raise DataError(
                f"cannot store {name}: {exc.strerror or exc}", exc.filename or root
            ) from None
    return root
