"""The master's run description: a JSON file (``--config``), overridable by flags.

Schema (docs/operations.md)::

    {
      "code": {"scheme": "hgc", "workers_per_edge": [3, 3, 3], "s_e": 1, "s_w": 1},
                                      # or "code_spec": <code.spec()> (e.g. hgc-hetero)
      "data_spec": {"kind": "digits"},
      "model_spec": {"kind": "logreg"},
      "emulation_spec": {"worker-0-1": {"fixed_delay_s": 0.2}},     # optional, by node
      "training": {"iterations": 10, "learning_rate": 0.5, "eval_every": 1,
                   "target_loss": null, "deadline_s": 10, "on_failure": "stop",
                   "max_retries": 2},
      "seed": 0,
      "names": {"edge-0": "edge-1", ...},   # optional: plan position -> scenario name
      "left_out": ["edge-0", ...]            # optional: scenario nodes the plan does not use
    }

``names``/``left_out``: see ``services.master.naming`` (records, logs and metric labels then
use the scenario's names).
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any

from common.coding import make_code
from services.master.naming import check_names
from services.master.state import TrainingConfig

TOP_KEYS = {
    "code", "code_spec", "data_spec", "model_spec", "emulation_spec", "training", "seed",
    "names", "left_out",
    "adaptive",  # hgc-adaptive: services.master.adaptive
}  # fmt: skip
CODE_KEYS = {"scheme", "workers_per_edge", "s_e", "s_w", "s", "K"}
TRAINING_KEYS = {f.name for f in fields(TrainingConfig)} - {
    "code_spec",
    "data_spec",
    "model_spec",
    "emulation_spec",
    "names",
    "left_out",
    "adaptive",
}


class ConfigError(ValueError):
    """A bad master configuration; the message names the field."""


def code_spec_of(code: dict[str, Any]) -> dict[str, Any]:
    """``{"scheme", "workers_per_edge", "s_e", "s_w", "s", "K"}`` -> the code's spec."""
    unknown = set(code) - CODE_KEYS
    if unknown:
        raise ConfigError(f"code: unknown fields {sorted(unknown)}; known: {sorted(CODE_KEYS)}")
    if "scheme" not in code or "workers_per_edge" not in code:
        raise ConfigError("code: needs 'scheme' and 'workers_per_edge'")
    built = make_code(
        code["scheme"],
        list(code["workers_per_edge"]),
        int(code.get("s_e", 0)),
        int(code.get("s_w", 0)),
        s=code.get("s"),
        K=code.get("K"),
    )
    return dict(built.spec())


def parse_config(
    raw: dict[str, Any], overrides: dict[str, Any] | None = None
) -> tuple[TrainingConfig, int]:
    """Validate ``raw`` (the JSON schema above) and apply ``overrides`` (training fields)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"config: expected a JSON object, got {type(raw).__name__}")
    unknown = set(raw) - TOP_KEYS
    if unknown:
        raise ConfigError(f"config: unknown fields {sorted(unknown)}; known: {sorted(TOP_KEYS)}")
    if ("code" in raw) == ("code_spec" in raw):
        raise ConfigError("config: give exactly one of 'code' and 'code_spec'")
    for key in ("data_spec", "model_spec"):
        if not isinstance(raw.get(key), dict):
            raise ConfigError(f"config.{key}: required, a JSON object")
    code_spec = code_spec_of(raw["code"]) if "code" in raw else raw["code_spec"]
    if not isinstance(raw.get("training", {}), dict):
        raise ConfigError("config.training: must be a JSON object")
    training = dict(raw.get("training", {}))
    bad = set(training) - TRAINING_KEYS
    if bad:
        raise ConfigError(f"training: unknown fields {sorted(bad)}; known: {sorted(TRAINING_KEYS)}")
    training.update({k: v for k, v in (overrides or {}).items() if v is not None})
    emulation = raw.get("emulation_spec", {})
    if not isinstance(emulation, dict):
        raise ConfigError("config.emulation_spec: must be an object keyed by node name")
    try:
        sizes = [int(m) for m in code_spec.get("workers_per_edge", [])]
        names, left_out = check_names(raw.get("names", {}), raw.get("left_out", []), sizes)
    except (TypeError, ValueError, AttributeError) as exc:
        raise ConfigError(str(exc)) from exc
    try:
        config = TrainingConfig(
            code_spec=code_spec,
            names=names,
            left_out=left_out,
            data_spec=raw["data_spec"],
            model_spec=raw["model_spec"],
            emulation_spec=emulation,
            adaptive=raw.get("adaptive"),
            **training,
        )
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"training: {exc}") from exc
    seed = raw.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ConfigError(f"config.seed: must be an integer, got {seed!r}")
    return config, seed


def load_config(
    path: str | Path, overrides: dict[str, Any] | None = None
) -> tuple[TrainingConfig, int]:
    try:
        raw = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"--config {path}: {exc}") from exc
    return parse_config(raw, overrides)
