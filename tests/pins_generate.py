"""Regenerate ``tests/data/pins.json``: a few endpoint values of three presets and a field run.

The pinned values are the reference for refactors that must not change results
(``tests/test_pins.py`` compares them bit for bit). Re-run this only in a commit
that changes the model on purpose, and say in that commit what moved and why:

    .venv/bin/python tests/pins_generate.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

PIN_FILE = Path(__file__).parent / "data" / "pins.json"

#: preset -> (patients, seed, follow-up years)
TRIAL_PINS = {"ak-5pct": (24, 11, 1.0), "sbcc-5pct": (16, 12, 0.0), "ak-cryo": (16, 13, 1.0)}
#: per-patient outcome columns pinned exactly (floats as their repr, through JSON)
TRIAL_COLUMNS = (
    "complete_clearance",
    "lesion_burden_final",
    "lsr_max",
    "serum_cmax_ng_ml",
    "ifn_alpha_peak",
    "memory_t_final",
    "killed_immune",
    "applications_given",
    "visible_lesions_cleared",
)
FIELD_PIN = {"scenario": "ak-5pct", "resolution_mm": 10.0, "days": 40.0, "seed": 3}


def _column(values) -> list:
    return [
        None if (isinstance(v, float) and not np.isfinite(v)) else v
        for v in np.asarray(values, dtype=float).tolist()
    ]


def compute_pins() -> dict:
    from imiqsim import simulate
    from imiqsim.spatial.field import FieldSpec, simulate_field
    from imiqsim.trial import run_trial

    pins: dict = {"trials": {}, "simulate": {}, "field": {}}
    for preset, (n, seed, fu) in TRIAL_PINS.items():
        tr = run_trial([preset], patients=n, seed=seed, followup_years=fu, chunk_size=8)
        arm = tr.arms[0]
        pins["trials"][preset] = {
            "columns": {c: _column(arm.outcomes[c]) for c in TRIAL_COLUMNS},
            "endpoints": {
                k: arm.endpoints[k]["value"] for k in ("complete_clearance", "partial_clearance")
            },
        }
        res = simulate(preset)
        pins["simulate"][preset] = {
            k: res.summary[k]
            for k in ("lesion_burden_final", "serum_cmax_ng_ml", "lsr_max", "memory_t_cells_final")
        }
    fr = simulate_field(FieldSpec(**FIELD_PIN))
    pins["field"] = {
        "erythema_final": _column(fr.maps["erythema_score"].isel(time=-1).values.ravel()),
        "lesion_cells_final": _column(fr.maps["lesion_cells"].isel(time=-1).values.ravel()),
        "serum": _column(fr.timecourses["serum_conc_ng_ml"].values),
    }
    return json.loads(json.dumps(pins))


if __name__ == "__main__":
    PIN_FILE.write_text(json.dumps(compute_pins(), indent=1) + "\n")
    print(f"wrote {PIN_FILE}")
