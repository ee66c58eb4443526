"""Helpers shared by tests that read the lesions a patient was treated for."""

from __future__ import annotations

import numpy as np

from imiqsim.model.lesions import N_SLOTS


def entry_burden(result, at: int = -1) -> tuple[float, float]:
    """Cells of the lesions present at entry (initial, at index ``at``): new lesions that the
    renewing AK field seeds into the empty slots after the course are not the treated ones."""
    ds = result.dataset
    slots = [k for k in range(1, N_SLOTS + 1) if float(ds[f"lesion_{k}"][0]) > 0]
    return (
        sum(float(ds[f"lesion_{k}"][0]) for k in slots),
        sum(float(ds[f"lesion_{k}"][at]) for k in slots),
    )


def last_dose_index(ds) -> int:
    """Output index of the last application (the last step where the applied total rises)."""
    return int(np.nonzero(np.diff(ds["applied"].values) > 0)[0][-1] + 1)
