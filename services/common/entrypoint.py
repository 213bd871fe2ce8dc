"""The image's entry point: ``python -m services.common.entrypoint [service flags...]``.

Runs as root only long enough to shape the container's egress with ``tc`` (needs
``cap_add: [NET_ADMIN]``), then drops to the unprivileged user and ``exec``s
``python -m services.<HGC_ROLE>`` with the remaining arguments. Root keeps no capability
after the switch (the kernel clears them when the uid leaves 0).

Inputs (environment, written by ``hgc compose``):

- ``HGC_ROLE``: master | edge | worker (required).
- ``HGC_SHAPE_RATE_BPS`` (bytes/s), ``HGC_SHAPE_DELAY_S``, ``HGC_SHAPE_JITTER_S`` (s),
  ``HGC_SHAPE_LOSS`` (0..1): the node's link profile (a worker's link to its edge, an edge's
  uplink to the master). All optional.
- ``HGC_SHAPE_PEER``: host name whose traffic is shaped (an edge: ``master``); empty = all
  egress (a worker talks only to its edge).
- ``HGC_SHAPING``: ``auto`` (default) or ``off``; ``HGC_SHAPE_DEV`` (default ``eth0``);
  ``HGC_RUN_AS`` (default ``hgc``; ``root`` keeps root).

Outputs (environment of the service, so it can export ``hgc_<role>_emulation_active``):

- ``HGC_KERNEL_SHAPING``: comma-separated kernel mechanisms now active (tbf, htb, netem);
  empty when none.
- ``HGC_EMULATION_EXTERNAL``: the same plus ``cpu_quota`` when ``HGC_CPU_LIMIT`` (the
  container's ``cpus`` limit, set by ``hgc compose``) is set: the launcher's variable, which the
  services turn into ``hgc_<role>_emulation_active{mechanism}``.
- ``HGC_INPROCESS_LINK``: ``0`` when netem in this container's kernel already delays the
  node's traffic, so the service must not apply the ``link`` entries of its emulation spec
  again; ``1`` otherwise (no netem, nothing shaped here, or shaping off).
"""

from __future__ import annotations

import logging
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from common.runtime.shaping import Shape, tc_commands

log = logging.getLogger("hgc.entrypoint")

ROLES = ("master", "edge", "worker")
RESOLVE_DEADLINE_S = 60.0


class EntrypointError(RuntimeError):
    """Bad container configuration; the message names the variable."""


@dataclass(frozen=True)
class ShapingPlan:
    shape: Shape
    peer_host: str | None
    dev: str
    enabled: bool


def _float_env(env: Mapping[str, str], name: str, lo: float, hi: float) -> float | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise EntrypointError(f"{name}={raw!r}: not a number") from None
    if not lo <= value <= hi:
        raise EntrypointError(f"{name}={raw!r}: must be in [{lo}, {hi}]")
    return value


def plan_from_env(env: Mapping[str, str]) -> ShapingPlan:
    """Read the shaping variables (pure; raises EntrypointError naming a bad variable)."""
    mode = env.get("HGC_SHAPING", "auto").strip() or "auto"
    if mode not in ("auto", "off"):
        raise EntrypointError(f"HGC_SHAPING={mode!r}: must be auto or off")
    rate = _float_env(env, "HGC_SHAPE_RATE_BPS", 1.0, float("inf"))
    shape = Shape(
        rate_bytes_per_s=rate,
        peer=env.get("HGC_SHAPE_PEER", "").strip() or None,
        delay_s=_float_env(env, "HGC_SHAPE_DELAY_S", 0.0, 60.0) or 0.0,
        jitter_s=_float_env(env, "HGC_SHAPE_JITTER_S", 0.0, 60.0) or 0.0,
        loss=_float_env(env, "HGC_SHAPE_LOSS", 0.0, 1.0) or 0.0,
    )
    dev = env.get("HGC_SHAPE_DEV", "eth0").strip() or "eth0"
    return ShapingPlan(shape=shape, peer_host=shape.peer, dev=dev, enabled=mode == "auto")


def mechanisms(shape: Shape, netem: bool) -> tuple[list[str], bool]:
    """(kernel mechanisms used, whether delay/jitter/loss is left to the in-process link)."""
    kernel: list[str] = []
    if shape.has_rate or (shape.peer is not None and netem and shape.has_netem_part):
        kernel.append("htb" if shape.peer is not None else "tbf")
    if netem and shape.has_netem_part:
        kernel.append("netem")
    return kernel, shape.has_netem_part and not netem


def _tc(args: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["tc", *args], capture_output=True, text=True, timeout=30)


def probe_rtnetlink() -> tuple[bool, str]:
    """Whether tc can talk to the kernel here at all (reading needs no capability)."""
    proc = _tc(["qdisc", "show", "dev", "lo"])
    if proc.returncode != 0 and "Operation not supported" in proc.stderr:
        return False, proc.stderr.strip()
    return True, "rtnetlink answers"


def probe_netem() -> tuple[bool, str]:
    """Try a netem qdisc on the container's own loopback and remove it again."""
    proc = _tc(["qdisc", "add", "dev", "lo", "root", "handle", "1:", "netem", "delay", "1ms"])
    if proc.returncode != 0:
        return False, proc.stderr.strip() or f"tc exit {proc.returncode}"
    _tc(["qdisc", "del", "dev", "lo", "root"])
    return True, "netem available"


def resolve(host: str, deadline_s: float = RESOLVE_DEADLINE_S) -> str:
    """The IPv4 address of ``host``, retrying while the peer's container comes up."""
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            return socket.gethostbyname(host)
        except OSError as exc:
            if time.monotonic() > deadline:
                raise EntrypointError(f"HGC_SHAPE_PEER={host!r}: cannot resolve: {exc}") from exc
            time.sleep(0.5)


def apply_shaping(plan: ShapingPlan) -> tuple[list[str], bool]:
    """Shape egress as planned; returns (kernel mechanisms active, in-process link needed)."""
    shape = plan.shape
    wanted = shape.has_rate or shape.has_netem_part
    if not plan.enabled or not wanted:
        # HGC_SHAPING=off: the whole profile (rate too) is left to the in-process emulation.
        return [], wanted
    reachable, detail = probe_rtnetlink()
    if not reachable:
        # Not a missing capability (that is EPERM, and an error below): this process cannot
        # speak rtnetlink at all, as under QEMU user-mode emulation of another architecture
        # (an arm64 image on an x86 host). Delay, jitter and loss go to the in-process link;
        # with --network kernel the rate was tc's job, so it is said out loud that it is lost.
        rate = f"; rate {shape.rate_bytes_per_s:g} B/s NOT applied" if shape.has_rate else ""
        log.warning(
            "no kernel shaping (%s): delay/jitter/loss go to the in-process emulation%s",
            detail,
            rate,
        )
        return [], True
    netem, detail = probe_netem()
    if not netem:
        log.info("netem unavailable (%s): delay/jitter/loss go to the in-process emulation", detail)
    peer_address = resolve(plan.peer_host) if plan.peer_host else None
    kernel, inprocess = mechanisms(shape, netem)
    for args in tc_commands(plan.dev, shape, peer_address, netem, match="dst"):
        proc = _tc(args)
        if proc.returncode != 0:
            raise EntrypointError(
                f"tc {' '.join(args)} failed: {proc.stderr.strip()} "
                "(does the container have cap_add: [NET_ADMIN]?)"
            )
    log.info(
        "shaping %s%s: kernel=%s in-process link=%s",
        plan.dev,
        f" to {plan.peer_host} ({peer_address})" if plan.peer_host else "",
        ",".join(kernel) or "none",
        inprocess,
    )
    return kernel, inprocess


def drop_privileges(user: str) -> None:
    """Switch to ``user`` for good (groups first, then gid, then uid)."""
    if user == "root" or os.getuid() != 0:
        return
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise EntrypointError(f"HGC_RUN_AS={user!r}: no such user in the image") from None
    os.setgroups([])
    os.setgid(entry.pw_gid)
    os.setuid(entry.pw_uid)
    os.environ["HOME"] = entry.pw_dir


def private_keys(user: str, environ: dict[str, str] | os._Environ[str] = os.environ) -> None:
    """Copy the node's CURVE key folder (``HGC_KEYS``: a secret and configs mounted as root,
    mode 0600) into a fresh folder only ``user`` can read, and point ``HGC_KEYS`` there; the
    service, once unprivileged, could not read the mounted secret itself."""
    src = environ.get("HGC_KEYS", "").strip()
    if not src or user == "root" or os.getuid() != 0:
        return
    if not os.path.isdir(src):
        raise EntrypointError(f"HGC_KEYS={src!r}: no such key folder in the container")
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise EntrypointError(f"HGC_RUN_AS={user!r}: no such user in the image") from None
    dst = tempfile.mkdtemp(prefix="hgc-keys-")
    shutil.copytree(src, dst, dirs_exist_ok=True)
    for root, dirs, files in os.walk(dst):
        for name in [*dirs, *files]:
            os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid)
    os.chown(dst, entry.pw_uid, entry.pw_gid)
    os.chmod(dst, 0o700)
    environ["HGC_KEYS"] = dst


def record_folder(user: str, environ: Mapping[str, str] = os.environ) -> None:
    """Create the folder of ``HGC_RECORD`` (inside a compose stack's bind-mounted run folder)
    writable by ``user``, who writes the record, and by the host's user, who owns the run
    folder and must be able to remove it (hence world-writable, not chowned)."""
    record = environ.get("HGC_RECORD", "").strip()
    if not record or user == "root" or os.getuid() != 0:
        return
    folder = os.path.dirname(os.path.abspath(record))
    try:
        os.makedirs(folder, exist_ok=True)
        os.chmod(folder, 0o777)
    except OSError as exc:
        raise EntrypointError(f"HGC_RECORD={record!r}: cannot prepare {folder}: {exc}") from None


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    args = list(sys.argv[1:] if argv is None else argv)
    role = os.environ.get("HGC_ROLE", "").strip()
    try:
        if role not in ROLES:
            raise EntrypointError(f"HGC_ROLE={role!r}: must be one of {', '.join(ROLES)}")
        plan = plan_from_env(os.environ)
        if os.getuid() == 0:
            kernel, _ = apply_shaping(plan)
        else:
            if plan.enabled and (plan.shape.has_rate or plan.shape.has_netem_part):
                log.warning(
                    "not root: no kernel shaping; the link goes to the in-process emulation"
                )
            kernel = []
        run_as = os.environ.get("HGC_RUN_AS", "hgc").strip() or "hgc"
        private_keys(run_as)
        record_folder(run_as)
        drop_privileges(run_as)
    except EntrypointError as exc:
        print(f"hgc entrypoint: error: {exc}", file=sys.stderr)
        return 2
    os.environ["HGC_KERNEL_SHAPING"] = ",".join(kernel)
    # The launcher's contract (hgc.testbed.emulation): mechanisms applied outside the
    # process, which the service reports in hgc_<role>_emulation_active{mechanism}.
    external = [*kernel, *(["cpu_quota"] if os.environ.get("HGC_CPU_LIMIT") else [])]
    os.environ["HGC_EMULATION_EXTERNAL"] = ",".join(external)
    os.environ["HGC_INPROCESS_LINK"] = "0" if "netem" in kernel else "1"
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvp(sys.executable, [sys.executable, "-m", f"services.{role}", *args])
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
