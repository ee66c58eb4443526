"""The files of one simulated patient: time courses (NetCDF, CSV), the summary (JSON), the cascade.

>>> import imiqsim
>>> from imiqsim.outputs.patient import write_patient_outputs
>>> res = imiqsim.simulate("ak-5pct", days=7)                     # doctest: +SKIP
>>> [p.name for p in write_patient_outputs(res, "out/ak")]        # doctest: +SKIP
['timecourse.nc', 'timecourse.csv', 'summary.json', 'cascade.png']

The picture is drawn last, so a plotting failure never loses the data files.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from imiqsim.outputs.files import atomic_path, figure_step, write_text_atomic
from imiqsim.vocabulary import APPLY, HOURS_PER_DAY

if TYPE_CHECKING:
    from imiqsim.scenario import Scenario
    from imiqsim.simulation import SimulationResult

__all__ = [
    "CASCADE_NAME",
    "CSV_NAME",
    "NETCDF_NAME",
    "SUMMARY_NAME",
    "dose_days",
    "write_cascade",
    "write_patient_outputs",
]

NETCDF_NAME = "timecourse.nc"
CSV_NAME = "timecourse.csv"
SUMMARY_NAME = "summary.json"
CASCADE_NAME = "cascade.png"


def dose_days(scenario: Scenario) -> list[float]:
    """Days of the scenario's scheduled applications (APPLY events)."""
    ev = scenario.events()
    return [t / HOURS_PER_DAY for t, k in zip(ev.times_h, ev.kinds, strict=True) if k == APPLY]


def write_cascade(res: SimulationResult, path: str | os.PathLike) -> Path:
    """Draw the patient's cascade figure (:func:`~imiqsim.outputs.patient_figures.plot_cascade`).

    Application days are drawn as ticks and the patient's visibility
    threshold (with the run's parameter overrides) as a line.
    """
    from imiqsim.model import get_model
    from imiqsim.outputs.patient_figures import plot_cascade

    sc = res.scenario
    m = get_model()
    p = sc.model_parameters(m, dict(res.summary.get("parameter_overrides") or {}), ())
    thr = float(p[m.parameter_index("visible_threshold_cells")])
    plot_cascade(
        res.dataset,
        path,
        title=f"{sc.name}: {sc.description or ''}"[:110],
        dose_times_days=dose_days(sc),
        visible_threshold=thr,
    )
    return Path(path)


def write_patient_outputs(
    res: SimulationResult,
    out_dir: str | os.PathLike,
    *,
    on_figure_error: Callable[[str], None] | None = None,
) -> list[Path]:
    """Write ``timecourse.nc``, ``timecourse.csv``, ``summary.json``, then ``cascade.png``.

    Parameters
    ----------
    res : imiqsim.simulation.SimulationResult
        One simulated patient (:func:`imiqsim.simulate`).
    out_dir : path
        Folder, created if needed.
    on_figure_error : callable, optional
        Receives one line if the picture fails (the data files stay, the
        picture is left out of the returned paths); without it the failure
        is raised after the data files are written.

    Returns
    -------
    list of Path
        The files written, in that order.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    nc = out / NETCDF_NAME
    with atomic_path(nc) as tmp:
        res.dataset.to_netcdf(tmp, engine="h5netcdf")
    written.append(nc)
    csv = out / CSV_NAME
    with atomic_path(csv) as tmp:
        res.dataset.to_dataframe().to_csv(tmp)
    written.append(csv)
    js = out / SUMMARY_NAME
    write_text_atomic(js, json.dumps(res.summary, indent=2))
    written.append(js)
    png = out / CASCADE_NAME
    if figure_step(lambda: write_cascade(res, png), f"draw {png}", on_figure_error) is not None:
        written.append(png)
    return written
