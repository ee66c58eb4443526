"""Shared test set-up. The test folders mirror ``src/imiqsim/`` (``tests/engine`` tests
``imiqsim.engine``, ...); tests at this level test the top-level modules.

Tests are imported by path (``--import-mode=importlib``), so two folders may hold files of the
same name; this folder is put on ``sys.path`` so tests can import ``pins_generate``.

Mutation checks (``benchmarks/mutation.py``): when the environment variable ``IMIQSIM_MUTATION``
is set, e.g. ``IMIQSIM_MUTATION="k_ctl_kill*0.1"`` (several: ``"a*0.1,b*2"``), every parameter
vector the model resolves in this test process has those parameters multiplied by their factors,
after the indication, site, area, strength and knockouts are applied and before explicit
overrides (an explicit override of a mutated parameter wins). The mutation is applied through the
model's ordinary parameter overrides: production code has no mutation hook. It reaches this
process only, not worker processes that a test starts. The pytest header names the mutation.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

MUTATION_ENV = "IMIQSIM_MUTATION"


def parse_mutation(text: str) -> dict[str, float]:
    """``"name*factor,name*factor"`` -> ``{name: factor}`` (a clear error for anything else)."""
    out: dict[str, float] = {}
    for item in (s.strip() for s in text.split(",")):
        if not item:
            continue
        name, sep, factor = item.partition("*")
        try:
            value = float(factor)
        except ValueError:
            value = float("nan")
        if not sep or not name.strip() or not value > 0:
            raise pytest.UsageError(
                f"{MUTATION_ENV}: {item!r} is not 'parameter*factor' with a factor > 0"
            )
        out[name.strip()] = value
    return out


_ORIGINAL_PARAMETER_VECTOR = None


def pytest_configure(config):
    """Apply ``IMIQSIM_MUTATION`` (see the module docstring) before any test module is imported,
    so parameter vectors resolved at collection time are mutated too; nothing when it is unset."""
    global _ORIGINAL_PARAMETER_VECTOR
    spec = os.environ.get(MUTATION_ENV, "").strip()
    if not spec or _ORIGINAL_PARAMETER_VECTOR is not None:
        return
    factors = parse_mutation(spec)
    from imiqsim.model import Model, get_model

    unknown = sorted(set(factors) - set(get_model().parameter_names))
    if unknown:
        raise pytest.UsageError(f"{MUTATION_ENV}: not model parameters: {unknown}")
    original = Model.parameter_vector

    def mutated(
        self,
        indication="AK",
        site=None,
        area_cm2=None,
        overrides=None,
        knockouts=(),
        cream_strength=None,
    ):
        explicit = dict(overrides or {})
        p = original(self, indication, site, area_cm2, None, knockouts, cream_strength)
        scaled = {
            name: float(p[self.parameter_index(name)]) * f
            for name, f in factors.items()
            if name not in explicit
        }
        return original(
            self, indication, site, area_cm2, {**scaled, **explicit}, knockouts, cream_strength
        )

    _ORIGINAL_PARAMETER_VECTOR = original
    Model.parameter_vector = mutated  # type: ignore[method-assign]


def pytest_report_header(config):
    spec = os.environ.get(MUTATION_ENV, "").strip()
    return f"{MUTATION_ENV}={spec}" if spec else None


def pytest_unconfigure(config):
    global _ORIGINAL_PARAMETER_VECTOR
    if _ORIGINAL_PARAMETER_VECTOR is not None:
        from imiqsim.model import Model

        Model.parameter_vector = _ORIGINAL_PARAMETER_VECTOR  # type: ignore[method-assign]
        _ORIGINAL_PARAMETER_VECTOR = None
