"""odeviz: see and teach Neural ODEs (Chen et al., NeurIPS 2018).

The names below load on first use (PEP 562), so ``odeviz serve`` and ``odeviz --help`` do not pay for
torch before they need it.
"""
from importlib import import_module

_WHERE = {
    "SolverConfig": ".numerics.config",
    "ADAPTIVE_METHODS": ".numerics.methods", "METHODS": ".numerics.methods",
    **dict.fromkeys(("CancelToken", "EvaluationLimitExceeded", "NonFiniteState", "Solution", "SolveCancelled",
                     "SolverError", "SolveStats", "StepSizeUnderflow", "solve"), ".numerics.solve"),
    "load": ".models.saving",
}

__version__ = "0.1.0"
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'odeviz' has no attribute {name!r}")
    value = getattr(import_module(_WHERE[name], __name__), name)
    globals()[name] = value  # once found, an ordinary attribute
    return value


def __dir__():
    return sorted([*globals(), *_WHERE])
