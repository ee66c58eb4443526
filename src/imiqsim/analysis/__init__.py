"""Analysis tools: global sensitivity, parameter and regimen scans, a regimen optimiser.

Each evaluates virtual trials with common random numbers (the same virtual patients at every
point): :func:`sensitivity` (SALib Sobol and Morris), :func:`scan` (grids of parameters and
regimen fields) and :func:`optimise` (the Pareto front of efficacy vs tolerability under limits,
Optuna NSGA-II). Research and teaching software, not a medical device.
"""

from __future__ import annotations

from typing import Any

__all__ = ["optimise", "scan", "sensitivity"]


def __getattr__(name: str) -> Any:
    # lazy: `imiqsim --help` must not import SALib, Optuna or the engine
    if name == "sensitivity":
        from imiqsim.analysis.sensitivity import sensitivity

        return sensitivity
    if name == "scan":
        from imiqsim.analysis.scan import scan

        return scan
    if name == "optimise":
        from imiqsim.analysis.optimise import optimise

        return optimise
    raise AttributeError(f"module 'imiqsim.analysis' has no attribute {name!r}")
