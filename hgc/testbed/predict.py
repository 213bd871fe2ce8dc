"""The simulator's prediction for each scheme, beside the measured figures: the very plan
the cluster ran (``hgc.testbed.config.scenario_plan``), evaluated by ``expected_time`` on the
scenario's model."""

from __future__ import annotations

import logging
from typing import Any

from common.perf import Plan, expected_time, with_message_overhead
from common.scenario import Scenario

log = logging.getLogger(__name__)


def plan_info(plan: Plan) -> dict[str, Any]:
    """What the run folder keeps of a plan: scheme, selection, K, D and the complete spec."""
    return {
        "scheme": plan.scheme,
        "edges": list(plan.edges),
        "workers": [list(w) for w in plan.workers],
        "K": plan.K,
        "D": plan.D,
        "code_spec": dict(plan.code_spec),
    }


def predict(
    scenario: Scenario, plan: Plan, message_overhead_s: float = 0.0
) -> tuple[float | None, dict[str, Any]]:
    """(expected seconds per iteration of ``plan``, its ``plan_info``); (None, info with the
    reason) when the simulator cannot evaluate it, so the table shows '-' and the reason is
    kept.

    ``message_overhead_s`` (seconds per message hop, measured by ``hgc.testbed.overhead``) is
    added to every link when evaluating; the plan stays the one the cluster runs."""
    system = with_message_overhead(scenario.system_model(), message_overhead_s)
    info = plan_info(plan)
    for method in ("exact", "mc"):
        try:
            seconds = float(expected_time(system, plan, method=method))
        except ValueError as exc:  # e.g. exact evaluation does not apply to this model
            info[f"{method}_error"] = str(exc)
            continue
        info["method"] = method
        return seconds, info
    return None, info
