"""The simulator's prediction for each scheme, beside the measured figures: the same
``plan_scheme`` the cluster runs, evaluated by ``expected_time`` on the scenario's model."""

from __future__ import annotations

import logging
from typing import Any

from common.scenario import Scenario

log = logging.getLogger(__name__)

FLAT = ("flat-frc", "flat-crc")
OPTIMISED = ("hgc-jncss", "hgc-hetero")


def tolerances(scenario: Scenario, scheme: str) -> dict[str, int]:
    """The keyword tolerances ``plan_scheme`` takes for ``scheme`` under this scenario."""
    code = scenario.code
    if scheme in FLAT:
        return {"s": code.s}
    if scheme in OPTIMISED or scheme == "uncoded":
        return {}
    if scheme == "worker-gc":
        return {"s_w": code.s_w}
    if scheme == "edge-gc":
        return {"s_e": code.s_e}
    return {"s_e": code.s_e, "s_w": code.s_w}


def predict(
    scenario: Scenario, scheme: str, message_overhead_s: float = 0.0
) -> tuple[float | None, dict[str, Any]]:
    """(expected seconds per iteration, plan description); (None, {"error": ...}) when the
    simulator cannot evaluate this scheme, so the table shows '-' and the reason is kept.

    ``message_overhead_s`` (seconds per message hop, measured by
    ``hgc.testbed.overhead``) is added to every link when evaluating; the plan is still
    the one the cluster runs (chosen on the pure model)."""
    from common.perf import expected_time, plan_scheme, with_message_overhead

    pure = scenario.system_model()
    system = with_message_overhead(pure, message_overhead_s)
    try:
        plan = plan_scheme(pure, scheme, **tolerances(scenario, scheme))
    except ValueError as exc:
        return None, {"error": f"plan_scheme: {exc}"}
    info: dict[str, Any] = {
        "scheme": plan.scheme,
        "edges": list(plan.edges),
        "workers": [list(w) for w in plan.workers],
        "code_spec": plan.code_spec,
    }
    for method in ("exact", "mc"):
        try:
            seconds = float(expected_time(system, plan, method=method))
        except ValueError as exc:  # e.g. exact evaluation does not apply to this model
            info[f"{method}_error"] = str(exc)
            continue
        info["method"] = method
        return seconds, info
    return None, info
