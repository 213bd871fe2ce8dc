"""Device and link profiles, and the topology section that assigns them to nodes.

A device profile gives a worker's compute model: ``shift_s`` (deterministic seconds to process
the WHOLE dataset), ``rate`` (straggling rate mu per unit load: mean extra time load / rate) and
``cpu_fraction`` (the CPU share the real testbed enforces). Built-ins are scaled from
``laptop`` by a relative speed; ``topology.compute_scale`` multiplies every shift (and divides
every rate), e.g. for a bigger dataset.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from common.perf.system import EdgeProfile, Link, WorkerProfile
from common.scenario.fields import (
    ScenarioError,
    as_mapping,
    check_keys,
    get_float,
    get_list,
    get_str,
    join,
    to_int,
)
from common.scenario.units import parse_bandwidth


@dataclass(frozen=True)
class DeviceProfile:
    shift_s: float  # seconds for the whole dataset
    rate: float  # mu per unit load
    cpu_fraction: float = 1.0


# The laptop numbers set the scale of a real run: the shipped digits scenarios take tens to a few
# hundred milliseconds per iteration. Pi-class devices keep rate * shift constant, so a slower
# device straggles proportionally (its tail scales with its speed).
LAPTOP = DeviceProfile(shift_s=0.1, rate=10.0, cpu_fraction=1.0)
RELATIVE_SPEED = {"laptop": 1.0, "rpi4": 1.0 / 3.0, "rpi3": 1.0 / 6.0}
BUILTIN_DEVICES: dict[str, DeviceProfile] = {
    "laptop": LAPTOP,
    "rpi4": DeviceProfile(shift_s=0.3, rate=10.0 / 3.0, cpu_fraction=0.5),
    "rpi3": DeviceProfile(shift_s=0.6, rate=10.0 / 6.0, cpu_fraction=0.25),
}

BUILTIN_LINKS: dict[str, Link] = {
    "ideal": Link(),
    "lan": Link(latency_s=0.0005, bandwidth_bytes_per_s=100e6 / 8),
    "wifi": Link(latency_s=0.002, jitter_s=0.001, bandwidth_bytes_per_s=20e6 / 8),
    "wan": Link(latency_s=0.02, jitter_s=0.002, bandwidth_bytes_per_s=10e6 / 8),
    "cellular": Link(
        latency_s=0.05, jitter_s=0.01, bandwidth_bytes_per_s=2e6 / 8, loss=0.01, retransmit_s=0.2
    ),
}

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")
_WORKER = re.compile(r"^worker-(\d+)-(\d+)$")
_EDGE = re.compile(r"^edge-(\d+)$")


def parse_device(value: Any, path: str) -> DeviceProfile:
    """``{shift_s, rate, cpu_fraction}`` or ``{speed, cpu_fraction}`` (speed relative to laptop)."""
    section = as_mapping(value, path)
    check_keys(section, {"shift_s", "rate", "speed", "cpu_fraction"}, path)
    cpu = get_float(section, "cpu_fraction", path, 1.0, lo=0.0, hi=1.0, lo_open=True)
    if "speed" in section:
        for key in ("shift_s", "rate"):
            if key in section:
                raise ScenarioError(join(path, key), "give either speed or shift_s and rate")
        speed = get_float(section, "speed", path, lo=0.0, lo_open=True)
        return DeviceProfile(LAPTOP.shift_s / speed, LAPTOP.rate * speed, cpu)
    shift = get_float(section, "shift_s", path, lo=0.0)
    rate = get_float(section, "rate", path, lo=0.0, lo_open=True, hi=math.inf)
    return DeviceProfile(shift, rate, cpu)


def parse_link(value: Any, path: str) -> Link:
    section = as_mapping(value, path)
    check_keys(section, {"latency_s", "jitter_s", "bandwidth", "loss", "retransmit_s"}, path)
    return Link(
        latency_s=get_float(section, "latency_s", path, 0.0, lo=0.0),
        jitter_s=get_float(section, "jitter_s", path, 0.0, lo=0.0),
        bandwidth_bytes_per_s=parse_bandwidth(section.get("bandwidth"), join(path, "bandwidth")),
        loss=get_float(section, "loss", path, 0.0, lo=0.0, hi=0.99),
        retransmit_s=get_float(section, "retransmit_s", path, 0.2, lo=0.0),
    )


def _named(section: Mapping[str, Any], key: str, path: str, builtins: dict, parse: Any) -> dict:
    out = dict(builtins)
    table = as_mapping(section.get(key, {}), join(path, key))
    for name, value in table.items():
        field = join(join(path, key), name)
        if not _NAME.match(name):
            raise ScenarioError(field, "names must start with a letter: letters, digits, _ . -")
        out[name] = parse(value, field)
    return out


def parse_workers_per_edge(section: Mapping[str, Any], path: str) -> tuple[int, ...]:
    field = join(path, "workers_per_edge")
    raw = get_list(section, "workers_per_edge", path)
    if not raw:
        raise ScenarioError(field, "must list at least one edge")
    return tuple(to_int(m, join(field, i), lo=1, hi=1024) for i, m in enumerate(raw))


def parse_node_name(name: str, workers_per_edge: tuple[int, ...], path: str) -> tuple[int, ...]:
    """``(i,)`` for ``edge-<i>``, ``(i, j)`` for ``worker-<i>-<j>``; the node must exist."""
    n = len(workers_per_edge)
    if match := _EDGE.match(name):
        i = int(match.group(1))
        if i >= n:
            raise ScenarioError(path, f"no node {name!r}: edges are edge-0..edge-{n - 1}")
        return (i,)
    if match := _WORKER.match(name):
        i, j = int(match.group(1)), int(match.group(2))
        if i >= n:
            raise ScenarioError(path, f"no node {name!r}: edges are 0..{n - 1}")
        if j >= workers_per_edge[i]:
            raise ScenarioError(
                path, f"no node {name!r}: edge {i} has workers 0..{workers_per_edge[i] - 1}"
            )
        return (i, j)
    raise ScenarioError(path, f"bad node name {name!r}; expected edge-<i> or worker-<i>-<j>")


@dataclass(frozen=True)
class Topology:
    workers_per_edge: tuple[int, ...]
    workers: tuple[tuple[WorkerProfile, ...], ...]
    edges: tuple[EdgeProfile, ...]
    devices: dict[str, DeviceProfile]
    links: dict[str, Link]
    compute_scale: float = 1.0


def _pick(table: dict, name: Any, path: str, what: str) -> Any:
    if not isinstance(name, str) or name not in table:
        raise ScenarioError(path, f"unknown {what} {name!r}; defined: {', '.join(sorted(table))}")
    return table[name]


def parse_topology(value: Any, path: str = "topology") -> Topology:
    section = as_mapping(value, path)
    allowed = {
        "workers_per_edge",
        "compute_scale",
        "devices",
        "links",
        "workers",
        "edges",
        "overrides",
    }
    check_keys(section, allowed, path)
    wpe = parse_workers_per_edge(section, path)
    scale = get_float(section, "compute_scale", path, 1.0, lo=0.0, lo_open=True)
    devices = _named(section, "devices", path, BUILTIN_DEVICES, parse_device)
    links = _named(section, "links", path, BUILTIN_LINKS, parse_link)

    def worker(cfg: Mapping[str, Any], field: str) -> WorkerProfile:
        check_keys(cfg, {"device", "link"}, field)
        name = get_str(cfg, "device", field)
        dev = _pick(devices, name, join(field, "device"), "device")
        link = _pick(links, get_str(cfg, "link", field), join(field, "link"), "link")
        return WorkerProfile(dev.shift_s * scale, dev.rate / scale, link, name, dev.cpu_fraction)

    def edge(cfg: Mapping[str, Any], field: str) -> EdgeProfile:
        check_keys(cfg, {"device", "uplink", "combine_s_per_byte"}, field)
        name = get_str(cfg, "device", field)
        dev = _pick(devices, name, join(field, "device"), "device")
        uplink = _pick(links, get_str(cfg, "uplink", field), join(field, "uplink"), "link")
        combine = get_float(cfg, "combine_s_per_byte", field, lo=0.0)
        return EdgeProfile(uplink, combine, name, dev.cpu_fraction)

    w_default = {
        "device": "laptop",
        "link": "lan",
        **as_mapping(section.get("workers", {}), join(path, "workers")),
    }
    e_default = {
        "device": "laptop",
        "uplink": "lan",
        "combine_s_per_byte": 0.0,
        **as_mapping(section.get("edges", {}), join(path, "edges")),
    }
    overrides = as_mapping(section.get("overrides", {}), join(path, "overrides"))
    per_node: dict[tuple[int, ...], Mapping[str, Any]] = {}
    for name, cfg in overrides.items():
        field = join(join(path, "overrides"), name)
        per_node[parse_node_name(name, wpe, field)] = as_mapping(cfg, field)

    def field_of(node: tuple[int, ...], default_key: str) -> str:
        if node in per_node:
            return join(
                join(path, "overrides"),
                "-".join(["edge" if len(node) == 1 else "worker", *map(str, node)]),
            )
        return join(path, default_key)

    workers = tuple(
        tuple(
            worker({**w_default, **per_node.get((i, j), {})}, field_of((i, j), "workers"))
            for j in range(m)
        )
        for i, m in enumerate(wpe)
    )
    edges = tuple(
        edge({**e_default, **per_node.get((i,), {})}, field_of((i,), "edges"))
        for i in range(len(wpe))
    )
    return Topology(wpe, workers, edges, devices, links, scale)
