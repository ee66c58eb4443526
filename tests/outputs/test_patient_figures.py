"""Figures of one simulated patient: imiqsim.outputs.patient_figures (and the cascade file)."""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import numpy as np
import pytest
import xarray as xr
from matplotlib.figure import Figure

from imiqsim.engine.run import run_batch
from imiqsim.errors import InputError
from imiqsim.model import get_model
from imiqsim.outputs.patient_figures import (
    CASCADE_N_AXES,
    LESIONS_N_AXES,
    plot_cascade,
    plot_lesions,
)
from imiqsim.vocabulary import FOOTER

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
WEEKS = 16
HORIZON_H = 24 * 7 * 24


@dataclass
class _Events:
    times_h: np.ndarray
    kinds: np.ndarray
    amounts_mg: np.ndarray
    gates: np.ndarray


def _events(amount_mg: float) -> _Events:
    """AK label: twice a week (days 0 and 3) at 22:00, washed off 8 h later, 16 weeks."""
    ts, kinds, amounts = [], [], []
    for w in range(WEEKS):
        for d in (0, 3):
            t = (w * 7 + d) * 24 + 22
            ts += [t, t + 8]
            kinds += [1, 2]
            amounts += [amount_mg, 0.0]
    n = len(ts)
    return _Events(np.array(ts, float), np.array(kinds), np.array(amounts, float), np.zeros(n, int))


def _dose_days() -> list[float]:
    return [((w * 7 + d) * 24 + 22) / 24.0 for w in range(WEEKS) for d in (0, 3)]


def _to_dataset(model, res, n: int) -> xr.Dataset:
    try:
        from imiqsim.simulation import to_dataset
    except ImportError:  # pragma: no cover - simulation.py imports scenario.py
        to_dataset = None
    if to_dataset is not None:
        return to_dataset(model, res, n)
    data = {}
    for i, s in enumerate(model.states):  # pragma: no cover
        data[s.name] = xr.DataArray(
            res.Y[n, :, i],
            dims="time",
            attrs={
                "units": s.unit,
                "description": s.description,
                "kind": "state",
                "stage": s.module,
            },
        )
    for j, o in enumerate(model.observables):  # pragma: no cover
        data[o.name] = xr.DataArray(
            res.observables[n, :, j],
            dims="time",
            attrs={
                "units": o.unit,
                "description": o.description,
                "kind": "observable",
                "stage": o.module,
            },
        )
    return xr.Dataset(data, coords={"time": ("time", res.t_h / 24.0, {"units": "days"})})


@pytest.fixture(scope="module")
def runs():
    """Typical AK patient, the same with effector knockouts, and a vehicle (no drug) run."""
    m = get_model()
    t = np.arange(0, HORIZON_H + 1, 1.0)
    no_rest = {"lsr_rest_threshold": 100.0}  # every dose given, so dose ticks can be counted
    P = np.stack(
        [
            m.parameter_vector("AK", "face", 25.0, overrides=no_rest),
            m.parameter_vector(
                "AK",
                "face",
                25.0,
                overrides=no_rest,
                knockouts=["tlr7", "pdc", "macrophage", "dendritic", "nk", "cd8", "memory"],
            ),
        ]
    )
    r = run_batch(m, P, _events(12.5), t)
    rv = run_batch(m, P[:1], _events(0.0), t)
    assert (r.status == 0).all() and (rv.status == 0).all()
    return {
        "treated": _to_dataset(m, r, 0),
        "knockout": _to_dataset(m, r, 1),
        "vehicle": _to_dataset(m, rv, 0),
    }


def _assert_png(path, min_bytes=40_000):
    assert path.exists()
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > min_bytes


def _png_size(path):
    # width and height are the first two fields of the IHDR chunk
    data = path.read_bytes()
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_cascade_figure_and_png(runs, tmp_path):
    ds = runs["treated"]
    out = tmp_path / "sub" / "cascade.png"
    t0 = time.perf_counter()
    fig = plot_cascade(ds, out, dose_times_days=_dose_days(), visible_threshold=5000.0)
    elapsed = time.perf_counter() - t0
    assert isinstance(fig, Figure)
    assert len(fig.axes) == CASCADE_N_AXES == 12
    _assert_png(out, min_bytes=100_000)
    w, h = fig.get_size_inches()
    assert _png_size(out) == (round(w * 120), round(h * 120))  # dpi 120
    assert any(FOOTER in t.get_text() for t in fig.texts)
    assert "research and teaching software, not a medical device" in FOOTER
    # a generous bound: about 1.5 s on a quiet machine, the budget is 3 s
    assert elapsed < 10.0


def test_cascade_axes_content(runs):
    ds = runs["treated"]
    fig = plot_cascade(ds, title="AK, face, 25 cm2", visible_threshold=5000.0)
    drug, _tlr7, cyto, cells, lesions, lsr, kills, _systemic = fig.axes[:8]
    assert fig.get_suptitle() == "AK, face, 25 cm2"
    for ax in (drug, cyto, cells, lesions):
        assert ax.get_yscale() == "log"
        lo, hi = ax.get_ylim()
        assert 0 < lo < hi and np.isfinite(hi)
    # units come from the dataset attrs
    assert "[mg]" in drug.get_ylabel()
    assert "pg/mL" in cyto.get_ylabel()
    assert "cells/mm" in cells.get_ylabel()
    assert "cells" in lesions.get_ylabel()
    assert "days" in lsr.get_xlabel()
    # the visibility threshold is drawn in the lesion panel
    assert any(np.allclose(line.get_ydata(), 5000.0) for line in lesions.get_lines())
    # kill shares add up to 100 %
    shares = [p.get_width() for p in kills.patches]
    # background + the five immune routes (direct kills only under cryotherapy or 5-FU)
    assert len(shares) == 6 and sum(shares) == pytest.approx(100.0)
    # every time panel has a legend (on the panel or on its right-hand twin)
    assert len([a for a in fig.axes if a.get_legend() is not None]) >= 7


def _kill_labels(fig) -> list[str]:
    kills = fig.axes[6]
    return [t.get_text() for t in kills.get_yticklabels()]


def test_kill_panel_reads_the_models_tallies(runs):
    """Every background and immune tally is a bar; a direct one only where it killed."""
    tallies = get_model().kill_tallies
    ds = runs["treated"]
    labels = _kill_labels(plot_cascade(ds))
    shown = [lab for lab, kind in tallies.values() if kind != "direct"]
    assert sorted(labels) == sorted(shown)
    direct = next(name for name, (_, kind) in tallies.items() if kind == "direct")
    frozen = ds.assign({direct: ds[direct] + 1e5})  # as if that treatment had killed cells
    fig = plot_cascade(frozen)
    assert tallies[direct][0] in _kill_labels(fig)
    shares = [p.get_width() for p in fig.axes[6].patches]
    assert len(shares) == len(shown) + 1 and sum(shares) == pytest.approx(100.0)


def test_old_import_path_is_the_same_code():
    import imiqsim.plots as old

    assert old.plot_cascade is plot_cascade and old.FOOTER == FOOTER


def test_cascade_file_is_written_after_the_data(tmp_path, monkeypatch):
    import imiqsim
    import imiqsim.outputs.patient_figures as figures
    from imiqsim.outputs.patient import write_patient_outputs

    def boom(*args, **kwargs):
        raise RuntimeError("no figure today")

    res = imiqsim.simulate("ak-5pct", days=3)
    monkeypatch.setattr(figures, "plot_cascade", boom)
    messages: list[str] = []
    paths = write_patient_outputs(res, tmp_path, on_figure_error=messages.append)
    assert [p.name for p in paths] == ["timecourse.nc", "timecourse.csv", "summary.json"]
    assert all(p.stat().st_size > 0 for p in paths)
    assert len(messages) == 1 and "no figure today" in messages[0]
    with pytest.raises(RuntimeError, match="no figure today"):
        write_patient_outputs(res, tmp_path / "strict")
    assert (tmp_path / "strict" / "summary.json").exists()


def test_cascade_default_title_uses_attrs(runs):
    ds = runs["treated"].assign_attrs(scenario="ak-5pct", indication="AK")
    fig = plot_cascade(ds)
    assert "ak-5pct" in fig.get_suptitle()


@pytest.mark.parametrize("which", ["vehicle", "knockout"])
def test_cascade_all_zero_series(runs, which, tmp_path):
    ds = runs[which]
    if which == "vehicle":
        assert float(ds["film"].max()) == 0.0 and float(ds["serum_conc_ng_ml"].max()) == 0.0
    out = tmp_path / f"{which}.png"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = plot_cascade(ds, out, dose_times_days=_dose_days())
    assert len(fig.axes) == CASCADE_N_AXES
    _assert_png(out)
    for ax in fig.axes:
        lo, hi = ax.get_ylim()
        assert np.isfinite([lo, hi]).all() and hi > lo
        if ax.get_yscale() == "log":
            assert lo > 0


def test_cascade_forced_zero_and_nan_series(runs, tmp_path):
    ds = runs["treated"].copy(deep=True)
    for name in ("cd8_ctl", "cd4_th1", "pdc", "memory_t", "t_effector", "ifn_alpha"):
        ds[name][:] = 0.0
    ds["il6"][5:50] = np.nan
    for name in [v for v in ds.data_vars if str(v).startswith("killed_")]:
        ds[name][:] = 0.0
    fig = plot_cascade(ds, tmp_path / "z.png")
    _assert_png(tmp_path / "z.png")
    assert sum(p.get_width() for p in fig.axes[6].patches) == 0.0


@pytest.mark.parametrize("n_points", [3, 1])
def test_few_time_points(runs, n_points, tmp_path):
    ds = runs["treated"]
    idx = [0, ds.sizes["time"] // 2, ds.sizes["time"] - 1][:n_points]
    small = ds.isel(time=idx)
    fig = plot_cascade(
        small, tmp_path / "few.png", dose_times_days=_dose_days(), visible_threshold=5000
    )
    assert len(fig.axes) == CASCADE_N_AXES
    _assert_png(tmp_path / "few.png", min_bytes=20_000)
    fig = plot_lesions(small, tmp_path / "few_lesions.png")
    assert len(fig.axes) == LESIONS_N_AXES
    _assert_png(tmp_path / "few_lesions.png", min_bytes=10_000)


def test_missing_variables_are_skipped(runs, tmp_path):
    ds = runs["treated"][["film", "lesion_burden", "visible_lesions", "lsr_score"]]
    fig = plot_cascade(ds, tmp_path / "partial.png")
    assert len(fig.axes) == CASCADE_N_AXES
    _assert_png(tmp_path / "partial.png", min_bytes=20_000)


def test_plot_lesions(runs, tmp_path):
    ds = runs["treated"]
    out = tmp_path / "lesions.png"
    fig = plot_lesions(
        ds, out, dose_times_days="auto", visible_threshold=5000.0, histology_threshold=200.0
    )
    assert isinstance(fig, Figure)
    assert len(fig.axes) == LESIONS_N_AXES == 2
    _assert_png(out)
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    labels = ax.get_legend_handles_labels()[1]
    n_slots = len(
        [
            v
            for v in ds.data_vars
            if str(v).startswith("lesion_") and str(v)[7:].isdigit() and float(ds[v].max()) > 0
        ]
    )  # empty slots are left out of the legend
    assert n_slots >= 1
    assert sum(lab.startswith("lesion ") for lab in labels) == n_slots
    assert any("visible above 5,000" in lab for lab in labels)
    # "auto" recovers one tick per application from the cumulative `applied` state
    ticks = [c for c in ax.collections if c.get_segments()]
    assert len(ticks) == 1 and len(ticks[0].get_segments()) == 2 * WEEKS


def test_plot_lesions_vehicle(runs, tmp_path):
    fig = plot_lesions(runs["vehicle"], tmp_path / "v.png", dose_times_days="auto")
    assert len(fig.axes) == LESIONS_N_AXES
    _assert_png(tmp_path / "v.png")
    # no drug applied: no dose ticks inferred
    assert not [c for c in fig.axes[0].collections if len(c.get_segments())]


def test_bad_input():
    with pytest.raises(InputError):
        plot_cascade(np.zeros(3))
    two_d = xr.Dataset(
        {"film": (("patient", "time"), np.zeros((2, 3)))}, coords={"time": [0.0, 1.0, 2.0]}
    )
    with pytest.raises(InputError):
        plot_cascade(two_d)
    with pytest.raises(InputError):
        plot_lesions(xr.Dataset({"film": ("x", np.zeros(3))}))
    ds = xr.Dataset({"film": ("time", np.zeros(3))}, coords={"time": [0.0, 1.0, 2.0]})
    with pytest.raises(InputError):
        plot_cascade(ds, dose_times_days="weekly")


def test_cascade_file_draws_the_runs_own_threshold(tmp_path, monkeypatch):
    """A --set of the visibility threshold moves the line in the written cascade."""
    import imiqsim
    import imiqsim.outputs.patient_figures as figures
    from imiqsim.outputs.patient import write_cascade

    seen = {}
    real = figures.plot_cascade

    def spy(ds, path=None, **kw):
        seen.update(kw)
        return real(ds, path, **kw)

    monkeypatch.setattr(figures, "plot_cascade", spy)
    res = imiqsim.simulate("ak-5pct", days=3, set={"visible_threshold_cells": 1234.0})
    write_cascade(res, tmp_path / "c.png")
    assert seen["visible_threshold"] == 1234.0
    assert seen["dose_times_days"][0] == pytest.approx(22 / 24)  # the first evening application
