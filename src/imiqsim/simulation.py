"""Simulate one patient through the whole chain: ``imiqsim.simulate(...)``.

>>> import imiqsim
>>> res = imiqsim.simulate("ak-5pct", days=7)
>>> res.summary["lesion_burden_initial"] > 0
True
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from imiqsim import __version__
from imiqsim.engine.run import BatchResult, run_batch
from imiqsim.errors import ImiqsimError, InputError
from imiqsim.model import CYTOKINES, Model, get_model
from imiqsim.scenario import Scenario, resolve
from imiqsim.vocabulary import DISCLAIMER, HOURS_PER_DAY, STATUS_TEXT

__all__ = [
    "DISCLAIMER",
    "SimulationFailed",
    "SimulationResult",
    "parameters_for",
    "simulate",
    "summarise",
    "to_dataset",
]


class SimulationFailed(ImiqsimError):
    """The integrator could not complete (status code other than ok)."""


@dataclass
class SimulationResult:
    """One patient's time courses and summary.

    Attributes
    ----------
    scenario : Scenario
        The validated scenario that was simulated.
    dataset : xarray.Dataset
        Time courses; dimension ``time`` in days; one variable per state and
        observable, with ``units`` and ``description`` attributes.
    summary : dict
        Key outcomes (see :func:`summarise`).
    """

    scenario: Scenario
    dataset: xr.Dataset
    summary: dict
    batch: BatchResult = field(repr=False)

    def to_json(self) -> str:
        return json.dumps(self.summary, indent=2)


def _as_scenario(scenario: Scenario | str) -> Scenario:
    if isinstance(scenario, Scenario):
        return scenario
    if isinstance(scenario, str):
        return resolve(scenario)
    raise InputError("scenario", scenario, "a preset name, a .toml path or an imiqsim.Scenario")


def parameters_for(
    model: Model,
    sc: Scenario,
    overrides: Mapping[str, float] | None = None,
    knockouts: Iterable[str] = (),
) -> np.ndarray:
    """The parameter vector of a scenario's typical patient (:meth:`Scenario.model_parameters`)."""
    return sc.model_parameters(model, dict(overrides or {}), knockouts)


def simulate(
    scenario: Scenario | str,
    *,
    days: float | None = None,
    set: Mapping[str, float] | None = None,  # noqa: A002 - mirrors the CLI flag --set
    knockouts: Iterable[str] = (),
    output_every_hours: float = 1.0,
    rtol: float = 1e-6,
    method: str = "auto",
) -> SimulationResult:
    """Simulate one (typical) patient for a preset or scenario.

    Parameters
    ----------
    scenario : str or Scenario
        Preset name (``imiqsim presets``), path to a TOML scenario, or a Scenario.
    days : float, optional
        Simulated horizon; default: the scenario's (course + assessment).
    set : mapping, optional
        Parameter overrides ``{name: value}`` (see ``imiqsim parameters``).
    knockouts : iterable of str
        Stages to knock out or deplete: any key of :data:`imiqsim.model.KNOCKOUTS`
        (tlr7, pdc, nk, cd8, ...).
    output_every_hours : float
        Spacing of the stored time grid.
    rtol : float
        Relative tolerance of the integrator.
    method : str
        ``"auto"`` (the default: explicit Dormand-Prince, switching to Rodas4
        if it detects stiffness), ``"dp5"`` (explicit only) or
        ``"rosenbrock"`` (Rodas4, for stiff parameter overrides such as very
        fast rate constants); see ``docs/engine.md``.

    Returns
    -------
    SimulationResult
    """
    sc = _as_scenario(scenario)
    model = get_model()
    if days is not None:
        if not np.isfinite(days) or days <= 0 or days > 3650:
            raise InputError("days", days, "a number of days in (0, 3650]")
    horizon_h = float(days) * HOURS_PER_DAY if days is not None else sc.horizon_hours()
    if not (0 < output_every_hours <= 168):
        raise InputError("output_every_hours", output_every_hours, "a number of hours in (0, 168]")
    from imiqsim.engine.run import check_output_grid

    check_output_grid(horizon_h, output_every_hours)  # before np.arange allocates the grid
    P = parameters_for(model, sc, set, knockouts)[None, :]
    # the pad keeps a horizon that is a whole number of steps on the grid; never more than half a
    # step, so a spacing far below 1e-9 h cannot make the grid longer than the check allowed
    t = np.arange(0.0, horizon_h + min(1e-9, 0.5 * output_every_hours), output_every_hours)
    if t[-1] < horizon_h:
        t = np.append(t, horizon_h)
    res = run_batch(model, P, sc.events(), t, rtol=rtol, method=method)
    if res.status[0] != 0:
        raise SimulationFailed(
            f"integration failed ({STATUS_TEXT.get(int(res.status[0]), res.status[0])}); "
            "check parameter overrides for absurd values"
            + (
                "; very fast rate constants make the model stiff: try method='auto' or 'rosenbrock'"
                if method == "dp5"
                else ""
            )
        )
    ds = to_dataset(model, res, 0, sc)
    summary = summarise(
        model, res, 0, sc, list(sc.knockouts) + list(knockouts), {**sc.parameters, **(set or {})}
    )
    return SimulationResult(sc, ds, summary, res)


def to_dataset(model: Model, res: BatchResult, n: int, sc: Scenario | None = None) -> xr.Dataset:
    """Time courses of patient ``n`` as an xarray Dataset (time in days)."""
    data = {}
    for kind, items, values in (
        ("state", model.states, res.Y[n]),
        ("observable", model.observables, res.observables[n]),
    ):
        for i, x in enumerate(items):
            attrs = {"units": x.unit, "description": x.description, "kind": kind, "stage": x.module}
            data[x.name] = xr.DataArray(values[:, i], dims="time", attrs=attrs)
    ds = xr.Dataset(data, coords={"time": ("time", res.t_h / HOURS_PER_DAY, {"units": "days"})})
    ds.attrs["imiqsim_version"] = __version__
    ds.attrs["disclaimer"] = DISCLAIMER
    if sc is not None:
        ds.attrs["scenario"] = sc.name
        ds.attrs["indication"] = sc.indication
    return ds


def summarise(
    model: Model, res: BatchResult, n: int, sc: Scenario, knockouts=(), overrides=None
) -> dict:
    """Key outcomes of one simulated patient (JSON-serialisable)."""
    oi = model.observable_index
    obs = res.observables[n]
    peak = dict(zip(res.tracked, res.peak[n], strict=True))
    lb = obs[:, oi("lesion_burden")]
    vis = obs[:, oi("visible_lesions")]
    cleared = bool(vis[-1] < 0.5)
    t_clear = res.cleared_at_h[n]
    ttc = float(t_clear / HOURS_PER_DAY) if (cleared and t_clear >= 0) else None
    applied = float(res.Y[n, -1, model.state_index("applied")])
    urine = float(res.Y[n, -1, model.state_index("urine")])
    return {
        "scenario": sc.name,
        "indication": sc.indication,
        "days": float(res.t_h[-1] / HOURS_PER_DAY),
        "knockouts": sorted(set(knockouts)),
        "parameter_overrides": dict(overrides or {}),
        "lesion_burden_initial": float(lb[0]),
        "lesion_burden_final": float(lb[-1]),
        "visible_lesions_initial": int(round(vis[0])),
        "visible_lesions_final": int(round(vis[-1])),
        "lesion_cleared": cleared,
        "time_to_clearance_days": ttc,
        "histologically_clear": bool(obs[-1, oi("histological_lesions")] < 0.5),
        "applications_given": int(res.applications_given[n]),
        "doses_skipped_for_rest": int(res.doses_skipped_for_rest[n]),
        "drug_applied_mg": applied,
        "serum_cmax_ng_ml": float(peak["serum_conc_ng_ml"]),
        "urine_fraction_of_applied": (urine / applied) if applied > 0 else 0.0,
        "peak": {c: float(peak[c]) for c in CYTOKINES},
        "peak_units": "pg/mL (local tissue)",
        "lsr_max": float(peak["lsr_score"]),
        "erythema_max": float(peak["erythema_score"]),
        "flu_like_probability": float(peak["flu_like_probability"]),
        "memory_t_cells_final": float(res.Y[n, -1, model.state_index("memory_t")]),
        "version": __version__,
        "disclaimer": DISCLAIMER,
    }
