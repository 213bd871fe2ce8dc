"""Bad start-up input for master / edge / worker processes: one line on stderr naming the
flag and its ``HGC_*`` variable, exit status 2, no traceback (audit finding #4). Real
processes; the port-in-use cases hold a real listening socket."""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.common import node

ROOT = Path(__file__).resolve().parents[3]
EDGE_ADDR = "tcp://127.0.0.1:5"  # never connected to: these nodes exit before
WORKER = ["services.worker", "--edge", "0", "--worker", "0", "--edge-addr", EDGE_ADDR]
EDGE = ["services.edge", "--edge", "0", "--master-addr", EDGE_ADDR]


def run_node(argv: list[str], env: dict[str, str] | None = None) -> str:
    """Run ``python -m ARGV``; assert exit 2, one stderr line, no traceback; that line."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("HGC_")}
    full_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=full_env,
    )
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout
    assert proc.stderr.count("\n") == 1, proc.stderr
    return proc.stderr


@pytest.fixture
def held_port() -> Iterator[int]:
    """A port some other process (here: this test) is listening on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


@pytest.fixture
def master_config(tmp_path: Path) -> Path:
    from hgc.commands.cluster import _from_flags

    flags = argparse.Namespace(workers_per_edge="2,2", scheme="hgc", s=None, s_e=1, s_w=1)
    flags.data, flags.model = "digits", "logreg"
    path = tmp_path / "config.json"
    path.write_text(json.dumps(_from_flags(flags)))
    return path


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("argv", "env", "expected"),
    [
        (WORKER, {"HGC_METRICS_PORT": "99999"}, ["HGC_METRICS_PORT='99999'", "--metrics-port"]),
        (EDGE, {"HGC_METRICS_PORT": "-3"}, ["HGC_METRICS_PORT='-3'", "0..65535"]),
        ([*WORKER, "--metrics-port", "70000"], {}, ["--metrics-port", "HGC_METRICS_PORT"]),
        (WORKER[:-1] + ["notanaddr"], {}, ["--edge-addr", "HGC_EDGE_ADDR", "tcp://host:port"]),
        (EDGE[:-1] + ["notanaddr"], {}, ["--master-addr", "HGC_MASTER_ADDR"]),
        ([*EDGE, "--bind", "tcp://x"], {}, ["--bind", "HGC_BIND"]),
        (WORKER[:-2], {"HGC_EDGE_ADDR": "tcp://h:0"}, ["HGC_EDGE_ADDR", "1..65535"]),
    ],
)
def test_bad_port_or_address_is_one_line_exit_2(argv, env, expected) -> None:  # type: ignore[no-untyped-def]
    line = run_node(argv, env)
    for text in expected:
        assert text in line, line


@pytest.mark.timeout(120)
@pytest.mark.parametrize("role", ["worker", "edge"])
def test_metrics_port_in_use_is_one_line_exit_2_naming_the_port(role, held_port) -> None:  # type: ignore[no-untyped-def]
    argv = WORKER if role == "worker" else EDGE
    line = run_node([*argv, "--metrics-port", str(held_port)])
    assert f"--metrics-port {held_port}" in line and "HGC_METRICS_PORT" in line
    assert "in use" in line


@pytest.mark.timeout(120)
def test_master_metrics_port_in_use_and_bad_bind(master_config, held_port) -> None:  # type: ignore[no-untyped-def]
    base = ["services.master", "--config", str(master_config)]
    line = run_node([*base, "--metrics-port", str(held_port)])
    assert line.startswith("master: ") and f"--metrics-port {held_port}" in line
    line = run_node([*base, "--bind", "tcp://127.0.0.1:nope"])
    assert "--bind" in line and "HGC_BIND" in line


def test_validators_accept_what_the_launchers_pass() -> None:
    """Negative control: the addresses and ports the cluster, compose and docs use pass."""
    for addr in ("tcp://127.0.0.1:5555", "tcp://master:5555", "tcp://edge-2:5555", "ipc:///x"):
        assert node.zmq_address(addr) == addr
    for addr in ("tcp://127.0.0.1:0", "tcp://0.0.0.0:5555", "tcp://*:5555", "tcp://[::1]:0"):
        assert node.bind_address(addr) == addr
    assert node.port_number("0") == 0 and node.port_number("65535") == 65535
    for bad in ("tcp://h:0", "tcp://*:5", "notanaddr", "tcp://h:70000", "tcp://:5"):
        with pytest.raises(argparse.ArgumentTypeError):
            node.zmq_address(bad)
    with pytest.raises(argparse.ArgumentTypeError, match="0..65535"):
        node.port_number("65536")
