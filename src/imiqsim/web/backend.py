"""The dashboard's one adapter to the rest of imiqsim.

Every import of imiqsim's internals that the dashboard needs is in this module, so a change of
the package layout touches only this file. The functions here are plain and picklable: the
``run_*`` jobs execute in the worker processes of :mod:`imiqsim.web.jobs` and return small,
picklable results; the rest (presets, form editing, validation, formatting, the model's tables)
run in the server process.

The numbers shown equal the command line's ``--json`` for the same input, because the jobs call
the same functions the CLI calls (:func:`imiqsim.simulate`, :func:`imiqsim.trial.run_trial`,
:func:`imiqsim.compare.comparison_rows`, :func:`imiqsim.spatial.field.simulate_field`).

Examples
--------
>>> from imiqsim.web import backend
>>> "ak-5pct" in backend.preset_names()
True
>>> form = backend.regimen_form(backend.load_scenario_named("ak-5pct"))
>>> form["area_cm2"], form["applications_per_week"]
(25.0, 2)
>>> backend.parse_parameters("tlr7_ec50_ug_ml = 3\\n")
{'tlr7_ec50_ug_ml': 3.0}
"""

from __future__ import annotations

import io
import json
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from imiqsim.errors import ImiqsimError, InputError
from imiqsim.model import CYTOKINES, KNOCKOUTS, SKIN_CELLS, get_model
from imiqsim.outputs.style import DRUG_LAYERS, LSR_COMPONENTS, TLR7_SIGNALS
from imiqsim.scenario import Scenario, list_presets, load_preset, load_scenario
from imiqsim.treatments import product_keys, treatment_class_for
from imiqsim.vocabulary import APPLY, DISCLAIMER, DISCLAIMER_SHORT, FOOTER

__all__ = [
    "CYTOKINES",
    "DRUG_LAYERS",
    "LSR_COMPONENTS",
    "TLR7_SIGNALS",
    "DISCLAIMER",
    "DISCLAIMER_SHORT",
    "FOOTER",
    "FORM_FIELDS",
    "KNOCKOUT_NAMES",
    "PRODUCT_NAMES",
    "SKIN_CELLS",
    "FieldRun",
    "ImiqsimError",
    "InputError",
    "PatientRun",
    "TrialRun",
    "check_patient_inputs",
    "check_trial_inputs",
    "edit_scenario",
    "endpoint_label",
    "equations_markdown",
    "format_difference",
    "format_endpoint",
    "kill_tallies",
    "load_scenario_named",
    "parameter_rows",
    "parse_parameters",
    "patient_files",
    "preset_names",
    "regimen_form",
    "run_field_job",
    "run_patient_job",
    "run_trial_job",
    "scenario_from_upload",
    "trial_report_job",
    "warm_up",
]

#: knockout names, in the model's order
KNOCKOUT_NAMES: tuple[str, ...] = tuple(KNOCKOUTS)
#: cream products: every treatment dosed by a ``[regimen]`` (cryotherapy is chosen by its presets)
PRODUCT_NAMES: tuple[str, ...] = tuple(
    k for k in product_keys() if "regimen" in treatment_class_for(k).table_keys()
)
#: the editable fields of the patient form, as (key, scenario path)
FORM_FIELDS: tuple[tuple[str, str], ...] = (
    ("product", "product"),
    ("area_cm2", "area_cm2"),
    ("applications_per_week", "regimen.applications_per_week"),
    ("max_weeks", "regimen.max_weeks"),
    ("cycle_on_weeks", "regimen.cycle_on_weeks"),
    ("cycle_off_weeks", "regimen.cycle_off_weeks"),
    ("repeat_courses", "regimen.repeat_courses"),
    ("leave_on_hours", "regimen.leave_on_hours"),
)
#: weeks from the end of a course to the visit that decides a repeat course, when none is given
DEFAULT_REPEAT_CHECK_WEEKS = 8.0


# --------------------------------------------------------------------------- scenarios and forms


def preset_names() -> list[str]:
    """The shipped presets (``imiqsim presets``)."""
    return list_presets()


def load_scenario_named(name: str) -> Scenario:
    """A preset by name."""
    return load_preset(name)


def scenario_from_upload(filename: str, data: bytes) -> Scenario:
    """Validate an uploaded scenario TOML file exactly as ``imiqsim simulate FILE`` would.

    The file is written under its own name to a temporary folder, so messages name it as the
    user knows it.
    """
    name = Path(filename or "scenario.toml").name
    if not name.endswith(".toml"):
        raise InputError("scenario", name, "a .toml scenario file")
    with tempfile.TemporaryDirectory(prefix="imiqsim-upload-") as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        try:
            return load_scenario(path)
        except InputError as exc:
            allowed = exc.allowed.replace(str(path), name)
            value = exc.value.replace(str(path), name) if isinstance(exc.value, str) else exc.value
            raise InputError(exc.field, value, allowed) from None


def parse_parameters(text: str) -> dict[str, float]:
    """``NAME=VALUE`` lines (or comma-separated pairs) parsed like the CLI's ``--set`` flags."""
    from imiqsim.cli import parse_set

    items = [p.strip() for line in (text or "").splitlines() for p in line.split(",")]
    return parse_set([p for p in items if p])


def regimen_form(sc: Scenario) -> dict[str, Any]:
    """The patient form's values for a scenario (None where a field does not apply)."""
    reg = sc.regimen
    form: dict[str, Any] = {"product": sc.product, "area_cm2": float(sc.area_cm2)}
    if reg is None:
        form.update(
            applications_per_week=None,
            max_weeks=None,
            cycle_on_weeks=None,
            cycle_off_weeks=None,
            repeat_courses=None,
            leave_on_hours=None,
        )
        return form
    per_week = reg.applications_per_week
    if per_week is None:
        per_week = len(reg.dosing_weekdays)
    form.update(
        applications_per_week=int(per_week),
        max_weeks=float(reg.max_weeks),
        cycle_on_weeks=int(reg.cycle_on_weeks or 0),
        cycle_off_weeks=int(reg.cycle_off_weeks or 0),
        repeat_courses=int(reg.repeat_courses),
        leave_on_hours=float(reg.leave_on_hours),
    )
    return form


def edit_scenario(sc: Scenario, form: Mapping[str, Any]) -> Scenario:
    """Apply the form's changed fields to ``sc`` (through :meth:`Scenario.with_overrides`).

    Only fields whose value differs from :func:`regimen_form` are changed, so an untouched form
    gives back the scenario exactly (a preset's named weekdays stay as they are). A cycle
    length of 0 means no cycles. Raises :class:`InputError` naming the scenario field.
    """
    current = regimen_form(sc)
    changes: dict[str, Any] = {}
    for key, path in FORM_FIELDS:
        if key not in form or form[key] == current.get(key):
            continue
        value = form[key]
        if path.startswith("regimen.") and sc.regimen is None:
            continue  # cryotherapy: the cream regimen does not apply
        if key in ("cycle_on_weeks", "cycle_off_weeks") and value == 0:
            value = None
        if key == "repeat_courses" and value and sc.regimen.repeat_check_weeks is None:
            changes["regimen.repeat_check_weeks"] = DEFAULT_REPEAT_CHECK_WEEKS
        if isinstance(value, int) and key in ("area_cm2", "max_weeks", "leave_on_hours"):
            value = float(value)
        changes[path] = value
    if not changes:
        return sc
    return sc.with_overrides(name=f"{sc.name}-edited", **changes)


def check_patient_inputs(
    sc: Scenario, overrides: Mapping[str, float], knockouts: Iterable[str]
) -> None:
    """Refuse unknown parameter names or knockouts before a job is queued (InputError)."""
    sc.model_parameters(get_model(), dict(overrides), list(knockouts))


def check_trial_inputs(arms: Sequence[Any], seed: Any, compare: bool = False) -> None:
    """The checks ``imiqsim trial`` / ``imiqsim compare`` make before :func:`run_trial`.

    :func:`run_trial` itself refuses bad patient counts and follow-up (in the worker, with the
    same messages as the CLI).
    """
    if compare and len(arms) < 2:
        raise InputError("arms", list(arms), "at least two arms to compare, e.g. ak-5pct ak-cryo")
    if not arms:
        raise InputError("arms", list(arms), "at least one preset or scenario file")
    if not isinstance(seed, int) or seed < 0:
        raise InputError("--seed", seed, "a non-negative whole number")


# --------------------------------------------------------------------------- jobs (worker side)


def warm_up() -> None:
    """Load the compiled kernel (from the disk cache) so a worker's first job is fast."""
    import imiqsim

    imiqsim.simulate("ak-5pct", days=1)


@dataclass
class PatientRun:
    """One simulated patient, as the dashboard shows it."""

    label: str
    summary: dict
    dataset: xr.Dataset
    dose_days: list[float]
    visible_threshold: float
    warnings: list[str] = field(default_factory=list)

    @property
    def summary_json(self) -> str:
        """The summary exactly as ``imiqsim simulate ... --json`` prints it."""
        return json.dumps(self.summary)


def run_patient_job(
    sc: Scenario,
    overrides: Mapping[str, float] | None = None,
    knockouts: Sequence[str] = (),
    label: str = "",
) -> PatientRun:
    """``imiqsim.simulate(sc, set=overrides, knockouts=knockouts)`` plus what the plots need."""
    import imiqsim

    res = imiqsim.simulate(sc, set=dict(overrides or {}), knockouts=list(knockouts))
    m = get_model()
    p = sc.model_parameters(m, dict(overrides or {}), list(knockouts))
    ev = sc.events()
    dose_days = [float(t) / 24.0 for t, k in zip(ev.times_h, ev.kinds, strict=True) if k == APPLY]
    return PatientRun(
        label=label or sc.name,
        summary=res.summary,
        dataset=res.dataset,
        dose_days=dose_days,
        visible_threshold=float(p[m.parameter_index("visible_threshold_cells")]),
        warnings=list(sc.warnings()),
    )


def patient_files(run: PatientRun) -> dict[str, bytes]:
    """The files ``imiqsim simulate --out`` writes (NetCDF, CSV, JSON), as bytes by name."""
    with tempfile.TemporaryDirectory(prefix="imiqsim-web-") as tmp:
        nc = Path(tmp) / "timecourse.nc"
        run.dataset.to_netcdf(nc, engine="h5netcdf")
        nc_bytes = nc.read_bytes()
    buf = io.StringIO()
    run.dataset.to_dataframe().to_csv(buf)
    return {
        "timecourse.nc": nc_bytes,
        "timecourse.csv": buf.getvalue().encode("utf-8"),
        "summary.json": json.dumps(run.summary, indent=2).encode("utf-8"),
    }


#: trial traces shown as percentile bands: (variable, label, log axis)
BAND_VARIABLES: tuple[tuple[str, str, bool], ...] = (
    ("lesion_burden", "lesion burden (cells)", True),
    ("visible_lesions", "visible lesions", False),
    ("lsr_score", "LSR score (0-18)", False),
    ("ifn_alpha", "IFN-alpha (pg/mL)", True),
    ("cd8_ctl", "CD8 CTL in skin (cells/mm2)", True),
)
BAND_PERCENTILES = (5, 25, 50, 75, 95)


@dataclass
class TrialRun:
    """A virtual trial as the dashboard shows it (every number from :func:`run_trial`)."""

    summary: dict
    t_days: list[np.ndarray]
    bands: list[dict[str, np.ndarray]]
    waterfall: list[pd.DataFrame]
    rows: list[dict] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)
    #: the :class:`imiqsim.trial.TrialResult`, kept for the HTML report
    result: Any = field(default=None, repr=False)
    command: str = ""

    @property
    def summary_json(self) -> str:
        """The summary exactly as ``imiqsim trial ... --json`` prints it."""
        return json.dumps(self.summary)


def _bands(arm) -> dict[str, np.ndarray]:
    ok = (arm.outcomes["status"] == 0).to_numpy()
    out = {}
    for var, _, _ in BAND_VARIABLES:
        x = np.asarray(arm.traces[var], dtype=float)[ok]
        if x.shape[0] == 0:
            out[var] = np.full((len(BAND_PERCENTILES), x.shape[1]), np.nan)
        else:
            out[var] = np.nanpercentile(x, BAND_PERCENTILES, axis=0)
    return out


def _waterfall(arm) -> pd.DataFrame:
    df = arm.outcomes[arm.outcomes["status"] == 0]
    red = df["lesion_reduction"].to_numpy(dtype=float) * 100.0
    cc = df["complete_clearance"].to_numpy(dtype=float) == 1.0
    pid = df["patient"].to_numpy()
    keep = np.isfinite(red)
    red, cc, pid = red[keep], cc[keep], pid[keep]
    order = np.lexsort((~cc, -red))  # largest reduction first; clearers first among ties
    return pd.DataFrame(
        {"patient": pid[order], "reduction_pct": red[order], "complete_clearance": cc[order]}
    )


def run_trial_job(
    arms: Sequence[str | Scenario],
    patients: int,
    seed: int,
    followup_years: float = 1.0,
    compare: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> TrialRun:
    """:func:`imiqsim.trial.run_trial` in one process (results do not depend on the worker count).

    With ``compare`` the result also carries :func:`imiqsim.compare.comparison_rows`, and its
    summary is :func:`imiqsim.compare.comparison_dict` (``imiqsim compare --json``); otherwise
    the summary is ``imiqsim trial --json``'s and the Parquet outcomes are attached (the HTML
    report takes seconds more: :func:`trial_report_job`).
    """
    from imiqsim.compare import comparison_dict, comparison_rows
    from imiqsim.outputs.trial import outcomes_frame
    from imiqsim.trial import run_trial

    tr = run_trial(
        list(arms),
        patients=patients,
        seed=seed,
        workers=1,
        followup_years=followup_years,
        progress=progress,
    )
    files: dict[str, bytes] = {}
    rows: list[dict] = []
    command = ""
    if compare:
        summary = comparison_dict(tr)
        rows = comparison_rows(tr)
    else:
        summary = tr.to_dict()
        buf = io.BytesIO()
        outcomes_frame(tr).to_parquet(buf, index=False)
        files["outcomes.parquet"] = buf.getvalue()
        names = [a if isinstance(a, str) else a.name for a in arms]
        command = " ".join(
            ["imiqsim", "trial", *names, "--patients", str(patients), "--seed", str(seed)]
        )
        if not all(isinstance(a, str) for a in arms):
            command += " (dashboard; edited scenarios)"
    return TrialRun(
        summary=summary,
        t_days=[np.asarray(a.t_days, dtype=float) for a in tr.arms],
        bands=[_bands(a) for a in tr.arms],
        waterfall=[_waterfall(a) for a in tr.arms],
        rows=rows,
        files=files,
        result=None if compare else tr,
        command=command,
    )


def trial_report_job(run: TrialRun) -> bytes:
    """The self-contained ``report.html`` of a trial, as ``imiqsim trial --out`` writes it."""
    from imiqsim.outputs.trial_report import write_trial_report

    with tempfile.TemporaryDirectory(prefix="imiqsim-web-") as tmp:
        return write_trial_report(run.result, tmp, command=run.command).read_bytes()


@dataclass
class FieldRun:
    """A simulated skin field: maps over time and the lesion table."""

    maps: xr.Dataset
    lesions: pd.DataFrame
    key_times_days: dict


#: map variables of the field page: (variable, label)
FIELD_VARIABLES: tuple[tuple[str, str], ...] = (
    ("lesion_cells", "lesion cells (cells/mm2)"),
    ("erythema_score", "erythema (0-3)"),
    ("immune_infiltrate", "immune infiltrate (cells/mm2)"),
    ("skin_conc_ug_ml", "imiquimod in skin (ug/mL)"),
    ("pigment_loss", "pigment loss (0-1)"),
)


def run_field_job(
    scenario: str | Scenario,
    resolution_mm: float,
    seed: int = 0,
    followup_days: float = 365.0,
    progress: Callable[[int, int], None] | None = None,
) -> FieldRun:
    """:func:`imiqsim.spatial.field.simulate_field` with the CLI's ``imiqsim field`` options."""
    from imiqsim.spatial.field import FieldSpec, simulate_field

    if not isinstance(seed, int) or seed < 0:
        raise InputError("--seed", seed, "a non-negative whole number")
    spec = FieldSpec(
        scenario=scenario, resolution_mm=resolution_mm, seed=seed, followup_days=followup_days
    )
    res = simulate_field(spec)
    return FieldRun(res.maps, res.lesions, dict(res.key_times_days))


# --------------------------------------------------------------------------- tables and text


def kill_tallies() -> dict[str, tuple[str, str]]:
    """Kill counters: state -> (label, kind background|immune|direct)."""
    return dict(get_model().kill_tallies)


def parameter_rows() -> list[dict]:
    """The parameter table (``imiqsim parameters --json``)."""
    return get_model().parameter_table()


def equations_markdown() -> str:
    """The model's equations (``imiqsim equations``), generated from its definition."""
    from imiqsim.docs import equations_markdown as eqs

    return eqs()


def endpoint_label(key: str) -> str:
    """The report's label of an endpoint key."""
    from imiqsim.trial.endpoints import ENDPOINTS

    return next((e.label for e in ENDPOINTS if e.name == key), key.replace("_", " "))


def format_endpoint(key: str, ep: dict) -> str:
    """An endpoint's table text, as in ``report.html``: ``44.3% (42.1-46.4)``."""
    from imiqsim.outputs.trial_report import format_endpoint as fmt

    return fmt(key, ep)


def format_difference(d: dict) -> str:
    """A between-arm difference's table text, as in ``report.html``."""
    from imiqsim.outputs.formatting import format_difference as fmt

    return fmt(d)
