"""odeviz: see and teach Neural ODEs (Chen et al., NeurIPS 2018)."""
from .numerics.config import SolverConfig
from .numerics.methods import ADAPTIVE_METHODS, METHODS
from .numerics.solve import (
    CancelToken,
    EvaluationLimitExceeded,
    NonFiniteState,
    Solution,
    SolveCancelled,
    SolverError,
    SolveStats,
    StepSizeUnderflow,
    solve,
)

from .models.saving import load

__version__ = "0.1.0"
__all__ = [
    "ADAPTIVE_METHODS", "METHODS", "CancelToken", "EvaluationLimitExceeded", "NonFiniteState",
    "Solution", "SolveCancelled", "SolverConfig", "SolverError", "SolveStats", "StepSizeUnderflow", "load", "solve",
]
