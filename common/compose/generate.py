"""The compose generator: a scenario -> one compose stack (``docker compose`` and
``docker stack deploy``), the master's run configuration, and Prometheus' scrape targets.

Pure functions returning plain dicts (the command module writes them): one service per node
(``master``, ``edge-<i>``, ``worker-<i>-<j>``), each with

- a CPU limit from its device profile (``deploy.resources.limits.cpus``: honoured by compose
  and by swarm alike);
- its link profile in ``HGC_SHAPE_*`` variables, applied by ``tc`` inside the container at
  start-up (``common.compose.entrypoint``; needs ``cap_add: [NET_ADMIN]``): a worker shapes
  everything it sends (it only talks to its edge), an edge what it sends to the master;
- swarm placement by node label: ``hgc.master==true`` for the master, ``hgc.edge-<i>==true``
  for edge i and its workers (label a Pi with several of them to co-locate nodes).

Plus a Prometheus service (scrapes every node every 2 s; recording rules) and Grafana with
the provisioned datasource and dashboards.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from common.coding import make_code
from common.perf.system import Link
from common.scenario import Scenario

# Ports inside the stack's network (every container has its own address, so they can repeat).
ZMQ_PORT = 5555
METRICS_PORT = 9100
PROMETHEUS_PORT = 9090
GRAFANA_PORT = 3000
NETWORK_MODES = ("kernel", "in-process", "off")
FIXED_SCHEMES = ("uncoded", "hgc", "fr", "worker-gc", "edge-gc", "flat-frc", "flat-crc", "ignore")
DEFAULT_IMAGE = "hgc-edge:latest"
PROMETHEUS_IMAGE = "prom/prometheus:v2.53.2"
GRAFANA_IMAGE = "grafana/grafana-oss:11.2.0"
MASTER_CONFIG_PATH = "/etc/hgc/master.json"


class GenerateError(ValueError):
    """The scenario or an option cannot be turned into a stack; the message says why."""


@dataclass(frozen=True)
class StackOptions:
    """``scheme``: the code the master runs; ``network``: kernel = tc in the container
    (rate by tbf/htb, delay/jitter/loss by netem where the kernel has it, else in-process),
    in-process = all at the transport, off = none; ``master_config_file``,
    ``prometheus_config_file``: paths relative to the compose file."""

    scheme: str = "hgc"
    network: str = "kernel"
    image: str = DEFAULT_IMAGE
    master_config_file: str = "master.json"
    prometheus_config_file: str = "prometheus/prometheus.yml"
    build_context: str = ".."
    iterations: int | None = None


def code_arguments(scenario: Scenario, scheme: str) -> dict[str, Any]:
    """The master config's ``code`` object for a fixed scheme, checked by building it."""
    if scheme not in FIXED_SCHEMES:
        raise GenerateError(
            f"--scheme {scheme!r}: the stack runs one fixed scheme, "
            f"one of {', '.join(FIXED_SCHEMES)}"
        )
    c = scenario.code
    code: dict[str, Any] = {"scheme": scheme, "workers_per_edge": list(scenario.workers_per_edge)}
    if scheme in ("flat-frc", "flat-crc"):
        code["s"] = c.s
    elif scheme != "uncoded":
        code["s_e"] = 0 if scheme == "worker-gc" else c.s_e
        code["s_w"] = 0 if scheme == "edge-gc" else c.s_w
    if c.K is not None:
        code["K"] = c.K
    try:
        make_code(
            scheme,
            list(scenario.workers_per_edge),
            code.get("s_e", 0),
            code.get("s_w", 0),
            s=code.get("s"),
            K=code.get("K"),
        )
    except ValueError as exc:
        raise GenerateError(f"scheme {scheme!r} on this topology: {exc}") from exc
    return code


def _link_json(link: Link, with_rate: bool) -> dict[str, float]:
    out = {"latency_s": link.latency_s, "jitter_s": link.jitter_s, "loss": link.loss}
    out["retransmit_s"] = link.retransmit_s
    if with_rate and math.isfinite(link.bandwidth_bytes_per_s):
        out["bandwidth_bytes_per_s"] = link.bandwidth_bytes_per_s
    return out


def emulation_spec(scenario: Scenario, scheme: str, network: str) -> dict[str, Any]:
    """Per-node emulation entries the master hands down (``services/worker/compute.py``)."""
    straggler = scenario.straggler
    if straggler.kind == "trace":
        raise GenerateError("stragglers.kind 'trace' cannot be shipped in a compose stack yet")
    code = make_code(scheme, list(scenario.workers_per_edge), **_tolerances(scenario, scheme))
    spec: dict[str, Any] = {}
    if network != "off":
        # An edge's uplink: the master delays what it sends to the edge, the edge what it
        # sends to the master (services/master/service.py, services/edge/service.py).
        for i in range(len(scenario.workers_per_edge)):
            uplink = scenario.edge_profile(i).uplink
            spec[f"edge-{i}"] = {"link": _link_json(uplink, with_rate=network == "in-process")}
    flat = 0
    for i, m in enumerate(scenario.workers_per_edge):
        for j in range(m):
            p = scenario.worker_profile(i, j)
            entry: dict[str, Any] = {
                "compute": scenario.emulation.compute,
                "shift_s": p.shift_s,
                "rate": p.rate,
                "straggler": {
                    "kind": straggler.kind,
                    "p_slow": straggler.p_slow,
                    "p_recover": straggler.p_recover,
                    "slowdown": straggler.slowdown,
                },
                "load": len(code.placement[i][j]) / code.K,
                "worker_index": flat,
                "seed": scenario.seed,
            }
            # With kernel shaping the rate is tc's job; the rest is in-process unless the
            # container finds netem (it then reports it in HGC_EMULATION_EXTERNAL).
            if network != "off":
                entry["link"] = _link_json(p.link, with_rate=network == "in-process")
            spec[f"worker-{i}-{j}"] = entry
            flat += 1
    return spec


def _tolerances(scenario: Scenario, scheme: str) -> dict[str, Any]:
    code = code_arguments(scenario, scheme)
    return {k: code[k] for k in ("s_e", "s_w", "s", "K") if k in code}


def master_config(scenario: Scenario, opts: StackOptions) -> dict[str, Any]:
    """The master's ``--config`` JSON (schema: ``services/master/config.py``)."""
    t = scenario.training
    training = {
        "iterations": opts.iterations or t.iterations,
        "learning_rate": t.learning_rate,
        "eval_every": t.eval_every,
        "target_loss": t.target_loss,
        "deadline_s": t.deadline_s,
        "on_failure": t.on_failure,
        "max_retries": t.max_retries,
    }
    return {
        "code": code_arguments(scenario, opts.scheme),
        "data_spec": dict(scenario.data_spec),
        "model_spec": dict(scenario.model_spec),
        "emulation_spec": emulation_spec(scenario, opts.scheme, opts.network),
        # Unset optional settings are left out: the master's defaults apply.
        "training": {k: v for k, v in training.items() if v is not None},
        "seed": scenario.seed,
    }


def _shape_env(link: Link, peer: str | None, network: str) -> dict[str, str]:
    env = {"HGC_SHAPING": "auto" if network == "kernel" else "off"}
    if network != "kernel":
        return env
    if math.isfinite(link.bandwidth_bytes_per_s):
        env["HGC_SHAPE_RATE_BPS"] = f"{link.bandwidth_bytes_per_s:g}"
    for name, value in (("DELAY_S", link.latency_s), ("JITTER_S", link.jitter_s)):
        if value > 0:
            env[f"HGC_SHAPE_{name}"] = f"{value:g}"
    if link.loss > 0:
        env["HGC_SHAPE_LOSS"] = f"{link.loss:g}"
    if peer:
        env["HGC_SHAPE_PEER"] = peer
    return env


def _node_service(
    opts: StackOptions,
    node: str,
    env: dict[str, str],
    cpus: float | None,
    placement: str,
    labels: dict[str, str],
    depends_on: list[str],
) -> dict[str, Any]:
    limits: dict[str, Any] = {}
    if cpus is not None and cpus < 1.0:
        limits["cpus"] = f"{cpus:.2f}"
    deploy: dict[str, Any] = {
        # Swarm: DNS answers with the task's own address (not a virtual IP), so the edge's
        # tc filter on the master's address matches the packets that really leave.
        "endpoint_mode": "dnsrr",
        "restart_policy": {"condition": "none"},
        "placement": {"constraints": [placement]},
    }
    if limits:
        deploy["resources"] = {"limits": limits}
        # Under a fraction of one CPU, a multi-threaded BLAS only buys throttling stalls.
        env = {
            **env,
            "HGC_CPU_LIMIT": limits["cpus"],
            "OPENBLAS_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1",
        }
    service: dict[str, Any] = {
        "image": f"${{HGC_IMAGE:-{opts.image}}}",
        "build": {
            "context": opts.build_context,
            "args": {"BASE_IMAGE": "${HGC_BASE_IMAGE:-python:3.11-slim-bookworm}"},
        },
        "hostname": node,
        "environment": {
            "HGC_METRICS_HOST": "0.0.0.0",
            "HGC_METRICS_PORT": str(METRICS_PORT),
            **env,
        },
        "cap_add": ["NET_ADMIN"],
        "restart": "no",
        "stop_grace_period": "5s",
        "labels": {"hgc.node": node, **labels},
        "networks": ["hgc"],
        "deploy": deploy,
    }
    if depends_on:
        service["depends_on"] = depends_on
    return service


def node_services(scenario: Scenario, opts: StackOptions) -> dict[str, dict[str, Any]]:
    """One service per node, in ``scenario.node_names()`` order."""
    services: dict[str, dict[str, Any]] = {}
    master = _node_service(
        opts,
        "master",
        {
            "HGC_ROLE": "master",
            "HGC_BIND": f"tcp://0.0.0.0:{ZMQ_PORT}",
            "HGC_CONFIG": MASTER_CONFIG_PATH,
            "HGC_SHAPING": "off",
        },
        None,
        "node.labels.hgc.master==true",
        {"hgc.role": "master"},
        [],
    )
    master["configs"] = [{"source": "master-config", "target": MASTER_CONFIG_PATH}]
    services["master"] = master
    for i, m in enumerate(scenario.workers_per_edge):
        edge = scenario.edge_profile(i)
        services[f"edge-{i}"] = _node_service(
            opts,
            f"edge-{i}",
            {
                "HGC_ROLE": "edge",
                "HGC_EDGE": str(i),
                "HGC_BIND": f"tcp://0.0.0.0:{ZMQ_PORT}",
                "HGC_MASTER_ADDR": f"tcp://master:{ZMQ_PORT}",
                **_shape_env(edge.uplink, "master", opts.network),
            },
            edge.cpu_fraction,
            f"node.labels.hgc.edge-{i}==true",
            {"hgc.role": "edge", "hgc.edge": str(i)},
            ["master"],
        )
        for j in range(m):
            w = scenario.worker_profile(i, j)
            services[f"worker-{i}-{j}"] = _node_service(
                opts,
                f"worker-{i}-{j}",
                {
                    "HGC_ROLE": "worker",
                    "HGC_EDGE": str(i),
                    "HGC_WORKER": str(j),
                    "HGC_EDGE_ADDR": f"tcp://edge-{i}:{ZMQ_PORT}",
                    **_shape_env(w.link, None, opts.network),
                },
                w.cpu_fraction,
                f"node.labels.hgc.edge-{i}==true",
                {"hgc.role": "worker", "hgc.edge": str(i), "hgc.worker": str(j)},
                [f"edge-{i}"],
            )
    return services


def monitoring_services(opts: StackOptions) -> dict[str, dict[str, Any]]:
    """Prometheus (the official image for users; ``HGC_PROMETHEUS_IMAGE`` where no registry
    is reachable, see ``scripts/prometheus-image.sh``) and Grafana."""
    on_master = {"placement": {"constraints": ["node.labels.hgc.master==true"]}}
    return {
        "prometheus": {
            "image": f"${{HGC_PROMETHEUS_IMAGE:-{PROMETHEUS_IMAGE}}}",
            "command": [
                "--config.file=/etc/prometheus/prometheus.yml",
                "--storage.tsdb.path=/prometheus",
                "--storage.tsdb.retention.time=7d",
                f"--web.listen-address=0.0.0.0:{PROMETHEUS_PORT}",
            ],
            "configs": [
                {"source": "prometheus-config", "target": "/etc/prometheus/prometheus.yml"},
                {"source": "prometheus-rules", "target": "/etc/prometheus/rules.yml"},
            ],
            "ports": [f"{PROMETHEUS_PORT}:{PROMETHEUS_PORT}"],
            "networks": ["hgc"],
            "labels": {"hgc.role": "monitoring"},
            "deploy": on_master,
        },
        "grafana": {
            "image": f"${{HGC_GRAFANA_IMAGE:-{GRAFANA_IMAGE}}}",
            "environment": {
                "GF_AUTH_ANONYMOUS_ENABLED": "true",
                "GF_AUTH_ANONYMOUS_ORG_ROLE": "Viewer",
                "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH": "/var/lib/grafana/dashboards/hgc.json",
            },
            "configs": [
                {
                    "source": "grafana-datasource",
                    "target": "/etc/grafana/provisioning/datasources/prometheus.yml",
                },
                {
                    "source": "grafana-dashboards",
                    "target": "/etc/grafana/provisioning/dashboards/hgc.yml",
                },
                {
                    "source": "grafana-dashboard-hgc",
                    "target": "/var/lib/grafana/dashboards/hgc.json",
                },
            ],
            "ports": [f"{GRAFANA_PORT}:{GRAFANA_PORT}"],
            "depends_on": ["prometheus"],
            "networks": ["hgc"],
            "labels": {"hgc.role": "monitoring"},
            "deploy": on_master,
        },
    }


def build_stack(scenario: Scenario, opts: StackOptions) -> dict[str, Any]:
    """The whole compose document (a dict ready for ``yaml.safe_dump``)."""
    if opts.network not in NETWORK_MODES:
        raise GenerateError(f"--network {opts.network!r}: must be one of {NETWORK_MODES}")
    if opts.iterations is not None and opts.iterations < 1:
        raise GenerateError(f"--iterations {opts.iterations}: must be >= 1")
    # No top-level ``name``: ``docker stack deploy`` rejects it (the project/stack name is
    # given on the command line: ``docker compose -p NAME`` / ``docker stack deploy ... NAME``).
    return {
        "services": {**node_services(scenario, opts), **monitoring_services(opts)},
        "networks": {"hgc": {}},
        "configs": {
            "master-config": {"file": f"./{opts.master_config_file}"},
            "prometheus-config": {"file": f"./{opts.prometheus_config_file}"},
            "prometheus-rules": {"file": "./prometheus/rules.yml"},
            "grafana-datasource": {"file": "./grafana/provisioning/datasources/prometheus.yml"},
            "grafana-dashboards": {"file": "./grafana/provisioning/dashboards/hgc.yml"},
            "grafana-dashboard-hgc": {"file": "./grafana/dashboards/hgc.json"},
        },
    }


def prometheus_config(scenario: Scenario, scrape_interval_s: float = 2.0) -> dict[str, Any]:
    """Scrape every node of the stack by service name; ``node`` and ``role`` target labels
    (the metrics carry their own ``edge``/``worker`` labels, so those names are not reused)."""
    jobs = []
    for role in ("master", "edge", "worker"):
        nodes = [n for n in scenario.node_names() if n.split("-")[0] == role]
        jobs.append(
            {
                "job_name": f"hgc-{role}",
                "static_configs": [
                    {"targets": [f"{n}:{METRICS_PORT}"], "labels": {"node": n, "role": role}}
                    for n in nodes
                ],
            }
        )
    return {
        "global": {
            # Prometheus durations take integers only: milliseconds.
            "scrape_interval": f"{round(scrape_interval_s * 1000)}ms",
            "scrape_timeout": f"{round(min(scrape_interval_s, 10.0) * 900)}ms",
            "evaluation_interval": "5s",
        },
        "rule_files": ["/etc/prometheus/rules.yml"],
        "scrape_configs": jobs,
    }
