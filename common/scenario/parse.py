"""``parse_scenario(dict)`` and ``load_scenario(path)``: hand-written validation, one function
per section. Every error is a ``ScenarioError`` naming the dotted field and what is allowed."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from common.coding import DEFAULT_SCHEMES, SCHEME_NAMES, Tolerances
from common.learning import (
    LearningSpecError,
    build_model,
    dataset_shape,
    validate_data_spec,
    validate_model_spec,
)
from common.scenario.adaptive import parse_adaptive
from common.scenario.feasibility import check_code
from common.scenario.fields import (
    REQUIRED,
    ScenarioError,
    as_mapping,
    check_keys,
    get_bool,
    get_choice,
    get_float,
    get_int,
    get_list,
    get_str,
    join,
)
from common.scenario.profiles import Topology, parse_node_name, parse_topology
from common.scenario.reader import InputError, read_yaml
from common.scenario.schema import (
    COMPUTE_EMULATION,
    FAULT_ACTIONS,
    NETWORK_EMULATION,
    ON_FAILURE,
    Emulation,
    Fault,
    Ports,
    Scenario,
    Training,
)
from common.scenario.stragglers import parse_stragglers

TOP_LEVEL_KEYS = (
    "name",
    "description",
    "seed",
    "topology",
    "stragglers",
    "model",
    "data",
    "training",
    "code",
    "schemes",
    "emulation",
    "faults",
    "ports",
    "security",
    "adaptive",
    "platforms",  # node -> linux/amd64|linux/arm64: read by `hgc compose` (hgc.compose.generate)
)


def yaml_problem(exc: yaml.YAMLError) -> str:
    """One line: the problem and where (1-based line and column); PyYAML's own message spans
    several lines with the offending text and a caret."""
    problem = getattr(exc, "problem", None)
    mark = getattr(exc, "problem_mark", None)
    if problem is None:
        return " ".join(str(exc).split())
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    context = getattr(exc, "context", None)
    return f"{problem}{where}" + (f" ({context})" if context else "")


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a YAML scenario; relative paths in it resolve against its folder."""
    path = Path(path)
    try:  # size-capped, regular files only, YAML aliases and nesting bounded
        data = read_yaml(path, "scenario")
    except InputError as exc:
        raise ScenarioError("", str(exc)) from None
    if data is None:
        raise ScenarioError("", f"{path}: the scenario file is empty")
    return parse_scenario(data, base_dir=path.resolve().parent, source=path)


def parse_scenario(
    data: Mapping[str, Any], base_dir: str | Path | None = None, source: Path | None = None
) -> Scenario:
    """Validate a scenario given as a dict (e.g. from YAML or JSON)."""
    root = as_mapping(data, "")
    check_keys(root, TOP_LEVEL_KEYS, "")
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    name = get_str(root, "name", "", source.stem if source is not None else "scenario")
    topology = parse_topology(root.get("topology"), "topology")
    wpe = topology.workers_per_edge
    model_spec, data_spec = _learning_specs(root, base)
    n_train, n_features, n_classes = _shape(data_spec)
    if n_train < sum(wpe):
        raise ScenarioError(
            "data", f"{n_train} training rows cannot be split among {sum(wpe)} workers"
        )
    try:
        n_params = build_model(model_spec, n_features, n_classes).n_params
    except LearningSpecError as exc:
        raise ScenarioError(join("model", exc.field), exc.detail) from None
    training = _training(root.get("training", {}), "training")
    schemes = _schemes(root, "schemes")
    return Scenario(
        name=name,
        seed=get_int(root, "seed", "", 0, lo=0, hi=2**32 - 1),
        description=str(root.get("description", "")),
        topology=topology,
        straggler=parse_stragglers(root.get("stragglers", {}), wpe, base, "stragglers"),
        model_spec=model_spec,
        data_spec=data_spec,
        n_train=n_train,
        n_features=n_features,
        n_classes=n_classes,
        n_params=n_params,
        training=training,
        code=_code(root.get("code", {}), wpe, n_train, schemes, "code"),
        schemes=schemes,
        emulation=_emulation(root.get("emulation", {}), "emulation"),
        faults=_faults(root.get("faults", []), wpe, training.iterations, "faults", topology),
        ports=_ports(root.get("ports", {}), len(wpe) + 1 + sum(wpe), "ports"),
        source=source,
        raw=dict(root),
        security_curve=_security_curve(root.get("security", {}), "security"),
        adaptive=parse_adaptive(root.get("adaptive"), "adaptive"),
    )


def _security_curve(value: Any, path: str) -> bool:
    """``security: {curve: true|false}`` (default true: CurveZMQ on every connection)."""
    section = as_mapping(value, path)
    check_keys(section, ("curve",), path)
    return get_bool(section, "curve", path, True)


def _learning_specs(root: Mapping[str, Any], base: Path) -> tuple[dict, dict]:
    try:
        model_spec = validate_model_spec(root.get("model", {"kind": "logreg"}))
    except LearningSpecError as exc:
        raise ScenarioError(
            join("model", exc.field) if exc.field else "model", exc.detail
        ) from None
    try:
        data_spec = validate_data_spec(root.get("data", {"kind": "digits"}))
    except LearningSpecError as exc:
        raise ScenarioError(join("data", exc.field) if exc.field else "data", exc.detail) from None
    if data_spec.get("path") is not None and not Path(data_spec["path"]).is_absolute():
        data_spec["path"] = str(base / data_spec["path"])
    return model_spec, data_spec


def _shape(data_spec: dict) -> tuple[int, int, int]:
    try:
        return dataset_shape(data_spec)
    except LearningSpecError as exc:
        field = join("data", exc.field) if exc.field else "data.path"
        raise ScenarioError(field, exc.detail) from None


def _training(value: Any, path: str) -> Training:
    s = as_mapping(value, path)
    check_keys(s, Training.__dataclass_fields__, path)
    d = Training()
    return Training(
        iterations=get_int(s, "iterations", path, d.iterations, lo=1, hi=10_000_000),
        learning_rate=get_float(s, "learning_rate", path, d.learning_rate, lo=0.0, lo_open=True),
        eval_every=get_int(s, "eval_every", path, d.eval_every, lo=1),
        target_loss=get_float(s, "target_loss", path, None, lo=0.0),
        deadline_s=get_float(s, "deadline_s", path, None, lo=0.0, lo_open=True),
        on_failure=get_choice(s, "on_failure", path, ON_FAILURE, d.on_failure),
        max_retries=get_int(s, "max_retries", path, d.max_retries, lo=0, hi=1000),
        optimiser=_optimiser(s.get("optimiser"), path),
    )


def _optimiser(value: Any, path: str) -> dict[str, Any] | None:
    if value is None:
        return None
    kinds = ("sgd", "momentum", "adam")
    s = as_mapping(value, join(path, "optimiser"))
    kind = get_choice(s, "kind", join(path, "optimiser"), kinds, None)
    keys = {
        "sgd": ("kind",),
        "momentum": ("kind", "beta"),
        "adam": ("kind", "beta1", "beta2", "eps"),
    }
    check_keys(s, keys[kind], join(path, "optimiser"))
    out: dict[str, Any] = {"kind": kind}
    for key in keys[kind][1:]:
        if key in s:  # betas in [0, 1), eps > 0
            lo_open = key == "eps"
            hi = None if lo_open else 1.0 - 1e-12
            out[key] = get_float(s, key, join(path, "optimiser"), None, 0.0, hi, lo_open)
    return out


def _code(
    value: Any, wpe: tuple[int, ...], n_train: int, schemes: tuple[str, ...], path: str
) -> Tolerances:
    s = as_mapping(value, path)
    check_keys(s, ("s_e", "s_w", "s", "K"), path)
    s_e = get_int(s, "s_e", path, 0, lo=0)
    s_w = get_int(s, "s_w", path, 0, lo=0)
    flat_s = get_int(s, "s", path, default_flat_s(s_e, s_w, sum(wpe)), lo=0)
    K = get_int(s, "K", path, None, lo=1, hi=n_train)
    code = Tolerances(s_e, s_w, flat_s, K)
    check_code(code, wpe, schemes, path)
    return code


def default_flat_s(s_e: int, s_w: int, M: int) -> int:
    """The flat tolerance compared with HGC: the largest s with (s + 1) | M (so flat-frc exists)
    and load (s + 1)/M no more than HGC's (s_e + 1)(s_w + 1)/M."""
    target = min((s_e + 1) * (s_w + 1), M)
    return max(d for d in range(1, target + 1) if M % d == 0) - 1


def _schemes(root: Mapping[str, Any], path: str) -> tuple[str, ...]:
    raw = get_list(root, "schemes", "", list(DEFAULT_SCHEMES))
    if not raw:
        raise ScenarioError(path, f"must list at least one of {', '.join(SCHEME_NAMES)}")
    seen: list[str] = []
    for k, scheme in enumerate(raw):
        if scheme not in SCHEME_NAMES:
            raise ScenarioError(
                join(path, k), f"unknown scheme {scheme!r}; allowed: {', '.join(SCHEME_NAMES)}"
            )
        if scheme in seen:
            raise ScenarioError(join(path, k), f"scheme {scheme!r} is listed twice")
        seen.append(scheme)
    return tuple(seen)


def _emulation(value: Any, path: str) -> Emulation:
    s = as_mapping(value, path)
    check_keys(s, Emulation.__dataclass_fields__, path)
    d = Emulation()
    return Emulation(
        compute=get_choice(s, "compute", path, COMPUTE_EMULATION, d.compute),
        cpu_quota=get_bool(s, "cpu_quota", path, d.cpu_quota),
        network=get_choice(s, "network", path, NETWORK_EMULATION, d.network),
        # seconds per message hop; 1 s per hop would already be absurd for loopback
        message_overhead_s=get_float(s, "message_overhead_s", path, d.message_overhead_s, 0, 1),
    )


def _faults(
    value: Any, wpe: tuple[int, ...], iterations: int, path: str, topology: Topology | None = None
) -> tuple[Fault, ...]:
    if not isinstance(value, list):
        raise ScenarioError(path, f"must be a list of faults, got {type(value).__name__}")
    faults = []
    for k, item in enumerate(value):
        field = join(path, k)
        s = as_mapping(item, field)
        check_keys(s, Fault.__dataclass_fields__, field)
        node = get_str(s, "node", field)
        action = get_choice(s, "action", field, FAULT_ACTIONS)
        if node == "master" and action != "restart":
            raise ScenarioError(join(field, "node"), f"the master can only restart, not {action}")
        # restart: the master too (it resumes from its checkpoint)
        where = () if node == "master" else parse_node_name(node, wpe, join(field, "node"))
        iteration = get_int(s, "iteration", field, lo=0, hi=iterations - 1)
        if action in ("set-device", "set-link"):
            faults.append(_set_profile(s, field, node, where, action, iteration, topology))
            continue
        for key in ("device", "link"):
            if key in s:
                raise ScenarioError(join(field, key), f"only for action set-{key}, not {action}")
        if action == "kill":
            for key in ("factor", "duration_s"):
                if key in s:
                    raise ScenarioError(join(field, key), "not allowed for action kill (permanent)")
        if action != "slow" and "factor" in s:
            raise ScenarioError(join(field, "factor"), f"only for action slow, not {action}")
        if action == "pause" and "duration_s" not in s:
            raise ScenarioError(join(field, "duration_s"), "is required for action pause")
        factor = 1.0
        if action == "slow":
            factor = get_float(s, "factor", field, REQUIRED, lo=1.0, lo_open=True)
        duration = get_float(s, "duration_s", field, None, lo=0.0, lo_open=True)
        faults.append(Fault(iteration, node, action, factor, duration))
    return tuple(faults)


def _set_profile(
    s: Mapping[str, Any],
    field: str,
    node: str,
    where: tuple[int, ...],
    action: str,
    iteration: int,
    topology: Topology | None,
) -> Fault:
    """``set-device`` (a worker: ``device``) or ``set-link`` (``link``: a worker's link or an
    edge's uplink), a named profile of the topology, permanent from ``iteration`` on."""
    key = action.removeprefix("set-")
    for other in ("factor", "duration_s", "device" if key == "link" else "link"):
        if other in s:
            raise ScenarioError(join(field, other), f"not allowed for action {action}")
    if key == "device" and len(where) != 2:
        raise ScenarioError(join(field, "node"), f"set-device applies to a worker, not {node}")
    name = get_str(s, key, field)
    table = {} if topology is None else (topology.devices if key == "device" else topology.links)
    if name not in table:
        raise ScenarioError(
            join(field, key), f"unknown {key} {name!r}; defined: {', '.join(sorted(table))}"
        )
    return Fault(iteration, node, action, device=name if key == "device" else None,
                 link=name if key == "link" else None)  # fmt: skip


def _ports(value: Any, n_nodes: int, path: str) -> Ports:
    s = as_mapping(value, path)
    check_keys(s, ("metrics_base_port",), path)
    raw = s.get("metrics_base_port", "auto")
    if raw == "auto":
        return Ports(None)
    field = join(path, "metrics_base_port")
    if isinstance(raw, str):
        raise ScenarioError(field, f"must be 'auto' or an integer port, got {raw!r}")
    port = get_int(s, "metrics_base_port", path, lo=1024, hi=65535 - n_nodes + 1)
    return Ports(port)
