"""``hgc data fetch NAME --dir DIR``: download a public dataset in its official format.

Each file comes from its official URL (MNIST: the Google mirror TensorFlow uses, since
yann.lecun.com often refuses downloads; Fashion-MNIST: Zalando's; CIFAR-10: the authors'
Toronto page), is verified against its published SHA-256, and is resumable: an interrupted
download leaves ``NAME.part`` and the next run asks the server for the remaining bytes (HTTP
``Range``), starting over only if the server ignores the range. A file already present with
the right digest is not fetched again. Offline, or on any HTTP error, one line says which URL
failed and why (exit status 2).

The result is what ``data: {kind: mnist, path: DIR}`` (MNIST and Fashion-MNIST, IDX gzipped)
or ``data: {kind: cifar10, path: DIR}`` (the ``*.bin`` files, extracted from the archive)
read. The shipped 5,000-image MNIST sample needs no download (``data: {kind: mnist}``).
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import tarfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from hgc.cli import UsageError

HELP = "download MNIST / Fashion-MNIST / CIFAR-10 in their official formats (SHA-256 checked)"

CHUNK = 1 << 16
TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Remote:
    """One file: where it comes from and its published SHA-256."""

    name: str
    url: str
    sha256: str


_MNIST = "https://storage.googleapis.com/cvdf-datasets/mnist/"
_FASHION = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
CATALOGUE: dict[str, tuple[Remote, ...]] = {
    "mnist": tuple(
        Remote(n, _MNIST + n, h)
        for n, h in (
            ("train-images-idx3-ubyte.gz",
             "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
            ("train-labels-idx1-ubyte.gz",
             "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
            ("t10k-images-idx3-ubyte.gz",
             "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
            ("t10k-labels-idx1-ubyte.gz",
             "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
        )
    ),
    "fashion-mnist": tuple(
        Remote(n, _FASHION + n, h)
        for n, h in (
            ("train-images-idx3-ubyte.gz",
             "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"),
            ("train-labels-idx1-ubyte.gz",
             "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"),
            ("t10k-images-idx3-ubyte.gz",
             "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"),
            ("t10k-labels-idx1-ubyte.gz",
             "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"),
        )
    ),
    "cifar10": (
        Remote(
            "cifar-10-binary.tar.gz",
            "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
            "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",
        ),
    ),
}  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION")
    sub.required = True
    fetch = sub.add_parser("fetch", help="download and verify a dataset into --dir")
    fetch.add_argument("name", choices=sorted(CATALOGUE), help="dataset")
    fetch.add_argument("--dir", required=True, help="where the files go (created)")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def download(remote: Remote, directory: Path) -> tuple[Path, str]:
    """``directory/remote.name``, verified; returns (path, what happened)."""
    target = directory / remote.name
    if target.is_file() and _sha256(target) == remote.sha256:
        return target, "already present"
    part = target.with_name(target.name + ".part")
    have = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(remote.url)
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            resumed = have > 0 and response.status == 206
            with part.open("ab" if resumed else "wb") as fh:
                shutil.copyfileobj(response, fh, CHUNK)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # the .part is already whole: verify it below
            resumed = True
        else:
            raise UsageError(f"{remote.url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        kept = f"; {part.stat().st_size} bytes kept in {part}" if part.is_file() else ""
        raise UsageError(f"cannot download {remote.url} ({reason}); offline?{kept}") from None
    digest = _sha256(part)
    if digest != remote.sha256:
        part.unlink()
        raise UsageError(
            f"{remote.name}: SHA-256 {digest} differs from the published {remote.sha256}; "
            "the partial file was removed, run again to retry"
        )
    part.replace(target)
    return target, f"resumed at byte {have}" if resumed else "downloaded"


def extract_cifar(archive: Path, directory: Path) -> list[Path]:
    """The ``*.bin`` members of the CIFAR-10 binary archive, flattened into ``directory``."""
    out = []
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar.getmembers():
            name = Path(member.name).name
            if member.isfile() and name.endswith(".bin"):
                src = tar.extractfile(member)
                assert src is not None
                with src, (directory / name).open("wb") as fh:
                    shutil.copyfileobj(src, fh, CHUNK)
                out.append(directory / name)
    return out


def fetch(
    name: str, directory: Path, catalogue: dict[str, tuple[Remote, ...]] | None = None
) -> list[str]:
    """Download (or resume, or keep) every file of ``name``; the lines to print."""
    remotes = (catalogue or CATALOGUE)[name]
    directory.mkdir(parents=True, exist_ok=True)
    lines = []
    for remote in remotes:
        path, what = download(remote, directory)
        lines.append(f"{path}: {what}, sha256 ok")
        if path.name.endswith(".tar.gz"):
            bins = extract_cifar(path, directory)
            lines.append(f"{directory}: extracted {len(bins)} .bin files")
    kind = "cifar10" if name == "cifar10" else "mnist"
    lines.append(f"use it with  data: {{kind: {kind}, path: {directory}}}")
    return lines


def run(args: argparse.Namespace) -> int:
    for line in fetch(args.name, Path(args.dir)):
        print(line)
    return 0
