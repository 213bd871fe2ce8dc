"""Several Docker engines on one machine, joined into a Swarm: the multi-host testbed.

Each engine is a real ``dockerd`` in a network namespace of its own (``<prefix><k>``), with
its own address on a test subnet (default 10.231.0.0/24), its own data root, exec root,
pidfile and socket under ``root/<k>``. The namespaces are wired to a bridge that lives in a
further namespace (``<prefix>sw``: a switch whose iptables are empty, so the host's Docker
FORWARD policy never sees the traffic), and the host reaches the subnet through one veth
(``<prefix>h``, address .1) — the only thing this module adds to the host's own namespace.

Engine 0 is the Swarm manager (labels ``hgc.master=true``, ``hgc.role=master``); the others
join as Swarm workers and carry the scenario's edge groups round-robin
(``hgc.edge-<i>=true``, ``hgc.role=edge``), so the generated stack
(``hgc.compose.generate``) places master, edges and workers across engines by label. Every
engine is labelled ``hgc.arch`` (the engine's real architecture, or ``arm64`` for those
listed in ``arm64``).

    python -m hgc.testbed.engines up [--engines 3] [--edges 3] [--image IMG ...]
    python -m hgc.testbed.engines down          # removes everything ``up`` made
    python -m hgc.testbed.engines status

``make swarm-up`` / ``make swarm-down`` call these (root only: namespaces, dockerd). A Pi
cluster runs the same ``docker swarm``/``docker node update``/``docker load`` commands, one
engine per Pi (docs/raspberry-pi.md).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_PREFIX = "hgcpi"
DEFAULT_SUBNET = "10.231.0"  # /24; .1 = host, .10 + k = engine k
DEFAULT_ROOT = Path("/var/lib/hgcpi")  # a tmpfs is mounted here (overlay2 works on it)
TMPFS_SIZE = os.environ.get("HGC_ENGINES_TMPFS_SIZE", "8g")  # an upper bound, not reserved
ADDR_POOL = "10.232.0.0/16"  # the Swarm's overlay networks (ingress included)
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 30.0


class EngineError(RuntimeError):
    """An engine or the testbed could not be set up; the message says which step."""


def _run(cmd: Sequence[str], timeout: float = 120, check: bool = True, **kw: object) -> str:
    proc = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, **kw)  # type: ignore[call-overload]
    if check and proc.returncode != 0:
        raise EngineError(
            f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr.strip()[-2000:]}"
        )
    return str(proc.stdout)


@dataclass(frozen=True)
class Engine:
    index: int
    prefix: str
    subnet: str
    root: Path

    @property
    def netns(self) -> str:
        return f"{self.prefix}{self.index}"

    @property
    def address(self) -> str:
        return f"{self.subnet}.{10 + self.index}"

    @property
    def dir(self) -> Path:
        return self.root / str(self.index)

    @property
    def socket(self) -> Path:
        return self.dir / "docker.sock"

    @property
    def host(self) -> str:
        """The ``-H``/``DOCKER_HOST`` value of this engine."""
        return f"unix://{self.socket}"

    @property
    def pidfile(self) -> Path:
        return self.dir / "docker.pid"

    @property
    def veth(self) -> str:
        return f"{self.prefix}{self.index}s"  # the switch side; the engine side is eth0

    def docker(self, *args: str, timeout: float = 120, check: bool = True) -> str:
        return _run(["docker", "-H", self.host, *args], timeout=timeout, check=check)

    def pid(self) -> int | None:
        try:
            return int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None


@dataclass
class EngineSwarm:
    n: int = 3
    prefix: str = DEFAULT_PREFIX
    subnet: str = DEFAULT_SUBNET
    root: Path = DEFAULT_ROOT
    engines: list[Engine] = field(init=False)

    def __post_init__(self) -> None:
        if self.n < 1:
            raise EngineError(f"--engines {self.n}: must be >= 1")
        if not self.prefix.isalnum() or len(self.prefix) > 8:
            raise EngineError(f"--prefix {self.prefix!r}: letters/digits, at most 8")
        self.engines = [Engine(k, self.prefix, self.subnet, self.root) for k in range(self.n)]

    @property
    def switch(self) -> str:
        return f"{self.prefix}sw"

    @property
    def host_veth(self) -> str:
        return f"{self.prefix}h"

    @property
    def host_address(self) -> str:
        return f"{self.subnet}.1"

    @property
    def manager(self) -> Engine:
        return self.engines[0]

    # --- network -----------------------------------------------------------------------------
    def _ns(self, ns: str, *cmd: str) -> str:
        return _run(["ip", "netns", "exec", ns, *cmd])

    def make_network(self) -> None:
        sw = self.switch
        _run(["ip", "netns", "add", sw])
        self._ns(sw, "ip", "link", "set", "lo", "up")
        self._ns(sw, "ip", "link", "add", "br0", "type", "bridge")
        self._ns(sw, "ip", "link", "set", "br0", "up")
        # host <-> switch
        _run(["ip", "link", "add", self.host_veth, "type", "veth", "peer", "name", "hostport"])
        _run(["ip", "link", "set", "hostport", "netns", sw])
        self._ns(sw, "ip", "link", "set", "hostport", "master", "br0", "up")
        _run(["ip", "addr", "add", f"{self.host_address}/24", "dev", self.host_veth])
        _run(["ip", "link", "set", self.host_veth, "up"])
        for e in self.engines:
            _run(["ip", "netns", "add", e.netns])
            _run(["ip", "link", "add", e.veth, "type", "veth", "peer", "name", "eth0",
                  "netns", e.netns])  # fmt: skip
            _run(["ip", "link", "set", e.veth, "netns", sw])
            self._ns(sw, "ip", "link", "set", e.veth, "master", "br0", "up")
            self._ns(e.netns, "ip", "link", "set", "lo", "up")
            self._ns(e.netns, "ip", "addr", "add", f"{e.address}/24", "dev", "eth0")
            self._ns(e.netns, "ip", "link", "set", "eth0", "up")
            self._ns(e.netns, "ip", "route", "add", "default", "via", self.host_address)

    # --- engines -----------------------------------------------------------------------------
    def start_engine(self, e: Engine) -> None:
        for sub in ("data", "exec"):
            (e.dir / sub).mkdir(parents=True, exist_ok=True)
        (e.dir / "daemon.json").write_text("{}\n")  # not the host's /etc/docker/daemon.json
        log = open(e.dir / "dockerd.log", "ab")  # noqa: SIM115 (the daemon keeps it)
        # nsenter --net only (not `ip netns exec`, which remounts /sys and hides the cgroups),
        # and a UTS namespace so each engine has a hostname of its own (`docker node ls`).
        subprocess.Popen(
            ["nsenter", f"--net=/run/netns/{e.netns}", "unshare", "--uts", "--",
             "sh", "-c", 'hostname "$0" && exec "$@"', e.netns, "dockerd",
             "--host", e.host, "--data-root", str(e.dir / "data"),
             "--exec-root", str(e.dir / "exec"), "--pidfile", str(e.pidfile),
             "--config-file", str(e.dir / "daemon.json"),
             "--containerd-namespace", e.netns, "--containerd-plugins-namespace", f"{e.netns}p",
             "--cgroup-parent", f"/{e.netns}", "--shutdown-timeout", "3",
             "--storage-driver", "overlay2", "--log-driver", "json-file"],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        log.close()

    def wait_engine(self, e: Engine, timeout: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if e.docker("info", "--format", "{{.ID}}", timeout=30, check=False).strip():
                return
            time.sleep(0.5)
        tail = (e.dir / "dockerd.log").read_text(errors="replace")[-2000:]
        raise EngineError(
            f"engine {e.netns} not answering on {e.socket} after {timeout:g} s\n{tail}"
        )

    def form_swarm(self, edges: int, arm64: Sequence[int] = ()) -> dict[str, dict[str, str]]:
        """Init on engine 0, join the rest, label them; returns engine -> labels."""
        m = self.manager
        m.docker("swarm", "init", "--advertise-addr", m.address, "--listen-addr",
                 f"{m.address}:2377", "--default-addr-pool", ADDR_POOL)  # fmt: skip
        token = m.docker("swarm", "join-token", "-q", "worker").strip()
        for e in self.engines[1:]:
            e.docker("swarm", "join", "--token", token, "--advertise-addr", e.address,
                     "--listen-addr", f"{e.address}:2377", f"{m.address}:2377")  # fmt: skip
        labels = engine_labels(self.n, edges, arm64)
        for e in self.engines:
            node = e.docker("info", "--format", "{{.Swarm.NodeID}}").strip()
            args = [a for k, v in labels[str(e.index)].items() for a in ("--label-add", f"{k}={v}")]
            m.docker("node", "update", *args, node)
        return labels

    def load_images(self, images: Sequence[str], engines: Sequence[Engine] | None = None) -> None:
        """``docker save`` once, ``docker -H ENGINE load`` into every engine at once (what a Pi
        cluster does over ssh: ``docker save IMG | ssh pi docker load``)."""
        if not images:
            return
        targets = list(engines or self.engines)
        self.root.mkdir(parents=True, exist_ok=True)
        tar = self.root / "images.tar"
        try:
            _run(["docker", "save", "-o", str(tar), *images], timeout=600)
            loads = [
                (e, subprocess.Popen(["docker", "-H", e.host, "load", "-q", "-i", str(tar)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
                for e in targets
            ]  # fmt: skip
            failed = []
            for e, proc in loads:
                _, err = proc.communicate(timeout=900)
                if proc.returncode != 0:
                    failed.append(f"{e.netns}: {err.strip()}")
            if failed:
                raise EngineError(f"loading {', '.join(images)} failed: {'; '.join(failed)}")
        finally:
            tar.unlink(missing_ok=True)

    def up(self, edges: int = 3, images: Sequence[str] = (), arm64: Sequence[int] = ()) -> None:
        if os.geteuid() != 0:
            raise EngineError("swarm-up must run as root (network namespaces, dockerd)")
        for tool in ("ip", "nsenter", "dockerd", "docker"):
            if shutil.which(tool) is None:
                raise EngineError(f"{tool} not found (scripts/provision.sh installs docker.io)")
        if leftovers(self.prefix, self.root):
            raise EngineError(f"a testbed {self.prefix!r} exists already: run `down` first")
        try:
            # The engines' data roots on a tmpfs: image loads at memory speed, and teardown is
            # one unmount (deleting overlay layers from a disk with discard takes minutes).
            self.root.mkdir(parents=True, exist_ok=True)
            _run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE},mode=0755",
                  f"{self.prefix}-data", str(self.root)])  # fmt: skip
            self.make_network()
            for e in self.engines:
                self.start_engine(e)
            for e in self.engines:
                self.wait_engine(e)
            self.form_swarm(edges, arm64)
            self.load_images(images)
        except BaseException:
            self.down()
            raise

    def stop_engine(self, e: Engine) -> None:
        """A worker Pi losing power: its link goes down at once, then its engine stops (its
        containers with it). The Swarm marks the node down; nothing is rescheduled."""
        _run(["ip", "netns", "exec", self.switch, "ip", "link", "set", e.veth, "down"], check=False)
        _stop_pid(e.pid())
        _kill_netns_pids(e.netns)

    def down(self) -> list[str]:
        """Remove every engine, namespace, interface, mount and directory; returns what was
        still there afterwards (empty on success)."""
        teardown(self.prefix, self.root, self.n)
        return leftovers(self.prefix, self.root)


def engine_labels(n: int, edges: int, arm64: Sequence[int] = ()) -> dict[str, dict[str, str]]:
    """Engine index (as str) -> Swarm node labels: engine 0 the master; edge groups i over
    engines 1..n-1 round-robin (all on engine 0 when n == 1)."""
    if n < 1 or edges < 0:
        raise EngineError(f"engines {n}, edges {edges}: need >= 1 engine and >= 0 edges")
    bad = [k for k in arm64 if not 0 <= k < n]
    if bad:
        raise EngineError(f"--arm64 {bad}: engine indices must be in 0..{n - 1}")
    native = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    labels: dict[str, dict[str, str]] = {}
    for k in range(n):
        labels[str(k)] = {"hgc.arch": "arm64" if k in arm64 else native}
    labels["0"].update({"hgc.master": "true", "hgc.role": "master"})
    for i in range(edges):
        k = 1 + i % (n - 1) if n > 1 else 0
        labels[str(k)].update({f"hgc.edge-{i}": "true"})
        labels[str(k)].setdefault("hgc.role", "edge")
    return labels


# --- teardown (works from names alone: a killed session's testbed is removed too) ------------
def _stop_pid(pid: int | None, timeout: float = STOP_TIMEOUT_S) -> None:
    if not pid:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pid}").exists():
            return
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _netns_pids(ns: str) -> list[int]:
    out = _run(["ip", "netns", "pids", ns], check=False)
    return [int(p) for p in out.split() if p.isdigit()]


def _kill_netns_pids(ns: str) -> None:
    """SIGKILL whatever still runs in a namespace this module made (containerd, shims)."""
    for _ in range(20):
        pids = _netns_pids(ns)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)


def _our_namespaces(prefix: str) -> list[str]:
    out = _run(["ip", "netns", "list"], check=False)
    names = [line.split()[0] for line in out.splitlines() if line.strip()]
    return [n for n in names if n.startswith(prefix) and (n[len(prefix):].isdigit()
                                                          or n == f"{prefix}sw")]  # fmt: skip


def _mounts_under(root: Path) -> list[str]:
    found = []
    with open("/proc/self/mounts") as fh:
        for line in fh:
            target = line.split()[1].replace("\\040", " ")
            if target == str(root) or target.startswith(f"{root}/"):
                found.append(target)
    return found


def teardown(prefix: str = DEFAULT_PREFIX, root: Path = DEFAULT_ROOT, n: int = 0) -> None:
    namespaces = _our_namespaces(prefix)
    indices = {int(ns[len(prefix) :]) for ns in namespaces if ns[len(prefix) :].isdigit()}
    if root.is_dir():
        indices |= {int(p.name) for p in root.iterdir() if p.name.isdigit()}
    indices |= set(range(n))
    engines = [Engine(k, prefix, DEFAULT_SUBNET, root) for k in sorted(indices)]
    for e in engines:  # graceful first: dockerd stops its containers and its containerd
        pid = e.pid()
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
    for e in engines:
        _stop_pid(e.pid())
        if f"{e.netns}" in namespaces:
            _kill_netns_pids(e.netns)
    for target in sorted(_mounts_under(root), key=len, reverse=True):
        _run(["umount", "-l", target], check=False)  # the engines' mounts, then the tmpfs
    for ns in namespaces:
        _run(["ip", "netns", "del", ns], check=False)
    _run(["ip", "link", "del", f"{prefix}h"], check=False)
    for e in engines:
        for ctrl in Path("/sys/fs/cgroup").glob(f"*/{e.netns}"):
            with contextlib.suppress(OSError):
                ctrl.rmdir()
        with contextlib.suppress(OSError):
            Path(f"/sys/fs/cgroup/{e.netns}").rmdir()
    shutil.rmtree(root, ignore_errors=True)


def leftovers(prefix: str = DEFAULT_PREFIX, root: Path = DEFAULT_ROOT) -> list[str]:
    """Everything of a testbed that still exists: namespaces, host interfaces, processes
    started from its root, mounts under it, its directory."""
    found = [f"netns {ns}" for ns in _our_namespaces(prefix)]
    links = _run(["ip", "-o", "link", "show"], check=False)
    names = {line.split(":")[1].strip().split("@")[0] for line in links.splitlines()}
    found += [f"link {n}" for n in sorted(names) if n == f"{prefix}h"]
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if f"{root}/" in cmd and "engines" not in cmd:
                found.append(f"process {proc.name}: {cmd[:120]}")
    found += [f"mount {m}" for m in _mounts_under(root)]
    if root.exists():
        found.append(f"directory {root}")
    return found


def status(prefix: str = DEFAULT_PREFIX, root: Path = DEFAULT_ROOT) -> dict[str, object]:
    out: dict[str, object] = {"parts": leftovers(prefix, root)}
    if root.is_dir():
        m = Engine(0, prefix, DEFAULT_SUBNET, root)
        out["nodes"] = m.docker("node", "ls", "--format", "{{.Hostname}} {{.Status}}", check=False)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m hgc.testbed.engines", description=__doc__.split("\n")[0]
    )
    ap.add_argument("action", choices=("up", "down", "status"))
    ap.add_argument("--engines", type=int, default=3)
    ap.add_argument("--edges", type=int, default=3, help="edge groups to label across engines")
    ap.add_argument("--image", action="append", default=[], help="image to load (repeat)")
    ap.add_argument("--arm64", default="", help="engine indices labelled hgc.arch=arm64 (1,2)")
    ap.add_argument("--prefix", default=DEFAULT_PREFIX)
    ap.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    args = ap.parse_args(argv)
    try:
        arm64 = [int(k) for k in args.arm64.split(",") if k.strip()]
    except ValueError:
        print(f"--arm64 {args.arm64!r}: comma-separated engine indices", file=sys.stderr)
        return 2
    try:
        if args.action == "up":
            bed = EngineSwarm(args.engines, args.prefix, DEFAULT_SUBNET, args.root)
            bed.up(args.edges, args.image, arm64)
            for e in bed.engines:
                print(f"{e.netns} {e.address} DOCKER_HOST={e.host}")
            print(bed.manager.docker("node", "ls"))
        elif args.action == "down":
            left = EngineSwarm(max(args.engines, 1), args.prefix, DEFAULT_SUBNET, args.root).down()
            if left:
                print("left behind:\n  " + "\n  ".join(left), file=sys.stderr)
                return 1
            print(f"testbed {args.prefix} removed")
        else:
            print(json.dumps(status(args.prefix, args.root), indent=2))
    except EngineError as exc:
        print(f"engines: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
