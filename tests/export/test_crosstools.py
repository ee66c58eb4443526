"""The exported SBML runs with each tool's default settings and matches imiqsim.

Representative subset (three presets, one per indication, x three tools, nominal patient; one
virtual patient in libRoadRunner); every preset and more virtual patients are in
``benchmarks/bench_sbml_tools.py``. Tolerance: 1e-4 relative, with an absolute
floor of 1e-9 of each variable's scale (:mod:`imiqsim.export.crosscheck`).
"""

from __future__ import annotations

import numpy as np
import pytest

from imiqsim.export.crosscheck import COMPARED, RUNNERS, compare, reference
from imiqsim.export.sbml import to_sbml
from imiqsim.model import get_model
from imiqsim.population import sample_population
from imiqsim.scenario import resolve

pytest.importorskip("libsbml")
MODEL = get_model()
REL_TOL = 1e-4
#: Known misses on serum drug, the only variable over 1e-4 (docs/exchange.md, "Accuracy with
#: tool defaults"). libRoadRunner's default CVODE BDF (and Tellurium, which is libRoadRunner)
#: reaches 2.8e-4 on ak-5pct: the error grows with the ~21 e-folds of decay after the last dose
#: (1e-5 at 1e-4 of the peak, 2.8e-4 at 1e-9), i.e. relative-tolerance driven; exporting the
#: drug masses in ng instead of mg and compartment sizes of 1 left it at 2.8e-4 (measured).
#: COPASI's LSODA reaches 1.2e-3: COPASI scales the absolute tolerance of a species that starts
#: at 0 by its compartment's volume, and the drug in blood now sits in the central volume
#: (245 L); with every compartment of size 1 it was 1.8e-4. After issue 10's second refit
#: (permeability 2.4x higher, so the tail starts higher) virtual patient 3 of ak-5pct reaches
#: 5.2e-4 in libRoadRunner BDF (measured), hence 6e-4 for libRoadRunner and Tellurium.
#: sbcc-5pct (the only indication with the death-receptor route), measured: serum drug 3.0e-4 in
#: libRoadRunner/Tellurium and 2.0e-3 in COPASI; lesion burden 1.28e-4 in libRoadRunner/Tellurium
#: (3.3e-6 in COPASI) at t = 372 h, where the route has taken the tumour down to 1.7e-9 of its
#: peak, just above the floor: the same relative-tolerance accumulation over e-folds as serum drug.
LOOSER = {
    ("roadrunner", "serum_conc_ng_ml"): 6e-4,
    ("tellurium", "serum_conc_ng_ml"): 6e-4,
    ("copasi", "serum_conc_ng_ml"): 1.5e-3,
}
LOOSER_BY_PRESET = {
    "sbcc-5pct": {
        ("copasi", "serum_conc_ng_ml"): 2.5e-3,
        ("roadrunner", "lesion_burden"): 2e-4,
        ("tellurium", "lesion_burden"): 2e-4,
    }
}
PRESETS = ("ak-5pct", "egw-3.75pct", "sbcc-5pct")
TOOL_MODULES = {"roadrunner": "roadrunner", "copasi": "basico", "tellurium": "tellurium"}


def _case(preset: str, patient: int | None):
    sc = resolve(preset)
    base = sc.model_parameters(MODEL)
    if patient is None:
        p = base
    else:
        p = sample_population(base, sc.indication, patient + 1, 1, model=MODEL).P[patient]
    ev = sc.events()
    # output between events (events fall on whole hours), to the assessment visit
    times = np.arange(0.5, sc.assessment_time_h(), 6.0)
    return p, ev, times


@pytest.fixture(scope="module")
def cases():
    out = {}
    for preset in PRESETS:
        p, ev, times = _case(preset, None)
        out[preset] = (to_sbml(MODEL, p, ev, name=preset), reference(MODEL, p, ev, times, COMPARED))
        out[preset] += (times,)
    return out


@pytest.mark.parametrize("tool", list(RUNNERS))
@pytest.mark.parametrize("preset", PRESETS)
def test_default_settings_match_engine(preset, tool, cases):
    pytest.importorskip(TOOL_MODULES[tool])
    sbml, ref, times = cases[preset]
    got = RUNNERS[tool](sbml, times, COMPARED)
    diffs = compare(MODEL, got, ref)
    looser = {**LOOSER, **LOOSER_BY_PRESET.get(preset, {})}
    over = {n: d for n, d in diffs.items() if d >= looser.get((tool, n), REL_TOL)}
    assert not over, diffs
    # the comparison is not vacuous: the course moves every compared variable
    assert all(np.ptp(ref[n]) > 0 for n in COMPARED)


def test_virtual_patient_in_roadrunner_bdf_matches_engine():
    pytest.importorskip("roadrunner")
    p, ev, times = _case("ak-5pct", 3)
    ref = reference(MODEL, p, ev, times, COMPARED)
    got = RUNNERS["roadrunner"](to_sbml(MODEL, p, ev), times, COMPARED)
    diffs = compare(MODEL, got, ref)
    over = {n: d for n, d in diffs.items() if d >= LOOSER.get(("roadrunner", n), REL_TOL)}
    assert not over, diffs
