"""Scenarios: one declarative YAML document read by the simulator, the optimiser, the launcher
and the compose generator. Schema: docs/scenario.md. Contract: docs/architecture.md."""

from common.scenario.describe import describe
from common.scenario.feasibility import check_code, largest_feasible_s_e
from common.scenario.fields import ScenarioError
from common.scenario.parse import TOP_LEVEL_KEYS, load_scenario, parse_scenario
from common.scenario.profiles import (
    BUILTIN_DEVICES,
    BUILTIN_LINKS,
    DeviceProfile,
    Topology,
    parse_node_name,
)
from common.scenario.schema import (
    Emulation,
    Fault,
    Ports,
    Scenario,
    Training,
)
from common.scenario.units import parse_bandwidth

__all__ = [
    "BUILTIN_DEVICES",
    "BUILTIN_LINKS",
    "TOP_LEVEL_KEYS",
    "DeviceProfile",
    "Emulation",
    "Fault",
    "Ports",
    "Scenario",
    "ScenarioError",
    "Topology",
    "Training",
    "check_code",
    "describe",
    "largest_feasible_s_e",
    "load_scenario",
    "parse_bandwidth",
    "parse_node_name",
    "parse_scenario",
]
