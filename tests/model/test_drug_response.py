"""Clearance must come from the drug: a dose too small to inflame the skin clears little (issue 10).

Imiquimod kills nothing itself; it works through the inflammation it raises (TLR7 -> cytokines ->
infiltrate), and a stronger reaction goes with better clearance. So on the same virtual patients
(common random numbers), a cut of the free drug (``skin_unbound_fraction``) that abolishes the
skin reaction must take clearance most of the way back to the vehicle arm's. Until the TNF-alpha
death-receptor route and the lower free fraction (README, The model) the model failed this: its
adaptive arm reached full strength from about 1% TLR7 activation (1/16 of the drug still cleared
73.5% of sBCC at 3x/week against 77%). Now (200 patients, seed 7): 70% with the tabled drug,
19.5% with a sixteenth of it, 7% vehicle.
"""

from __future__ import annotations

import functools

from imiqsim.model import get_model
from imiqsim.scenario import load_preset
from imiqsim.trial import run_trial

N = 200
#: the tabled free fraction and a sixteenth of it
FREE = get_model().parameter("skin_unbound_fraction").value
CUT = FREE / 16


@functools.cache
def _arms(free_fraction: float | None = None):
    """Endpoints of sBCC 3x/week for 12 weeks and its vehicle (the tabled drug with None)."""
    overrides = {} if free_fraction is None else {"skin_unbound_fraction": free_fraction}
    tr = run_trial(
        [load_preset("sbcc-5pct-3x12"), load_preset("sbcc-5pct-vehicle")],
        patients=N,
        seed=7,
        followup_years=0.0,
        overrides=overrides,
    )
    return [a.endpoints for a in tr.arms]


def test_a_sixteenfold_cut_of_the_free_drug_abolishes_the_skin_reaction():
    # the precondition of the expected failure below: the cut reaches the skin's inflammation
    full, _ = _arms()
    cut, _ = _arms(CUT)
    assert full["severe_erythema"]["value"] > 0.2
    assert cut["severe_erythema"]["value"] <= 0.02


def test_clearance_without_a_skin_reaction_falls_most_of_the_way_to_vehicle():
    full, veh = _arms()
    cut, _ = _arms(CUT)
    f, v, c = (e["histological_clearance"]["value"] for e in (full, veh, cut))
    assert f > v + 0.3  # the drug works at the tabled dose
    assert c < v + 0.5 * (f - v), (f, v, c)
