"""``hgc data fetch`` against a real local HTTP server (with Range support) serving small files
this test writes: verified downloads, resume from a partial file, a bad digest, offline, and
the CIFAR-10 archive extracted into what the loader reads."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import socket
import struct
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from common.learning import load_dataset
from hgc import cli
from hgc.cli import UsageError
from hgc.commands import data as data_cmd
from hgc.commands.data import Remote, fetch

pytestmark = pytest.mark.timeout(60)


class RangeHandler(http.server.BaseHTTPRequestHandler):
    root: Path
    ranges: list[str | None]

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        path = self.root / self.path.lstrip("/")
        if not path.is_file():
            self.send_error(404)
            return
        body = path.read_bytes()
        rng = self.headers.get("Range")
        self.ranges.append(rng)
        if rng:
            start = int(rng.removeprefix("bytes=").rstrip("-"))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            body = body[start:]
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path, list[str | None]]]:
    root = tmp_path / "served"
    root.mkdir()
    ranges: list[str | None] = []
    handler = type("H", (RangeHandler,), {"root": root, "ranges": ranges})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/", root, ranges
    finally:
        httpd.shutdown()
        httpd.server_close()


def _idx_gz(arr: np.ndarray) -> bytes:
    head = bytes([0, 0, 8, arr.ndim]) + b"".join(struct.pack(">I", n) for n in arr.shape)
    return gzip.compress(head + arr.astype(np.uint8).tobytes())


def _serve(root: Path, base: str, files: dict[str, bytes]) -> tuple[Remote, ...]:
    out = []
    for name, body in files.items():
        (root / name).write_bytes(body)
        out.append(Remote(name, base + name, hashlib.sha256(body).hexdigest()))
    return tuple(out)


def _mnist_files(seed: int = 0) -> dict[str, bytes]:
    rng = np.random.default_rng(seed)
    return {
        "train-images-idx3-ubyte.gz": _idx_gz(rng.integers(0, 256, (50, 28, 28))),
        "train-labels-idx1-ubyte.gz": _idx_gz(rng.integers(0, 10, 50)),
        "t10k-images-idx3-ubyte.gz": _idx_gz(rng.integers(0, 256, (9, 28, 28))),
        "t10k-labels-idx1-ubyte.gz": _idx_gz(rng.integers(0, 10, 9)),
    }


def test_fetch_verifies_and_the_loader_reads_the_files(server, tmp_path: Path) -> None:
    base, root, ranges = server
    catalogue = {"mnist": _serve(root, base, _mnist_files())}
    out = tmp_path / "out"
    lines = fetch("mnist", out, catalogue)
    assert all("downloaded, sha256 ok" in line for line in lines[:4])
    data = load_dataset({"kind": "mnist", "path": str(out)})
    assert data.X_train.shape == (50, 784) and data.X_test.shape == (9, 784)
    # a second run keeps the verified files and asks the server for nothing
    n_requests = len(ranges)
    assert all("already present" in line for line in fetch("mnist", out, catalogue)[:4])
    assert len(ranges) == n_requests


def test_fetch_resumes_a_partial_download_with_a_range_request(server, tmp_path: Path) -> None:
    base, root, ranges = server
    body = np.random.default_rng(1).bytes(300_000)
    catalogue = {"mnist": _serve(root, base, {"big.gz": body})}
    out = tmp_path / "out"
    out.mkdir()
    (out / "big.gz.part").write_bytes(body[:123_456])
    lines = fetch("mnist", out, catalogue)
    assert ranges == ["bytes=123456-"]
    assert "resumed at byte 123456" in lines[0]
    assert (out / "big.gz").read_bytes() == body and not (out / "big.gz.part").exists()


def test_a_wrong_digest_is_an_error_and_the_partial_file_is_removed(server, tmp_path) -> None:
    base, root, _ = server
    (good,) = _serve(root, base, {"x.gz": b"payload"})
    bad = Remote(good.name, good.url, "0" * 64)
    with pytest.raises(UsageError, match="x.gz: SHA-256 .* differs from the published 0000"):
        fetch("mnist", tmp_path / "out", {"mnist": (bad,)})
    assert not (tmp_path / "out" / "x.gz").exists()
    assert not (tmp_path / "out" / "x.gz.part").exists()


def test_offline_is_one_clear_line_and_status_2(monkeypatch, tmp_path, capsys) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    remote = Remote("a.gz", f"http://127.0.0.1:{port}/a.gz", "0" * 64)
    monkeypatch.setitem(data_cmd.CATALOGUE, "mnist", (remote,))
    status = cli.main(["data", "fetch", "mnist", "--dir", str(tmp_path / "d")])
    err = capsys.readouterr().err.strip()
    assert status == 2
    assert len(err.splitlines()) == 1
    assert err.startswith("hgc data: error: cannot download http://127.0.0.1") and "offline?" in err


def test_cifar10_archive_is_extracted_for_the_loader(server, tmp_path: Path) -> None:
    base, root, _ = server
    rng = np.random.default_rng(2)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
            records = np.hstack(
                [rng.integers(0, 10, (3, 1)), rng.integers(0, 256, (3, 3072))]
            ).astype(np.uint8)
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            info.size = records.nbytes
            tar.addfile(info, io.BytesIO(records.tobytes()))
    catalogue = {"cifar10": _serve(root, base, {"cifar-10-binary.tar.gz": buf.getvalue()})}
    lines = fetch("cifar10", tmp_path / "c", catalogue)
    assert "extracted 6 .bin files" in lines[1]
    data = load_dataset({"kind": "cifar10", "path": str(tmp_path / "c")})
    assert data.X_train.shape == (15, 3072) and data.X_test.shape == (3, 3072)
