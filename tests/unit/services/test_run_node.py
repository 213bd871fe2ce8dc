"""``node.run_node``, the start-up sequence the three roles share, driven in-process with a
stub runner (the real processes: test_node_cli.py and tests/system/test_processes_cli.py)."""

from __future__ import annotations

import argparse
import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from services.common import node


class StubServer:
    closed = False

    def close(self) -> None:
        self.closed = True


class StubRunner:
    def __init__(self, status: int = 0, error: Exception | None = None) -> None:
        self.status, self.error = status, error

    def run(self) -> int:
        if self.error is not None:
            raise self.error
        return self.status


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> StubServer:
    stub = StubServer()
    monkeypatch.setattr(node, "serve_node_metrics", lambda registry, args: (stub, 9100))
    # no real signal handlers in the test process
    monkeypatch.setattr(node, "stop_on_signals", lambda stop: None)
    return stub


def _args(tmp_path: Path) -> argparse.Namespace:
    return argparse.Namespace(ready_file=str(tmp_path / "ready.json"))


def test_ready_line_merges_what_start_adds_and_finish_sees_the_runner(
    server: StubServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runner = StubRunner(status=7)
    seen: dict[str, Any] = {}

    def start(stop: threading.Event, info: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        seen["info"] = dict(info)
        return runner, {"port": 5555}

    status = node.run_node("edge-1", _args(tmp_path), CollectorRegistry(), start)
    assert status == 7 and server.closed
    base = {"node": "edge-1", "pid": os.getpid(), "metrics_port": 9100}
    assert seen["info"] == base
    ready = json.loads((tmp_path / "ready.json").read_text())
    assert ready == {**base, "port": 5555}
    assert capsys.readouterr().out == f"HGC_READY {json.dumps(ready, sort_keys=True)}\n"


def test_finish_runs_after_the_loop(server: StubServer, tmp_path: Path) -> None:
    finished: list[Any] = []
    runner = StubRunner()

    def start(stop: threading.Event, info: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        return runner, {}

    status = node.run_node("master", _args(tmp_path), CollectorRegistry(), start, finished.append)
    assert status == 0 and finished == [runner] and server.closed


@pytest.mark.parametrize("where", ["start", "run"])
def test_an_error_is_one_line_naming_the_node_and_exit_2(
    where: str, server: StubServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def start(stop: threading.Event, info: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        if where == "start":
            raise OSError("Address already in use")
        return StubRunner(error=ValueError("bad entry")), {}

    status = node.run_node("worker-0-1", _args(tmp_path), CollectorRegistry(), start)
    assert status == 2 and server.closed
    why = "Address already in use" if where == "start" else "bad entry"
    assert capsys.readouterr().err == f"worker-0-1: {why}\n"
    assert (tmp_path / "ready.json").exists() == (where == "run")  # ready only once started


def test_metrics_that_cannot_be_served_fail_before_start(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def refuse(registry: Any, args: Any) -> Any:
        raise node.StartupError("--metrics-port 1 ...: in use")

    monkeypatch.setattr(node, "serve_node_metrics", refuse)
    started: list[bool] = []

    def start(stop: threading.Event, info: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        started.append(True)
        return StubRunner(), {}

    status = node.run_node("edge-0", _args(tmp_path), CollectorRegistry(), start)
    assert status == 2 and not started
    assert capsys.readouterr().err == "edge-0: --metrics-port 1 ...: in use\n"
