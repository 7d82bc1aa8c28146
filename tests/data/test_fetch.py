"""Registry, root resolution, check() and downloads from a local HTTP server on 127.0.0.1."""

import functools
import gzip
import hashlib
import io
import re
import socket
import tarfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from elbolab.data import (
    DATASETS,
    DatasetSpec,
    Source,
    StoredFile,
    check,
    default_cache,
    fetch,
    find_root,
)
from elbolab.errors import ConfigError, DataError


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def listing(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


# ------------------------------------------------------------------------------ registry


def test_registry_is_consistent():
    for name, spec in DATASETS.items():
        assert spec.name == name
        paths = [f.path for f in spec.files]
        produced = [rel for s in spec.sources for _, rel in s.files]
        assert sorted(paths) == sorted(produced), name  # each file made by exactly one source
        for f in spec.files:
            assert f.path.startswith(name + "/") and re.fullmatch("[0-9a-f]{64}", f.sha256)
        for s in spec.sources:
            assert s.url.startswith(("https://", "http://"))
            assert s.sha256 is None or re.fullmatch("[0-9a-f]{64}", s.sha256)
    assert "0c46575e89092683010db077f713f8aa3b3594a2" in DATASETS["ap"].sources[0].url


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_check_passes_on_mirror(name, real_data):
    root = Path(real_data(name))
    results = check(name, root)
    assert [ok for _, ok, _ in results] == [True] * len(DATASETS[name].files), results
    assert all(detail == "ok" for _, _, detail in results)


def test_unknown_dataset():
    with pytest.raises(ConfigError, match="unknown dataset 'nope'; known datasets: ap"):
        find_root("nope")


# ---------------------------------------------------------------------------- roots


def test_default_cache_honours_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache() == tmp_path / "elbolab"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    assert default_cache() == Path.home() / ".cache" / "elbolab"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_cache() == Path.home() / ".cache" / "elbolab"


TINY_FILES = {"tiny/one.txt": b"one\n", "tiny/two.txt": b"two\n"}
TINY = DatasetSpec(
    name="tiny",
    files=tuple(StoredFile(p, sha(b)) for p, b in TINY_FILES.items()),
    sources=tuple(
        Source(f"https://example.invalid/{p[5:]}", sha(b), (("", p),))
        for p, b in TINY_FILES.items()
    ),
)


def make_root(folder: Path, files=TINY_FILES) -> Path:
    for rel, data in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    return folder


def test_find_root_order(monkeypatch, tmp_path):
    env_root = make_root(tmp_path / "env")
    cache_root = make_root(tmp_path / "xdg" / "elbolab")
    explicit = make_root(tmp_path / "explicit")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("ELBOLAB_DATA", str(env_root))
    assert find_root("tiny", explicit, spec=TINY) == explicit
    assert find_root("tiny", spec=TINY) == env_root
    (env_root / "tiny/two.txt").unlink()  # incomplete: skipped in favour of the cache
    assert find_root("tiny", spec=TINY) == cache_root
    monkeypatch.delenv("ELBOLAB_DATA")
    assert find_root("tiny", spec=TINY) == cache_root


def test_find_root_explicit_is_strict(monkeypatch, tmp_path):
    monkeypatch.setenv("ELBOLAB_DATA", str(make_root(tmp_path / "env")))
    partial = make_root(tmp_path / "partial", {"tiny/one.txt": b"one\n"})
    with pytest.raises(DataError) as err:
        find_root("tiny", partial, spec=TINY)
    msg = str(err.value)
    assert str(partial / "tiny/two.txt") in msg and "elbolab data fetch tiny" in msg


def test_find_root_nothing_found(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("ELBOLAB_DATA", str(tmp_path / "env"))
    with pytest.raises(DataError) as err:
        find_root("tiny", spec=TINY)
    msg = str(err.value)
    assert str(tmp_path / "env") in msg and str(tmp_path / "xdg" / "elbolab") in msg
    assert "run `elbolab data fetch tiny` (needs internet)" in msg
    assert "set ELBOLAB_DATA to a folder holding tiny/" in msg
    monkeypatch.delenv("ELBOLAB_DATA")
    with pytest.raises(DataError, match=r"\$ELBOLAB_DATA is not set"):
        find_root("tiny", spec=TINY)


def test_check_reports_problems(tmp_path):
    root = make_root(tmp_path, {"tiny/one.txt": b"changed\n"})
    (path1, ok1, detail1), (path2, ok2, detail2) = check("tiny", root, spec=TINY)
    assert path1 == root / "tiny/one.txt" and not ok1
    assert detail1.startswith(f"sha256 mismatch: expected {sha(b'one' + bytes([10]))}")
    assert (path2, ok2, detail2) == (root / "tiny/two.txt", False, "missing")


def test_check_gz_content_and_corruption(tmp_path):
    data = b"payload " * 100
    spec = DatasetSpec("g", (StoredFile("g/x.gz", sha(data)),), ())
    path = tmp_path / "g/x.gz"
    path.parent.mkdir()
    path.write_bytes(gzip.compress(data, mtime=0))
    assert check("g", tmp_path, spec=spec)[0][1:] == (True, "ok")
    path.write_bytes(gzip.compress(data)[:-12])
    ok, detail = check("g", tmp_path, spec=spec)[0][1:]
    assert not ok and "corrupt or truncated gzip" in detail


# --------------------------------------------------------------------------- downloads


class Server:
    """A static file server on 127.0.0.1 that records the paths requested."""

    def __init__(self, folder: Path):
        self.requests: list[str] = []
        server = self

        class Handler(SimpleHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_GET(self):
                server.requests.append(self.path)
                if self.path.endswith("/short.bin"):  # promise 1000 bytes, send 10, hang up
                    self.send_response(200)
                    self.send_header("Content-Length", "1000")
                    self.end_headers()
                    self.wfile.write(b"0123456789")
                    self.wfile.flush()
                    self.close_connection = True
                    return
                super().do_GET()

        handler = functools.partial(Handler, directory=str(folder))
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/files"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def served(tmp_path):
    """Tiny files of every kind a spec can describe, served over HTTP, and their spec."""
    www = tmp_path / "www" / "files"
    www.mkdir(parents=True)
    plain, table, img = b"plain text\n", b"0 1 0\n1 1 0\n" * 50, b"\x00\x00\x08\x01" * 40
    a_dat, b_txt = b"1 0:2\n", b"<DOC> raw </DOC>\n" * 30
    (www / "plain.txt").write_bytes(plain)
    (www / "table.amat").write_bytes(table)
    (www / "img.gz").write_bytes(gzip.compress(img))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in (("bundle/a.dat", a_dat), ("./bundle/b.txt", b_txt)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    (www / "bundle.tgz").write_bytes(buf.getvalue())
    spec = DatasetSpec(
        name="tiny",
        files=(
            StoredFile("tiny/plain.txt", sha(plain)),
            StoredFile("tiny/table.amat.gz", sha(table)),
            StoredFile("tiny/img.gz", sha(img)),
            StoredFile("tiny/a.dat", sha(a_dat)),
            StoredFile("tiny/b.txt.gz", sha(b_txt)),
        ),
        sources=(
            Source("https://example.invalid/x/plain.txt", sha(plain), (("", "tiny/plain.txt"),)),
            Source(
                "https://example.invalid/x/table.amat", sha(table), (("", "tiny/table.amat.gz"),)
            ),
            Source("https://example.invalid/x/img.gz", None, (("", "tiny/img.gz"),)),
            Source(
                "https://example.invalid/x/bundle.tgz",
                sha(buf.getvalue()),
                (("bundle/a.dat", "tiny/a.dat"), ("bundle/b.txt", "tiny/b.txt.gz")),
                archive=True,
            ),
        ),
    )
    server = Server(www.parent)  # the URLs are /files/NAME
    yield server, spec, {"table": table, "b_txt": b_txt}
    server.close()


def with_source(spec, index, **changes):
    sources = list(spec.sources)
    old = sources[index]
    fields = {"url": old.url, "sha256": old.sha256, "files": old.files, "archive": old.archive}
    sources[index] = Source(**{**fields, **changes})
    return DatasetSpec(spec.name, spec.files, tuple(sources))


def test_fetch_downloads_verifies_and_unpacks(tmp_path, served):
    server, spec, raw = served
    root = tmp_path / "root"
    assert fetch("tiny", root, base_url=server.url, progress=False, spec=spec) == root
    assert sorted(server.requests) == [
        "/files/bundle.tgz",
        "/files/img.gz",
        "/files/plain.txt",
        "/files/table.amat",
    ]
    assert listing(root) == [
        "tiny/a.dat",
        "tiny/b.txt.gz",
        "tiny/img.gz",
        "tiny/plain.txt",
        "tiny/table.amat.gz",
    ]  # nothing else: no temp files
    assert all(ok for _, ok, _ in check("tiny", root, spec=spec))
    assert gzip.decompress((root / "tiny/table.amat.gz").read_bytes()) == raw["table"]
    stored = (root / "tiny/b.txt.gz").read_bytes()
    assert gzip.decompress(stored) == raw["b_txt"] and stored[4:8] == b"\0\0\0\0"  # mtime 0
    assert find_root("tiny", root, spec=spec) == root


def test_fetch_skips_files_already_present(tmp_path, served):
    server, spec, _ = served
    root = tmp_path / "root"
    fetch("tiny", root, base_url=server.url, progress=False, spec=spec)
    server.requests.clear()
    fetch("tiny", root, base_url=server.url, progress=False, spec=spec)
    assert server.requests == []
    (root / "tiny/a.dat").unlink()  # one member of the archive gone: refetch the archive
    (root / "tiny/plain.txt").write_bytes(b"tampered\n")  # wrong content: refetch
    fetch("tiny", root, base_url=server.url, progress=False, spec=spec)
    assert sorted(server.requests) == ["/files/bundle.tgz", "/files/plain.txt"]
    assert all(ok for _, ok, _ in check("tiny", root, spec=spec))


def test_fetch_uses_env_base_url_and_shows_progress(tmp_path, served, monkeypatch, capsys):
    server, spec, _ = served
    monkeypatch.setenv("ELBOLAB_DATA_URL", server.url + "/")
    fetch("tiny", tmp_path / "root", progress=True, spec=spec)
    assert len(server.requests) == 4
    assert "plain.txt" in capsys.readouterr().err  # the tqdm bar's description


def test_fetch_sha_mismatch_leaves_nothing(tmp_path, served):
    server, spec, _ = served
    bad = with_source(spec, 3, sha256="0" * 64)
    root = tmp_path / "root"
    with pytest.raises(DataError) as err:
        fetch("tiny", root, base_url=server.url, progress=False, spec=bad)
    msg = str(err.value)
    assert f"{server.url}/bundle.tgz" in msg and "expected " + "0" * 64 in msg
    assert re.search("got [0-9a-f]{64}", msg)
    # The three earlier sources are complete and verified; the failed one left nothing.
    assert listing(root) == ["tiny/img.gz", "tiny/plain.txt", "tiny/table.amat.gz"]


def test_fetch_content_mismatch_leaves_nothing(tmp_path, served):
    server, spec, _ = served
    files = list(spec.files)
    files[1] = StoredFile("tiny/table.amat.gz", "f" * 64)
    bad = DatasetSpec("tiny", tuple(files), spec.sources[1:2])
    with pytest.raises(DataError, match="content sha256 mismatch for tiny/table.amat.gz"):
        fetch("tiny", tmp_path / "root", base_url=server.url, progress=False, spec=bad)
    assert listing(tmp_path / "root") == []


def test_fetch_404(tmp_path, served):
    server, spec, _ = served
    bad = with_source(spec, 0, url="https://example.invalid/x/missing.bin")
    with pytest.raises(DataError) as err:
        fetch("tiny", tmp_path / "root", base_url=server.url, progress=False, spec=bad)
    msg = str(err.value)
    assert f"{server.url}/missing.bin failed: HTTP 404" in msg and "ELBOLAB_DATA" in msg
    assert listing(tmp_path / "root") == []


def test_fetch_truncated_transfer(tmp_path, served):
    server, spec, _ = served
    bad = with_source(spec, 0, url="https://example.invalid/x/short.bin")
    with pytest.raises(DataError, match="short.bin incomplete: 10 of 1000 bytes"):
        fetch("tiny", tmp_path / "root", base_url=server.url, progress=False, spec=bad)
    assert listing(tmp_path / "root") == []


def test_fetch_connection_refused(tmp_path):
    with socket.socket() as s:  # a port that nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DataError, match=f"127.0.0.1:{port}/one.txt failed") as err:
        fetch("tiny", tmp_path, base_url=f"http://127.0.0.1:{port}", progress=False, spec=TINY)
    assert "ELBOLAB_DATA" in str(err.value)
    assert listing(tmp_path) == []


def test_fetch_bad_archive(tmp_path, served):
    server, spec, _ = served
    not_tar = with_source(spec, 3, url="https://x.invalid/plain.txt", sha256=None)
    with pytest.raises(DataError, match="not a readable tar archive"):
        fetch("tiny", tmp_path / "r1", base_url=server.url, progress=False, spec=not_tar)
    no_member = with_source(spec, 3, files=(("bundle/zzz.dat", "tiny/a.dat"),))
    with pytest.raises(DataError, match="archive has no file 'bundle/zzz.dat'"):
        fetch("tiny", tmp_path / "r2", base_url=server.url, progress=False, spec=no_member)
    for r in ("r1", "r2"):
        assert "tiny/a.dat" not in listing(tmp_path / r)
        assert not any(".part" in p for p in listing(tmp_path / r))
