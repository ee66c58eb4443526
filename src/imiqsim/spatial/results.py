"""What a field simulation returns: :class:`FieldResult`, and how it is recorded and assembled.

The recorder samples the time courses (systemic pools, field totals, means
and maxima) and the maps while :func:`~imiqsim.spatial.simulate_field` runs;
:func:`assemble` turns them into labelled xarray datasets and the per-lesion
table (baseline, assessment, recurrence in follow-up).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr

from imiqsim import __version__
from imiqsim.model import Model
from imiqsim.spatial.layout import FieldLayout
from imiqsim.spatial.site_events import dose_states
from imiqsim.spatial.spec import FieldSpec
from imiqsim.vocabulary import DISCLAIMER, HOURS_PER_DAY

if TYPE_CHECKING:
    from imiqsim.spatial.simulate import FieldIntegrator

__all__ = [
    "FIELD_OBSERVABLES",
    "INFILTRATE_STATES",
    "MAP_OBSERVABLES",
    "SYSTEMIC_OBSERVABLES",
    "FieldResult",
    "Recorder",
    "assemble",
    "drug_in_skin_states",
    "lesion_table",
]

#: observables whose field mean and max are stored over time
FIELD_OBSERVABLES = ("lsr_score", "erythema_score", "skin_conc_ug_ml")
#: systemic observables stored over time (functions of the shared pools only)
SYSTEMIC_OBSERVABLES = ("serum_conc_ng_ml", "systemic_cytokine_index", "flu_like_probability")
#: immune infiltrate shown on the maps: the effector cells that kill lesion cells
INFILTRATE_STATES = ("cd8_ctl", "nk_cells", "macrophage")
#: observables stored as maps
MAP_OBSERVABLES = ("erythema_score", "lsr_score", "skin_conc_ug_ml")


def drug_in_skin_states(model: Model) -> tuple[str, ...]:
    """The drug-mass states held in the skin layers, in model order.

    Local (not systemic) states of the drug mass balance, other than those the
    dose events write (:func:`~imiqsim.spatial.site_events.dose_states`: the
    film on top of the skin, what was washed off).

    Examples
    --------
    >>> from imiqsim.model import get_model
    >>> drug_in_skin_states(get_model())
    ('stratum_corneum', 'epidermis', 'dermis')
    """
    dosed = dose_states(model)
    return tuple(
        s.name for s in model.states if s.drug_mass and not s.systemic and s.name not in dosed
    )


@dataclass
class FieldResult:
    """Maps, time courses and the lesion table of one simulated field.

    Attributes
    ----------
    maps : xarray.Dataset
        Dims ``time`` (days), ``y``, ``x`` (mm): ``lesion_cells`` (all slots,
        cells/mm2), ``erythema_score``, ``lsr_score``, ``immune_infiltrate``
        (cd8_ctl + nk_cells + macrophage, cells/mm2), ``skin_conc_ug_ml``; and
        per site (``y``, ``x``): ``pigment_change_index`` (ASSUMED proxy),
        ``cumulative_erosion_score_days``, ``peak_lsr_score``, ``lesion_slot``.
    timecourses : xarray.Dataset
        Dim ``time`` (days): the systemic pools and systemic observables,
        field totals and means; ``lesion_cells`` per lesion (dims time, lesion).
    lesions : pandas.DataFrame
        One row per lesion: id (slot), centre, radius, sites, baseline and
        assessment cells, visible at baseline, cleared at assessment,
        recurred or new in follow-up.
    key_times_days : dict
        baseline, mid_treatment, end_of_treatment, assessment, end_of_followup.
    info : dict
        Grid, timing and numerics diagnostics (wall time, groups per step...).
    """

    spec: FieldSpec
    layout: FieldLayout
    maps: xr.Dataset
    timecourses: xr.Dataset
    lesions: pd.DataFrame
    key_times_days: dict
    info: dict

    @property
    def pigment(self) -> xr.DataArray:
        """Pigment-change map: highest melanocyte loss per site (ASSUMED hypopigmentation proxy)."""
        return self.maps["pigment_change"]


class Recorder:
    """Collects the time courses and the maps."""

    def __init__(self, model: Model, layout: FieldLayout, eng: FieldIntegrator):
        self.model, self.layout, self.eng = model, layout, eng
        si = model.state_index
        self.infl_cols = [si(n) for n in INFILTRATE_STATES]
        self.skin_cols = [si(n) for n in drug_in_skin_states(model)]
        self.applied_col = si("applied")
        self.slot_cols = [L.slot - 1 for L in layout.lesions]
        self.area_mm2 = layout.area_cm2 * 100.0
        self.pigment_col = si("pigment_loss") if "pigment_loss" in model.state_names else None
        self.sys_names = [model.states[i].name for i in eng.sys_idx]
        self.ser: dict[str, list] = {
            k: []
            for k in (
                self.sys_names
                + [n for n in SYSTEMIC_OBSERVABLES if n in model.observable_names]
                + [
                    "lesion_burden",
                    "visible_lesions",
                    "histological_lesions",
                    "drug_applied_mg",
                    "drug_in_skin_mg",
                    "mean_immune_infiltrate",
                ]
                + [f"mean_{o}" for o in FIELD_OBSERVABLES]
                + [f"max_{o}" for o in FIELD_OBSERVABLES]
            )
        }
        self.lesion_cells: list[np.ndarray] = []
        self.maps: dict[str, list] = {
            k: []
            for k in (
                "lesion_cells",
                "erythema_score",
                "lsr_score",
                "immune_infiltrate",
                "skin_conc_ug_ml",
            )
        }
        if self.pigment_col is not None:
            self.maps["pigment_loss"] = []

    def series(self) -> None:
        eng, ser, lay = self.eng, self.ser, self.layout
        vals, obs_l = eng.site_observables(FIELD_OBSERVABLES)
        totals = eng.lesion_totals()
        for j, name in enumerate(self.sys_names):
            ser[name].append(eng.g[j])
        for nm in SYSTEMIC_OBSERVABLES:
            if nm in ser:
                ser[nm].append(
                    obs_l[0, eng.oi(nm)]
                )  # a function of the shared pools: the same in every site
        ser["lesion_burden"].append(totals.sum())
        ser["visible_lesions"].append(np.count_nonzero(totals > lay.visible_threshold_cells))
        ser["histological_lesions"].append(np.count_nonzero(totals > lay.histology_threshold_cells))
        ser["drug_applied_mg"].append(eng.Y[:, self.applied_col].mean())
        ser["drug_in_skin_mg"].append(eng.Y[:, self.skin_cols].sum(axis=1).mean())
        ser["mean_immune_infiltrate"].append(eng.Y[:, self.infl_cols].sum(axis=1).mean())
        for nm in FIELD_OBSERVABLES:
            ser[f"mean_{nm}"].append(vals[nm].mean())
            ser[f"max_{nm}"].append(vals[nm].max())
        self.lesion_cells.append(totals[self.slot_cols])

    def map(self) -> None:
        eng = self.eng
        vals, _ = eng.site_observables(MAP_OBSERVABLES)
        shape = (self.layout.ny, self.layout.nx)
        m = self.maps
        m["lesion_cells"].append(
            (eng.Y[:, eng.lesion_cols].sum(axis=1) / self.area_mm2).reshape(shape)
        )
        for nm in MAP_OBSERVABLES:
            m[nm].append(vals[nm].reshape(shape))
        m["immune_infiltrate"].append(eng.Y[:, self.infl_cols].sum(axis=1).reshape(shape))
        if self.pigment_col is not None:
            m["pigment_loss"].append(eng.Y[:, self.pigment_col].reshape(shape).copy())


# --------------------------------------------------------------------------- assembly


_SERIES_UNITS = {
    "lesion_burden": "cells",
    "visible_lesions": "lesions",
    "histological_lesions": "lesions",
    "drug_applied_mg": "mg",
    "drug_in_skin_mg": "mg",
    "mean_immune_infiltrate": "cells/mm2",
}
_SERIES_TEXT = {
    "lesion_burden": "abnormal cells of all lesions in the field",
    "visible_lesions": "clinically visible lesions (total cells above visible_threshold_cells)",
    "histological_lesions": "lesions above the histological detection limit",
    "drug_applied_mg": "imiquimod applied to the field, cumulative",
    "drug_in_skin_mg": "imiquimod in the skin layers of the field",
    "mean_immune_infiltrate": "field mean of cd8_ctl + nk_cells + macrophage",
}
_MAP_ATTRS = {
    "lesion_cells": ("cells/mm2", "abnormal lesion cells (all slots) per mm2 of skin"),
    "erythema_score": ("0-3", "erythema score"),
    "lsr_score": ("0-18", "local skin reaction sum score"),
    "immune_infiltrate": ("cells/mm2", "immune infiltrate: cd8_ctl + nk_cells + macrophage"),
    "skin_conc_ug_ml": ("ug/mL", "imiquimod concentration in viable skin"),
    "pigment_loss": ("1", "fraction of melanocytes lost (model state pigment_loss, model/cryo.py)"),
}


def assemble(
    spec: FieldSpec,
    model: Model,
    layout: FieldLayout,
    eng: FieldIntegrator,
    rec: Recorder,
    series_t: np.ndarray,
    map_t: np.ndarray,
    keys: dict[str, float],
    t_assess: float,
    doses: dict[str, int],
    wall: float,
) -> FieldResult:
    """The :class:`FieldResult` of a finished run (times in hours, as the engine keeps them)."""
    sc = spec.scenario_obj
    yc, xc = layout.coords_mm()
    slots = np.array([L.slot for L in layout.lesions], dtype=np.int64)
    units = {st.name: st.unit for st in model.states}
    units.update({o.name: o.unit for o in model.observables})
    descr = {st.name: st.description for st in model.states}
    descr.update({o.name: o.description for o in model.observables})

    tc = {}
    for k, v in rec.ser.items():
        base = (
            k.split("_", 1)[1] if k.startswith(("mean_", "max_")) and k not in _SERIES_UNITS else k
        )
        text = _SERIES_TEXT.get(k) or (
            ("field " + k.split("_")[0] + " of ") if base != k else ""
        ) + descr.get(base, k)
        tc[k] = xr.DataArray(
            np.asarray(v, dtype=float),
            dims="time",
            attrs={"units": _SERIES_UNITS.get(k, units.get(base, "")), "description": text},
        )
    tc["lesion_cells"] = xr.DataArray(
        np.array(rec.lesion_cells, dtype=float).reshape(len(series_t), len(slots)),
        dims=("time", "lesion"),
        attrs={"units": "cells", "description": "total abnormal cells of each lesion"},
    )
    timecourses = xr.Dataset(
        tc,
        coords={
            "time": ("time", series_t / HOURS_PER_DAY, {"units": "days"}),
            "lesion": ("lesion", slots, {"description": "lesion slot"}),
        },
    )

    dv = {
        k: xr.DataArray(
            np.array(v, dtype=np.float32),
            dims=("time", "y", "x"),
            attrs={"units": _MAP_ATTRS[k][0], "description": _MAP_ATTRS[k][1]},
        )
        for k, v in rec.maps.items()
    }
    shape = (layout.ny, layout.nx)
    for q, name in enumerate(eng.tracked):
        u = units.get(name, "")
        dv[f"peak_{name}"] = xr.DataArray(
            eng.peak[:, q].reshape(shape).astype(np.float32),
            dims=("y", "x"),
            attrs={
                "units": u,
                "description": f"highest {name} over the simulation (every accepted step)",
            },
        )
    if "peak_pigment_loss" in dv:
        thr = (
            float(
                layout.single_site_parameters[model.parameter_index("hypopigmentation_threshold")]
            )
            if "hypopigmentation_threshold" in model.parameter_names
            else np.nan
        )
        dv["pigment_change"] = dv["peak_pigment_loss"].copy()
        dv["pigment_change"].attrs = {
            "units": "1",
            "description": (
                "pigment change map: highest fraction of melanocytes lost at each site "
                "(model state pigment_loss: post-inflammatory loss in intensely inflamed, eroded "
                "skin, and freezing). A simple, ASSUMED proxy of hypopigmentation risk: its rate "
                "constants are assumptions, not fitted to pigment data"
            ),
            "hypopigmentation_threshold": thr,
        }
    owner = np.zeros(layout.n_sites, dtype=np.int16)
    for L in layout.lesions:
        owner[L.sites] = L.slot
    dv["lesion_slot"] = xr.DataArray(
        owner.reshape(shape),
        dims=("y", "x"),
        attrs={"description": "lesion slot owning the site (0: none)"},
    )
    maps_ds = xr.Dataset(
        dv,
        coords={
            "time": ("time", map_t / HOURS_PER_DAY, {"units": "days"}),
            "y": ("y", yc, {"units": "mm"}),
            "x": ("x", xc, {"units": "mm"}),
        },
    )
    attrs = {
        "scenario": sc.name,
        "indication": sc.indication,
        "area_cm2": layout.area_cm2,
        "resolution_mm": layout.dx_mm,
        "n_sites": layout.n_sites,
        "seed": int(spec.seed),
        "imiqsim_version": __version__,
        "disclaimer": DISCLAIMER,
    }
    maps_ds.attrs.update(attrs)
    timecourses.attrs.update(attrs)

    lesions = lesion_table(layout, timecourses["lesion_cells"].values, series_t, t_assess)
    info = dict(
        n_sites=layout.n_sites,
        ny=layout.ny,
        nx=layout.nx,
        resolution_mm=layout.dx_mm,
        wall_time_s=wall,
        coupling_steps=eng.n_couplings,
        mean_groups_per_step=eng.leaders_total / max(eng.n_couplings, 1),
        max_groups_per_step=eng.leaders_max,
        integrator_steps=eng.rx_steps,
        site_steps=eng.site_steps,
        diffused_column_steps=eng.diffused_columns,
        horizon_days=float(series_t[-1] / HOURS_PER_DAY),
        group_tol=spec.group_tol,
        **doses,
    )
    return FieldResult(
        spec,
        layout,
        maps_ds,
        timecourses,
        lesions,
        {k: v / HOURS_PER_DAY for k, v in keys.items()},
        info,
    )


def lesion_table(
    layout: FieldLayout, lc: np.ndarray, series_t: np.ndarray, t_assess: float
) -> pd.DataFrame:
    thr, hthr = layout.visible_threshold_cells, layout.histology_threshold_cells
    ia = int(np.searchsorted(series_t, t_assess)) if t_assess <= series_t[-1] else None
    rows = []
    for j, L in enumerate(layout.lesions):
        c = lc[:, j]
        vis0 = bool(c[0] > thr)
        row = {
            "id": L.slot,
            "x_mm": L.x_mm,
            "y_mm": L.y_mm,
            "radius_mm": L.radius_mm,
            "n_sites": L.n_sites,
            "cells_baseline": float(c[0]),
            "visible_baseline": vis0,
            "subclinical_baseline": bool(0 < c[0] <= thr),
            "cells_assessment": np.nan,
            "visible_assessment": None,
            "cleared_at_assessment": None,
            "histologically_clear_at_assessment": None,
            "recurred_in_followup": None,
            "new_in_followup": None,
            "time_to_recurrence_days": np.nan,
            "cells_end": float(c[-1]),
        }
        if ia is not None:
            visa = bool(c[ia] > thr)
            later = np.flatnonzero(c[ia + 1 :] > thr)
            row.update(
                cells_assessment=float(c[ia]),
                visible_assessment=visa,
                cleared_at_assessment=(not visa) if vis0 else None,
                histologically_clear_at_assessment=bool(c[ia] <= hthr),
            )
            if series_t[-1] > t_assess:
                if vis0 and not visa:
                    row["recurred_in_followup"] = bool(later.size)
                    if later.size:
                        row["time_to_recurrence_days"] = float(
                            (series_t[ia + 1 + later[0]] - t_assess) / HOURS_PER_DAY
                        )
                if not vis0 and not visa:
                    row["new_in_followup"] = bool(later.size)
        rows.append(row)
    return pd.DataFrame(rows)
