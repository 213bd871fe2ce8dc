"""The coding core: hierarchical gradient codes, the baselines, and their decoders (pure maths).

See docs/architecture.md ("Coding core") for the contract and ../shared/docs/hgc-spec.md for
the maths; docs/numerics.md for the choice of evaluation points and measured errors.
"""

from __future__ import annotations

from common.coding.bounds import (
    check_feasible,
    is_feasible,
    largest_feasible_s_e,
    largest_feasible_s_w,
    minimal_K,
    optimal_load,
    optimal_load_fraction,
    smallest_equal_load,
)
from common.coding.combine import combine
from common.coding.errors import (
    CodeSpecError,
    DecodeError,
    InfeasibleCodeError,
    NumericallyUnstableCodeError,
)
from common.coding.factory import (
    CODE_SCHEMES,
    DEFAULT_TOLERANCE,
    Code,
    code_from_placement,
    code_from_spec,
    make_code,
)
from common.coding.flat import FlatCode
from common.coding.hierarchical import HierarchicalCode
from common.coding.schemes import (
    DEFAULT_SCHEMES,
    REGISTRY,
    SCHEME_NAMES,
    Scheme,
    Tolerances,
    check_scheme,
    fixed_tolerances,
    scheme,
    table_order,
)

__all__ = [
    "CODE_SCHEMES",
    "DEFAULT_SCHEMES",
    "DEFAULT_TOLERANCE",
    "REGISTRY",
    "SCHEME_NAMES",
    "Code",
    "CodeSpecError",
    "DecodeError",
    "FlatCode",
    "HierarchicalCode",
    "InfeasibleCodeError",
    "NumericallyUnstableCodeError",
    "Scheme",
    "Tolerances",
    "check_feasible",
    "check_scheme",
    "code_from_placement",
    "code_from_spec",
    "combine",
    "fixed_tolerances",
    "is_feasible",
    "largest_feasible_s_e",
    "largest_feasible_s_w",
    "make_code",
    "minimal_K",
    "optimal_load",
    "optimal_load_fraction",
    "scheme",
    "smallest_equal_load",
    "table_order",
]
