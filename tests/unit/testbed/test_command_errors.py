"""Bad input on ``hgc cluster`` / ``hgc simulate`` / ``hgc run``: one line on stderr, exit
status 2, no traceback, and nothing started or computed first (audit findings #4, #7)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from hgc.cli import main
from hgc.commands.cluster import _from_flags

ROOT = Path(__file__).resolve().parents[3]
SCENARIO = ROOT / "scenarios" / "homogeneous.yaml"


def usage_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """Run ``hgc ARGV``; assert exit 2 with exactly one stderr line and no traceback."""
    rc = main(argv)
    out, err = capsys.readouterr()
    assert rc == 2, (rc, out, err)
    assert err.count("\n") == 1 and err.startswith(f"hgc {argv[0]}: error: "), err
    assert "Traceback" not in err + out
    return err


def valid_config() -> dict[str, object]:
    flags = argparse.Namespace(workers_per_edge="2,2", scheme="hgc", s=None, s_e=1, s_w=1)
    flags.data, flags.model = "digits", "logreg"
    return _from_flags(flags)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[1, 2]", "must hold a JSON object"),
        ("5", "got int"),
        ("{not json", "--config"),
    ],
)
def test_cluster_config_that_is_not_an_object(capsys, tmp_path, content, message) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "config.json"
    path.write_text(content)
    err = usage_error(capsys, ["cluster", "--config", str(path)])
    assert message in err and str(path) in err


def test_cluster_config_with_a_bad_training_section_names_it(capsys, tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = valid_config()
    config["training"] = 5
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    err = usage_error(capsys, ["cluster", "--config", str(path), "--iterations", "3"])
    assert "training" in err


def test_cluster_valid_config_passes_the_checks(tmp_path) -> None:
    """Negative control: the config the bad ones derive from is accepted by the checks."""
    from hgc.commands.cluster import _check_config, _check_learning_specs

    config = valid_config()
    _check_config(config, "x")
    _check_learning_specs(config)


@pytest.mark.parametrize(
    ("argv", "field"),
    [
        (["--data", "foo"], "data_spec (--data)"),
        (["--model", "bar"], "model_spec (--model)"),
    ],
)
def test_cluster_bad_data_or_model_is_refused_before_any_process_starts(
    capsys, monkeypatch, argv, field
) -> None:  # type: ignore[no-untyped-def]
    import hgc.cluster

    def no_cluster(*a: object, **k: object) -> None:
        raise AssertionError("a process was started for bad input")

    monkeypatch.setattr(hgc.cluster, "LocalCluster", no_cluster)
    err = usage_error(capsys, ["cluster", "--workers-per-edge", "2,2", *argv])
    assert field in err


def test_simulate_out_that_is_a_file_is_refused_before_any_work(capsys, tmp_path) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "a-file"
    target.write_text("keep me")
    err = usage_error(capsys, ["simulate", str(SCENARIO), "--out", str(target)])
    assert f"--out {target}" in err and "not a directory" in err
    assert target.read_text() == "keep me"


def test_simulate_out_under_a_file_is_refused(capsys, tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "f").write_text("")
    err = usage_error(capsys, ["simulate", str(SCENARIO), "--out", str(tmp_path / "f" / "d")])
    assert "--out" in err


@pytest.mark.parametrize("flag", ["--iterations", "--sweep-iterations"])
def test_simulate_iterations_have_an_upper_limit_stated_in_the_message(capsys, flag) -> None:  # type: ignore[no-untyped-def]
    from hgc.commands.simulate import MAX_ITERATIONS

    err = usage_error(capsys, ["simulate", str(SCENARIO), flag, "1000000000"])
    assert flag in err and str(MAX_ITERATIONS) in err


def test_simulate_small_run_with_out_still_works(capsys, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Negative control for the --out check: a fresh directory is accepted and written."""
    out = tmp_path / "sim"
    rc = main(["simulate", str(SCENARIO), "--iterations", "50", "--no-sweeps", "--out", str(out)])
    assert rc == 0 and (out / "schemes.csv").exists()
    assert not (out / ".hgc-write-test").exists()


@pytest.mark.parametrize("command", ["simulate", "run"])
def test_a_directory_as_scenario_says_so(capsys, tmp_path, command) -> None:  # type: ignore[no-untyped-def]
    err = usage_error(capsys, [command, str(tmp_path)])
    assert "is a directory" in err and "no such file" not in err


def test_run_out_that_is_a_file_is_refused_before_anything_starts(capsys, tmp_path) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "a-file"
    target.write_text("keep me")
    err = usage_error(capsys, ["run", str(SCENARIO), "--out", str(target)])
    assert "--out" in err and str(target) in err and "not a directory" in err
    assert target.read_text() == "keep me"


def test_malformed_yaml_gives_one_line_with_the_position(capsys, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\ntopology: [1, 2\nfoo: : bar\n")
    for command in ("simulate", "run"):
        err = usage_error(capsys, [command, str(path)])
        assert "not valid YAML" in err and "line 3, column 4" in err


def test_run_with_a_metrics_port_in_use_is_refused_before_anything_starts(capsys, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import socket

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        text = SCENARIO.read_text().replace(
            "ports: {metrics_base_port: auto}", f"ports: {{metrics_base_port: {port - 1}}}"
        )
        assert str(port - 1) in text
        path = tmp_path / "busy.yaml"
        path.write_text(text)
        err = usage_error(capsys, ["run", str(path), "--out", str(tmp_path / "out")])
    # the held port is edge-0's; on a busy machine the master's (port - 1) may be taken by
    # some other process first, and then the pre-flight rightly names that one
    assert (
        f"port {port} (= {port - 1} + 1, for edge-0)" in err
        or f"port {port - 1} (= {port - 1} + 0, for master)" in err
    ), err
    assert "ports.metrics_base_port" in err and not (tmp_path / "out").exists()


def test_launcher_shows_a_refusing_node_as_one_line() -> None:
    from hgc.testbed.launcher import one_line

    log = "master exited with status 2 during start-up:\nmaster: --metrics-port 39000 ... in use"
    assert one_line(log) == (
        "master exited with status 2 during start-up: master: --metrics-port 39000 ... in use"
    )
    crash = "master exited with status 1:\nTraceback\n  ...\nZeroDivisionError"
    assert one_line(crash) == crash  # a crash keeps its log tail: that is the evidence


def test_compose_output_that_is_a_directory_is_refused(capsys, tmp_path) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "stack.yaml"
    target.mkdir()
    err = usage_error(capsys, ["compose", str(SCENARIO), "-o", str(target)])
    assert f"-o {target}: is a directory" in err


def test_compose_scenario_that_is_a_directory_says_so(capsys, tmp_path) -> None:  # type: ignore[no-untyped-def]
    err = usage_error(capsys, ["compose", str(tmp_path), "-o", str(tmp_path / "s.yaml")])
    assert "is a directory" in err


def test_cluster_config_with_a_bad_data_kind_names_the_config_file(capsys, tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = valid_config()
    config["data_spec"] = {"kind": "nope"}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    err = usage_error(capsys, ["cluster", "--config", str(path)])
    assert f"data_spec (--config {path})" in err and "'nope'" in err
