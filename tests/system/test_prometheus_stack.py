"""A real Prometheus (Debian's binary in a local image) inside a running stack: it scrapes
every node, evaluates the recording rules, and every PromQL expression of every dashboard
panel returns data while the cluster trains."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from typing import Any

import pytest

from tests.conftest import poll_for
from tests.system.docker_helpers import (  # noqa: F401 (fixtures)
    ROOT,
    docker_client,
    hgc_image,
    prometheus_image,
    running_stack,
    sweep_leftovers,
)
from tests.system.test_prometheus_config import dashboard_exprs

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(300)]
SCENARIO = ROOT / "scenarios" / "homogeneous.yaml"


def api(base: str, path: str, **params: str) -> Any:
    url = f"{base}/api/v1/{path}"
    if params:
        url += "?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=10) as resp:
        body = json.load(resp)
    assert body["status"] == "success", body
    return body["data"]


def test_prometheus_scrapes_the_stack_and_every_panel_has_data(
    docker_client: Any,  # noqa: F811
    hgc_image: str,  # noqa: F811
    prometheus_image: str,  # noqa: F811
) -> None:
    nodes = ["master"] + [f"edge-{i}" for i in range(3)]
    nodes += [f"worker-{i}-{j}" for i in range(3) for j in range(3)]
    with running_stack(
        SCENARIO,
        hgc_image,
        services=[*nodes, "prometheus"],
        iterations=400,  # long enough to still be training while the panels are queried
        prometheus_image=prometheus_image,
    ) as stack:
        prom = stack.container(docker_client, "prometheus")
        prom.reload()
        ip = next(iter(prom.attrs["NetworkSettings"]["Networks"].values()))["IPAddress"]
        base = f"http://{ip}:9090"  # the container's own address: no host port is published

        def all_up() -> bool:
            try:
                targets = api(base, "targets")["activeTargets"]
            except OSError:
                return False
            up = {t["labels"]["node"] for t in targets if t["health"] == "up"}
            return up == set(nodes)

        poll_for(all_up, timeout=90, interval=1.0, what="every node scraped and up")
        poll_for(
            lambda: len([r for r in stack.records() if r["ok"]]) >= 20,
            timeout=120,
            interval=0.5,
            what="20 iterations",
        )

        def missing() -> list[str]:
            empty = []
            for title, expr in dashboard_exprs():
                if "(hgc-adaptive)" in title:  # static schemes export none of it: the
                    continue  # adaptive compose test (test_compose_adaptive.py) checks them
                if not api(base, "query", query=expr)["result"]:
                    empty.append(f"{title}: {expr}")
            return empty

        # Recording rules run every 5 s: give them a few rounds, then every panel must answer.
        try:
            poll_for(lambda: not missing(), timeout=60, interval=2.0, what="every panel")
        except TimeoutError:
            pytest.fail("panels without data:\n" + "\n".join(missing()))
        # Negative control: a metric nobody exports returns nothing.
        assert not api(base, "query", query="hgc_master_bogus_seconds")["result"]
        # The contract's labels made it through: per-edge arrival at the master for 3 edges.
        arrivals = api(
            base, "query", query="count by (edge) (hgc_master_edge_arrival_seconds_count)"
        )["result"]
        assert {r["metric"]["edge"] for r in arrivals} == {"0", "1", "2"}
        # What the containers' entry points did is exported by the services: tbf on every
        # worker (and the rpi4 CPU quota), htb towards the master on every edge.
        gauges = '{__name__=~"hgc_(edge|worker)_emulation_active"}'
        active = api(base, "query", query=f"max by (node, mechanism) ({gauges}) == 1")["result"]
        pairs = {(r["metric"]["node"], r["metric"]["mechanism"]) for r in active}
        for i in range(3):
            assert (f"edge-{i}", "htb") in pairs, pairs
            for j in range(3):
                assert {(f"worker-{i}-{j}", "tbf"), (f"worker-{i}-{j}", "cpu_quota")} <= pairs
        assert ("edge-0", "tbf") not in pairs  # negative control: no mechanism invented
        rules = api(base, "rules")["groups"]
        assert all(r["health"] == "ok" for g in rules for r in g["rules"]), rules
