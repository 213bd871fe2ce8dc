"""The compose generator: a scenario -> one compose stack (``docker compose`` and
``docker stack deploy``), the master's run configuration, and Prometheus' scrape targets.

Pure functions returning plain dicts (the command module writes them). The plan, the node
mapping and the master's configuration (``code_spec``, ``emulation_spec``) come from
``hgc.testbed.config``, the very functions ``hgc run`` uses, so a scheme runs the same
code on the same nodes in both. One service per node the plan uses (``master``,
``edge-<i>``, ``worker-<i>-<j>`` by scenario name), each with

- a CPU limit from its device profile (``deploy.resources.limits.cpus``: honoured by compose
  and by swarm alike);
- its link profile in ``HGC_SHAPE_*`` variables, applied by ``tc`` inside the container at
  start-up (``services.common.entrypoint``; needs ``cap_add: [NET_ADMIN]``): a worker shapes
  everything it sends (it only talks to its edge), an edge what it sends to the master;
- swarm placement by node label: ``hgc.master==true`` for the master, ``hgc.edge-<i>==true``
  for edge i and its workers (label a Pi with several of them to co-locate nodes).

Plus a Prometheus service (scrapes every node every 2 s; recording rules) and Grafana with
the provisioned datasource and dashboards.

One image per stack: only the master's service has a ``build:`` section (``image_build``);
every node service references the same ``image:``, which compose builds once. A stack for a
machine without a registry (``StackOptions.offline``) uses the locally built Prometheus image
(``scripts/prometheus-image.sh``) and has no Grafana (its image cannot be had there).
The master writes its record into the host folder ``runs_dir`` (bind mount at ``/out``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from common.perf import Plan
from common.perf.system import Link
from common.scenario import Scenario
from hgc.testbed import config as nodeconfig

# Ports inside the stack's network (every container has its own address, so they can repeat).
ZMQ_PORT = 5555
METRICS_PORT = 9100
PROMETHEUS_PORT = 9090
GRAFANA_PORT = 3000
# --network -> how much of each link the nodes emulate in-process (``nodeconfig.LINK_MODES``):
# with kernel shaping tc does the rate, and the entry point switches the in-process link off
# when it finds netem (HGC_INPROCESS_LINK=0), so the spec still carries latency/jitter/loss.
LINK_MODE_OF_NETWORK = {"kernel": "no-rate", "in-process": "full", "off": "none"}
NETWORK_MODES = tuple(LINK_MODE_OF_NETWORK)
DEFAULT_IMAGE = "hgc-edge:latest"
PROMETHEUS_IMAGE = "prom/prometheus:v2.53.2"
LOCAL_PROMETHEUS_IMAGE = "hgc-prometheus:local"  # scripts/prometheus-image.sh (no registry)
GRAFANA_IMAGE = "grafana/grafana-oss:11.2.0"
OUT_PATH = "/out"  # the master's bind-mounted run folder
# A node keeps /metrics up after training until scraped once more, at most this long: three
# scrape intervals of the stack's Prometheus (2 s) and a margin.
DEFAULT_METRICS_LINGER_S = 10.0
MASTER_CONFIG_PATH = "/etc/hgc/master.json"
# Monitoring files a stack needs beside its compose file (paths relative to it; the
# originals live in the project's compose/ folder).
RULES_FILE = "prometheus/rules.yml"
GRAFANA_FILES = {
    "grafana-datasource": "grafana/provisioning/datasources/prometheus.yml",
    "grafana-dashboards": "grafana/provisioning/dashboards/hgc.yml",
    "grafana-dashboard-hgc": "grafana/dashboards/hgc.json",
}
KEYS_PATH = "/etc/hgc/keys"  # HGC_KEYS in the container (the entry point copies it privately)


class GenerateError(ValueError):
    """The scenario or an option cannot be turned into a stack; the message says why."""


@dataclass(frozen=True)
class StackOptions:
    """``scheme``: what the master runs (any scheme ``hgc run`` runs; an optimised one,
    ``hgc-jncss``/``hgc-hetero``, gets services only for the nodes it selects);
    ``network``: kernel = tc in the container (rate by tbf/htb, delay/jitter/loss by netem
    where the kernel has it, else in-process), in-process = all at the transport, off = none;
    ``master_config_file``, ``prometheus_config_file``: paths relative to the compose file;
    ``build_context``: the project's root (holds the Dockerfile), relative to the compose file
    or absolute; None: no ``build:``, the stack runs a prebuilt ``image``;
    ``offline``: no registry (local Prometheus image, no Grafana);
    ``runs_dir``: host folder of the master's record (relative to the compose file or absolute;
    ``HGC_RUNS_DIR`` overrides it at ``up`` time);
    ``metrics_linger_s``: each node's ``--metrics-linger-s``."""

    scheme: str = "hgc"
    network: str = "kernel"
    image: str = DEFAULT_IMAGE
    master_config_file: str = "master.json"
    prometheus_config_file: str = "prometheus/prometheus.yml"
    build_context: str | None = ".."
    iterations: int | None = None
    offline: bool = False
    runs_dir: str = "../runs/default"
    metrics_linger_s: float = DEFAULT_METRICS_LINGER_S
    # CurveZMQ: keys_dir (relative to the compose file) holds ``hgc keys`` output for the
    # plan's nodes (``key_nodes``); each service gets only its own secret (a compose/swarm
    # secret) and the public keys it needs (configs). False: plain TCP (a WARNING at start).
    curve: bool = True
    keys_dir: str = "keys"
    # Nodes on the arm64 image (``--arm64``; also the scenario's ``platforms`` section).
    arm64: tuple[str, ...] = ()


def check_options(opts: StackOptions) -> None:
    """Refuse bad options with a message naming the flag."""
    if opts.network not in NETWORK_MODES:
        raise GenerateError(f"--network {opts.network!r}: must be one of {NETWORK_MODES}")
    if opts.iterations is not None and opts.iterations < 1:
        raise GenerateError(f"--iterations {opts.iterations}: must be >= 1")
    if not 0 <= opts.metrics_linger_s < math.inf:
        raise GenerateError(f"--metrics-linger-s {opts.metrics_linger_s}: must be finite and >= 0")


def plan_stack(scenario: Scenario, opts: StackOptions) -> Plan:
    """The plan the stack runs: the launcher's own ``scenario_plan`` (same scheme, same plan)."""
    check_options(opts)
    try:
        return nodeconfig.scenario_plan(scenario, opts.scheme)
    except ValueError as exc:
        raise GenerateError(f"--scheme {opts.scheme!r} on this scenario: {exc}") from exc


def stack_layout(scenario: Scenario, plan: Plan) -> Plan:
    """The nodes the stack runs, as a plan over them: the plan itself, or for ``hgc-adaptive``
    every node of the topology at its own position (the plan in force picks among them at
    run time; the master's ``emulation_spec`` is keyed the same way, as ``hgc run`` does)."""
    if nodeconfig.is_adaptive(plan):
        return nodeconfig.scenario_plan(scenario, "uncoded")
    return plan


def stack_nodes(plan: Plan, scenario: Scenario | None = None) -> nodeconfig.NodeMap:
    """Cluster node (position in the plan) -> scenario node name, as the launcher maps them
    (``nodeconfig.run_map``: every node for ``hgc-adaptive``, which needs ``scenario``)."""
    if scenario is not None:
        return nodeconfig.run_map(scenario, plan)
    if nodeconfig.is_adaptive(plan):
        raise GenerateError("hgc-adaptive: stack_nodes needs the scenario (every node runs)")
    return nodeconfig.NodeMap.of(plan)


def master_config(
    scenario: Scenario, opts: StackOptions, plan: Plan | None = None
) -> dict[str, Any]:
    """The master's ``--config`` JSON: ``hgc.testbed.config.master_config``, the launcher's
    builder (``code_spec`` complete, ``emulation_spec`` keyed by cluster node)."""
    plan = plan or plan_stack(scenario, opts)
    iterations = opts.iterations or scenario.training.iterations
    return nodeconfig.master_config(scenario, plan, iterations, LINK_MODE_OF_NETWORK[opts.network])


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
        "hostname": node,
        "environment": {
            "HGC_METRICS_HOST": "0.0.0.0",
            "HGC_METRICS_PORT": str(METRICS_PORT),
            "HGC_METRICS_LINGER_S": f"{opts.metrics_linger_s:g}",
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


def node_services(
    scenario: Scenario, opts: StackOptions, plan: Plan | None = None
) -> dict[str, dict[str, Any]]:
    """One service per node the plan uses, in plan order, named by scenario node.

    A service carries its scenario name (hostname, ``hgc.node`` label, placement label,
    device and link profile) and its position in the plan (``HGC_EDGE``/``HGC_WORKER``,
    which the code and the master's ``emulation_spec`` are indexed by). For a fixed scheme
    the two coincide."""
    plan = stack_layout(scenario, plan or plan_stack(scenario, opts))
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
    master.update(image_build(opts))
    master["volumes"], record_env = run_output(opts)
    master["environment"].update(record_env)
    services["master"] = master
    names = stack_nodes(plan)
    for p, (i, workers) in enumerate(zip(plan.edges, plan.workers, strict=True)):
        edge = scenario.edge_profile(i)
        services[f"edge-{i}"] = _node_service(
            opts,
            f"edge-{i}",
            {
                "HGC_ROLE": "edge",
                "HGC_EDGE": str(p),
                "HGC_BIND": f"tcp://0.0.0.0:{ZMQ_PORT}",
                "HGC_MASTER_ADDR": f"tcp://master:{ZMQ_PORT}",
                **_shape_env(edge.uplink, "master", opts.network),
            },
            edge.cpu_fraction,
            f"node.labels.hgc.edge-{i}==true",
            {"hgc.role": "edge", "hgc.edge": str(i)},
            ["master"],
        )
        for q, j in enumerate(workers):
            w = scenario.worker_profile(i, j)
            services[f"worker-{i}-{j}"] = _node_service(
                opts,
                f"worker-{i}-{j}",
                {
                    "HGC_ROLE": "worker",
                    "HGC_EDGE": str(p),
                    "HGC_WORKER": str(q),
                    "HGC_EDGE_ADDR": f"tcp://edge-{i}:{ZMQ_PORT}",
                    **_shape_env(w.link, None, opts.network),
                },
                w.cpu_fraction,
                f"node.labels.hgc.edge-{i}==true",
                {"hgc.role": "worker", "hgc.edge": str(i), "hgc.worker": str(j)},
                [f"edge-{i}"],
            )
    if opts.curve:
        parents = key_nodes(plan)
        for cluster_node, scenario_node in names.to_topology.items():
            children = [c for c, p in parents.items() if p == cluster_node]
            _mount_keys(services[scenario_node], cluster_node, children)
    return services


def image_build(opts: StackOptions) -> dict[str, Any]:
    """The ``build:`` section, on the master's service only: compose builds the image once
    and every node service runs it by its ``image:`` name. Empty for a prebuilt image."""
    if opts.build_context is None:
        return {}
    return {
        "build": {
            "context": opts.build_context,
            "args": {"BASE_IMAGE": "${HGC_BASE_IMAGE:-python:3.11-slim-bookworm}"},
        }
    }


def run_output(opts: StackOptions) -> tuple[list[str], dict[str, str]]:
    """The master's record goes to the host: ``runs_dir`` (``HGC_RUNS_DIR`` at ``up`` time)
    bind-mounted at ``/out``, one folder per scheme as ``hgc run`` writes them (the entry
    point creates it, owned by the unprivileged user)."""
    volumes = [f"${{HGC_RUNS_DIR:-{opts.runs_dir}}}:{OUT_PATH}"]
    # The checkpoint beside the record, on the host: a master container started again after
    # `docker kill` or a crash (`docker start`, `docker compose up -d master`) resumes from it
    # (services.master.checkpoint); a finished run removes it.
    return volumes, {
        "HGC_RECORD": f"{OUT_PATH}/{opts.scheme}/record.jsonl",
        "HGC_CHECKPOINT": f"{OUT_PATH}/{opts.scheme}/checkpoint.npz",
    }


def _key_name(cluster_node: str, what: str) -> str:
    return f"hgc-key-{cluster_node}-{what}"


def _mount_keys(service: dict[str, Any], cluster_node: str, children: list[str]) -> None:
    """Only this node's secret (a secret), its parent's and its children's public keys
    (configs), at ``KEYS_PATH`` in the layout ``common.runtime.security.load_auth`` reads."""
    service["environment"]["HGC_KEYS"] = KEYS_PATH
    service["secrets"] = [
        {"source": _key_name(cluster_node, "secret"), "target": f"{KEYS_PATH}/secret.key"}
    ]
    configs = service.setdefault("configs", [])
    if cluster_node != "master":
        configs.append(
            {"source": _key_name(cluster_node, "parent"), "target": f"{KEYS_PATH}/parent.key"}
        )
    for child in children:
        configs.append(
            {"source": _key_name(child, "public"), "target": f"{KEYS_PATH}/allow/{child}.key"}
        )


def key_nodes(plan: Plan, scenario: Scenario | None = None) -> dict[str, str | None]:
    """The stack's nodes (cluster names: positions in the plan) -> parent, for ``hgc keys``
    (``scenario`` given: the stack's layout, every node for ``hgc-adaptive``)."""
    from common.runtime.security import tree_parents

    if scenario is not None:
        plan = stack_layout(scenario, plan)
    elif nodeconfig.is_adaptive(plan):
        raise GenerateError("hgc-adaptive: key_nodes needs the scenario (every node runs)")
    return tree_parents([len(w) for w in plan.workers])


def key_files(opts: StackOptions, plan: Plan) -> dict[str, dict[str, dict[str, str]]]:
    """Top-level ``secrets`` and the key ``configs`` of the stack (files under keys_dir)."""
    secrets: dict[str, dict[str, str]] = {}
    configs: dict[str, dict[str, str]] = {}
    base = f"./{opts.keys_dir}"
    for node, parent in key_nodes(plan).items():
        secrets[_key_name(node, "secret")] = {"file": f"{base}/nodes/{node}/secret.key"}
        configs[_key_name(node, "public")] = {"file": f"{base}/public/{node}.key"}
        if parent is not None:
            configs[_key_name(node, "parent")] = {"file": f"{base}/public/{parent}.key"}
    return {"secrets": secrets, "configs": configs}


def monitoring_services(opts: StackOptions) -> dict[str, dict[str, Any]]:
    """Prometheus (the official image; offline the local one, ``scripts/prometheus-image.sh``;
    ``HGC_PROMETHEUS_IMAGE`` overrides either) and Grafana (online only)."""
    on_master = {"placement": {"constraints": ["node.labels.hgc.master==true"]}}
    services = {
        "prometheus": {
            "image": f"${{HGC_PROMETHEUS_IMAGE:-{prometheus_image(opts)}}}",
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
            "ports": [f"${{HGC_PROMETHEUS_PORT:-{PROMETHEUS_PORT}}}:{PROMETHEUS_PORT}"],
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
            "ports": [f"${{HGC_GRAFANA_PORT:-{GRAFANA_PORT}}}:{GRAFANA_PORT}"],
            "depends_on": ["prometheus"],
            "networks": ["hgc"],
            "labels": {"hgc.role": "monitoring"},
            "deploy": on_master,
        },
    }
    if opts.offline:
        del services["grafana"]
    return services


def prometheus_image(opts: StackOptions) -> str:
    return LOCAL_PROMETHEUS_IMAGE if opts.offline else PROMETHEUS_IMAGE


def monitoring_configs(opts: StackOptions) -> dict[str, dict[str, str]]:
    """The monitoring files, relative to the compose file (``hgc compose`` writes them
    beside it): scrape config and rules; Grafana's provisioning when it is in the stack."""
    configs = {
        "prometheus-config": {"file": f"./{opts.prometheus_config_file}"},
        "prometheus-rules": {"file": f"./{RULES_FILE}"},
    }
    if not opts.offline:
        configs.update({name: {"file": f"./{path}"} for name, path in GRAFANA_FILES.items()})
    return configs


def build_stack(scenario: Scenario, opts: StackOptions, plan: Plan | None = None) -> dict[str, Any]:
    """The whole compose document (a dict ready for ``yaml.safe_dump``)."""
    plan = plan or plan_stack(scenario, opts)
    layout = stack_layout(scenario, plan)
    keys = key_files(opts, layout) if opts.curve else {"secrets": {}, "configs": {}}
    nodes = node_services(scenario, opts, plan)
    apply_platforms(
        {"services": nodes}, node_platforms(scenario, opts.arm64, list(nodes)), opts.image
    )
    # No top-level ``name``: ``docker stack deploy`` rejects it (the project/stack name is
    # given on the command line: ``docker compose -p NAME`` / ``docker stack deploy ... NAME``).
    return {
        "services": {**nodes, **monitoring_services(opts)},
        "networks": {"hgc": {}},
        "configs": {
            "master-config": {"file": f"./{opts.master_config_file}"},
            **monitoring_configs(opts),
            **keys["configs"],
        },
        **({"secrets": keys["secrets"]} if keys["secrets"] else {}),
    }


def prometheus_config(
    scenario: Scenario, scrape_interval_s: float = 2.0, nodes: Sequence[str] | None = None
) -> dict[str, Any]:
    """Scrape every node of the stack by service name; ``node`` and ``role`` target labels
    (the metrics carry their own ``edge``/``worker`` labels, so those names are not reused).

    ``nodes``: the stack's scenario node names
    (``stack_nodes(plan, scenario).to_topology.values()``); default every node of the scenario."""
    names = list(scenario.node_names() if nodes is None else nodes)
    unknown = sorted(set(names) - set(scenario.node_names()))
    if unknown:
        raise GenerateError(f"nodes {unknown}: not nodes of scenario {scenario.name!r}")
    jobs = []
    for role in ("master", "edge", "worker"):
        nodes_of_role = [n for n in scenario.node_names() if n in names and n.split("-")[0] == role]
        jobs.append(
            {
                "job_name": f"hgc-{role}",
                # the master's hgc_master_node_selected{node} names scenario nodes: its own
                # label wins over the target's node="master" (no exported_node rename)
                **({"honor_labels": True} if role == "master" else {}),
                "static_configs": [
                    {"targets": [f"{n}:{METRICS_PORT}"], "labels": {"node": n, "role": role}}
                    for n in nodes_of_role
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


# --- per-node platform: a mixed-architecture stack (docs/raspberry-pi.md) ---------------------
PLATFORMS = ("linux/amd64", "linux/arm64")
ARCH_OF_PLATFORM = {"linux/amd64": "amd64", "linux/arm64": "arm64"}


def arch_image(image: str, platform: str) -> str:
    """The per-architecture tag ``make image PLATFORM=...`` writes: ``hgc-edge:0.1.0`` ->
    ``hgc-edge:0.1.0-arm64`` (what a multi-arch manifest is made of)."""
    arch = ARCH_OF_PLATFORM[platform]
    name, _, tag = image.rpartition(":") if ":" in image.split("/")[-1] else (image, "", "latest")
    return f"{name}:{tag or 'latest'}-{arch}"


def node_platforms(
    scenario: Scenario, arm64: Sequence[str] = (), services: Sequence[str] | None = None
) -> dict[str, str]:
    """Node -> platform for the nodes that are not on the default image: the scenario's
    ``platforms`` section (``{worker-0-1: linux/arm64}``) and ``--arm64 NODE,...`` (wins).
    ``services``: the stack's node services (an optimised scheme may drop some nodes)."""
    known = set(scenario.node_names())
    raw = scenario.raw.get("platforms") or {}
    if not isinstance(raw, dict):
        raise GenerateError("platforms: must be a mapping node -> linux/amd64|linux/arm64")
    chosen: dict[str, str] = {}
    for node, value in raw.items():
        if node not in known:
            raise GenerateError(f"platforms.{node}: not a node of scenario {scenario.name!r}")
        if value not in PLATFORMS:
            raise GenerateError(f"platforms.{node}: {value!r}; allowed: {', '.join(PLATFORMS)}")
        chosen[str(node)] = str(value)
    for node in arm64:
        if node not in known:
            raise GenerateError(
                f"--arm64 {node}: not a node of scenario {scenario.name!r} "
                f"(nodes: master, edge-<i>, worker-<i>-<j>)"
            )
        chosen[node] = "linux/arm64"
    if services is not None:
        dropped = sorted(set(chosen) - set(services))
        if dropped:
            raise GenerateError(f"--arm64/platforms {dropped}: not in the stack (plan drops them)")
    return {n: p for n, p in chosen.items() if p != "linux/amd64"}


def apply_platforms(stack: dict[str, Any], platforms: dict[str, str], image: str) -> None:
    """Put the chosen nodes on their architecture's image (``platform:``, the arch tag, the
    arm64 base for ``--build``) and, on a swarm, on engines labelled ``hgc.arch==arm64``."""
    # One image per architecture: the master's service builds the amd64 one (image_build);
    # the first node of each other architecture builds that one, the rest of them run it.
    build = stack["services"].get("master", {}).get("build")
    built: set[str] = set()
    for node, platform in sorted(platforms.items()):
        svc = stack["services"][node]
        arch = ARCH_OF_PLATFORM[platform]
        svc["platform"] = platform
        svc["image"] = f"${{HGC_IMAGE_{arch.upper()}:-{arch_image(image, platform)}}}"
        if build is not None and arch not in built:
            built.add(arch)
            svc["build"] = {
                **build,
                "args": {
                    "BASE_IMAGE": f"${{HGC_BASE_IMAGE_{arch.upper()}:-python:3.11-slim-bookworm}}"
                },
            }
        svc["labels"]["hgc.arch"] = arch
        svc["deploy"]["placement"]["constraints"].append(f"node.labels.hgc.arch=={arch}")
