"""The monitoring configuration without a running stack: promtool accepts the scrape
configuration and the recording rules, and every PromQL expression of the dashboard uses only
metric names from the contract (docs/architecture.md) or from the recording rules."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.system.docker_helpers import COMPOSE_DIR, ROOT, require_tool

pytestmark = pytest.mark.timeout(60)
RULES = COMPOSE_DIR / "prometheus" / "rules.yml"
DASHBOARD = COMPOSE_DIR / "grafana" / "dashboards" / "hgc.json"


def dashboard_exprs() -> list[tuple[str, str]]:
    """(panel title, expr) for every target of every panel."""
    board = json.loads(DASHBOARD.read_text())
    return [(p["title"], t["expr"]) for p in board["panels"] for t in p["targets"]]


def contract_metrics() -> set[str]:
    """Metric names in the architecture's "Metrics" table, expanded over <role>."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    table = text[text.index("## Metrics") :]
    names: set[str] = set()
    for name in re.findall(r"`(hgc_[a-z_<>]+)`", table):
        roles = ("master", "edge", "worker") if "<role>" in name else ("",)
        names |= {name.replace("<role>", r) for r in roles}
    return names


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_tool("promtool"), *args], capture_output=True, text=True, timeout=30
    )


def test_promtool_accepts_config_and_rules(tmp_path: Path) -> None:
    config = yaml.safe_load((COMPOSE_DIR / "prometheus" / "prometheus.yml").read_text())
    assert config["rule_files"] == ["/etc/prometheus/rules.yml"]
    config["rule_files"] = [str(RULES)]  # where the container mounts it -> this checkout
    local = tmp_path / "prometheus.yml"
    local.write_text(yaml.safe_dump(config))
    checked = promtool("check", "config", str(local))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    rules = promtool("check", "rules", str(RULES))
    assert rules.returncode == 0, rules.stdout + rules.stderr
    # Negative control: promtool does reject a broken rule.
    bad = tmp_path / "bad.yml"
    bad.write_text("groups:\n- name: x\n  rules:\n  - record: a:b\n    expr: rate(foo[1m]\n")
    assert promtool("check", "rules", str(bad)).returncode != 0


def test_every_node_of_the_default_stack_is_scraped() -> None:
    config = yaml.safe_load((COMPOSE_DIR / "prometheus" / "prometheus.yml").read_text())
    nodes = {
        g["labels"]["node"]: t
        for job in config["scrape_configs"]
        for g in job["static_configs"]
        for t in g["targets"]
    }
    stack = yaml.safe_load((COMPOSE_DIR / "default.yaml").read_text())
    services = {s for s, v in stack["services"].items() if "hgc.node" in v.get("labels", {})}
    assert set(nodes) == services and len(services) == 13  # master + 3 edges + 9 workers
    assert all(t == f"{n}:9100" for n, t in nodes.items())


def test_dashboard_uses_only_contract_metrics_and_rules() -> None:
    rules = yaml.safe_load(RULES.read_text())
    recorded = {r["record"] for g in rules["groups"] for r in g["rules"]}
    known = contract_metrics() | recorded
    assert "hgc_master_iteration_duration_seconds" in known  # the parser found the table
    emulation = r"hgc_(master|edge|worker)_emulation_active"
    for title, expr in dashboard_exprs():
        # Regex name matchers are checked by the running-stack test (they must return data).
        plain = re.sub(r'__name__=~"[^"]*"', "", expr)
        for name in re.findall(r"\b(hgc[a-z0-9_:]*[a-z0-9_])", plain):
            base = re.sub(r"_(bucket|sum|count|info)$", "", name)
            assert name in known or base in known, f"panel {title!r}: unknown metric {name}"
        assert "$" not in expr, f"panel {title!r}: Grafana variables cannot be tested"
    assert any(emulation in e for _, e in dashboard_exprs())
    # Negative control: an invented name is caught.
    assert "hgc_master_bogus_seconds" not in known


def test_checked_in_dashboard_matches_its_generator(tmp_path: Path) -> None:
    out = tmp_path / "hgc.json"
    subprocess.run(
        ["python3", str(ROOT / "scripts" / "grafana_dashboard.py"), str(out)],
        check=True,
        capture_output=True,
        timeout=30,
    )
    assert json.loads(out.read_text()) == json.loads(DASHBOARD.read_text())


def test_recording_rules_compute_speedup_and_straggler_rates(tmp_path: Path) -> None:
    """``promtool test rules`` on synthetic series: uncoded at 2 s per iteration, then hgc
    at 0.5 s -> speed-up 4; straggler ratios per node (compose/prometheus/rules_test.yml)."""
    tests = COMPOSE_DIR / "prometheus" / "rules_test.yml"
    ok = promtool("test", "rules", str(tests))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    # Negative control: a wrong expectation (speed-up 3) fails.
    wrong = tmp_path / "rules_test.yml"
    text = tests.read_text()
    marker = "'hgc:speedup_vs_uncoded:ratio{scheme=\"hgc\"}'\n            value: 4"
    assert marker in text
    wrong.write_text(text.replace(marker, marker[:-1] + "3"))
    (tmp_path / "rules.yml").write_text(RULES.read_text())
    assert promtool("test", "rules", str(wrong)).returncode != 0
