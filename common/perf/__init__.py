"""Performance maths: the runtime model, expected iteration time (exact and Monte Carlo),
the JNCSS optimiser, unequal loads and the simulator. Pure: numpy and ``common.coding`` only.
See docs/architecture.md and docs/simulator.md."""

from common.perf.api import (
    Communication,
    communication,
    exact_available,
    expected_time,
    plan_scheme,
    score,
    simulate_plan,
)
from common.perf.exact import ExactResult, ExactUnavailableError, exact_distribution
from common.perf.jncss import OptimizeResult, exhaustive_jncss, greedy_jncss
from common.perf.model import compile_plan
from common.perf.montecarlo import MCResult
from common.perf.plan import InfeasiblePlanError, Plan, make_plan
from common.perf.system import (
    EdgeProfile,
    Link,
    StragglerModel,
    SystemModel,
    WorkerProfile,
    with_message_overhead,
)

__all__ = [
    "Communication",
    "EdgeProfile",
    "ExactResult",
    "ExactUnavailableError",
    "InfeasiblePlanError",
    "Link",
    "MCResult",
    "OptimizeResult",
    "Plan",
    "StragglerModel",
    "SystemModel",
    "WorkerProfile",
    "communication",
    "compile_plan",
    "exact_available",
    "exact_distribution",
    "exhaustive_jncss",
    "expected_time",
    "greedy_jncss",
    "make_plan",
    "plan_scheme",
    "score",
    "simulate_plan",
    "with_message_overhead",
]
