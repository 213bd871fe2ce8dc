"""A valid base scenario and a helper that changes one dotted field of a copy."""

from __future__ import annotations

import copy
from typing import Any

DELETE = object()


def base() -> dict[str, Any]:
    return {
        "name": "unit",
        "seed": 1,
        "topology": {
            "workers_per_edge": [3, 3, 3],
            "links": {"slow": {"latency_s": 0.05, "bandwidth": "2mbit"}},
            "devices": {"fast": {"shift_s": 0.05, "rate": 20.0, "cpu_fraction": 1.0}},
            "workers": {"device": "rpi4", "link": "lan"},
            "edges": {"device": "laptop", "uplink": "lan", "combine_s_per_byte": 1e-9},
            "overrides": {"worker-0-1": {"device": "fast"}, "edge-2": {"uplink": "slow"}},
        },
        "stragglers": {"kind": "shifted-exponential"},
        "model": {"kind": "logreg"},
        "data": {"kind": "digits"},
        "training": {"iterations": 10, "learning_rate": 0.5},
        "code": {"s_e": 1, "s_w": 1},
        "schemes": ["uncoded", "hgc"],
        "emulation": {"compute": "delay", "cpu_quota": False, "network": "in-process"},
        "faults": [{"iteration": 2, "node": "worker-1-1", "action": "slow", "factor": 3.0}],
        "ports": {"metrics_base_port": "auto"},
    }


def with_field(doc: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    """A deep copy of ``doc`` with ``dotted`` (``a.b.0.c``) set to ``value`` (or deleted)."""
    out = copy.deepcopy(doc)
    *parents, last = dotted.split(".")
    node: Any = out
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
    if isinstance(node, list):
        node[int(last)] = value
    elif value is DELETE:
        del node[last]
    else:
        node[last] = value
    return out
