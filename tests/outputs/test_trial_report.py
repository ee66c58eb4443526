"""Trial outputs and the HTML report: imiqsim.outputs.trial, trial_figures, trial_report."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import imiqsim.outputs.trial_report as trial_report
from imiqsim.outputs.formatting import format_difference, format_proportion
from imiqsim.outputs.trial import outcomes_frame, traces_dataset, write_trial_outputs
from imiqsim.outputs.trial_figures import subgroup_table
from imiqsim.outputs.trial_report import (
    FIGURE_NAMES,
    format_endpoint,
    write_trial_bundle,
    write_trial_report,
)
from imiqsim.trial import TRACE_VARIABLES, TrialResult, run_trial
from imiqsim.trial.endpoints import report_endpoints
from imiqsim.vocabulary import DISCLAIMER, DISCLAIMER_SHORT

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ARMS = ["ak-5pct", "ak-5pct-vehicle"]
N = 40


@pytest.fixture(scope="module")
def trial() -> TrialResult:
    return run_trial(ARMS, patients=N, seed=3, followup_years=0.25)


@pytest.fixture(scope="module")
def written(trial, tmp_path_factory):
    out = tmp_path_factory.mktemp("trial")
    data = write_trial_outputs(trial, out)
    html = write_trial_report(
        trial, out, command="imiqsim trial ak-5pct ak-5pct-vehicle --patients 40 --seed 3"
    )
    return out, data, html, html.read_text(encoding="utf-8")


# --------------------------------------------------------------------------- formatting


def test_format_proportion_style():
    assert format_proportion({"value": 0.451, "ci95": [0.412, 0.490]}) == "45.1% (41.2\u201349.0)"
    assert format_proportion({"value": None, "ci95": [None, None]}) == "\u2014"
    # a negative bound gets "to", not an ambiguous dash
    assert (
        format_difference({"value": 0.011, "ci95": [-0.086, 0.02]}) == "+1.1 pp (\u22128.6 to 2.0)"
    )


# --------------------------------------------------------------------------- HTML


def test_html_exists_and_is_self_contained(written):
    out, _, html, text = written
    assert html == out / "report.html" and html.exists()
    assert text.lstrip().startswith("<!DOCTYPE html>")
    assert "<script" not in text.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", text, re.IGNORECASE)
    assert "<link" not in text.lower()


def test_html_disclaimer_and_header(written, trial):
    _, _, _, text = written
    assert DISCLAIMER in text
    assert 'class="disclaimer"' in text
    assert f"seed {trial.seed}" in text
    assert f"{N} virtual patients per arm" in text
    assert "imiqsim 0.1.0" in text or "imiqsim " in text
    assert (
        "imiqsim trial ak-5pct ak-5pct-vehicle --patients 40 --seed 3" in text
    )  # command in methods


def test_html_names_every_arm_and_scenario(written, trial):
    _, _, _, text = written
    for a in trial.arms:
        assert a.name in text
        assert a.scenario.describe() in text


def test_html_endpoint_rows(written, trial):
    _, _, _, text = written
    for label in (
        "Complete clearance",
        "Partial clearance",
        "Median lesion reduction",
        "Histological clearance",
        "Composite clearance",
        "Time to clearance",
        "Severe erythema",
        "Rest period needed",
        "Flu-like symptoms",
        "Headache",
        "How to read this",
    ):
        assert label in text, label
    # recurrence rows only where some arm has clearers followed that long
    for key in ("recurrence_12wk", "recurrence_12mo", "recurrence_5y"):
        shown = any(a.endpoints[key]["n"] > 0 for a in trial.arms)
        assert (f'id="ep-{key}"' in text) == shown, key
    assert 'id="ep-recurrence_5y"' not in text  # 3 months of follow-up


def test_table_values_equal_endpoints(written, trial):
    _, _, _, text = written
    a = trial.arms[0]
    ep = a.endpoints["complete_clearance"]
    lo, hi = ep["ci95"]
    literal = f"{100 * ep['value']:.1f}% ({100 * lo:.1f}\u2013{100 * hi:.1f})"
    row = re.search(r'<tr id="ep-complete_clearance">(.*?)</tr>', text, re.DOTALL).group(1)
    cells = re.findall(r'<td class="num">(.*?)<span class="n">(.*?)</span></td>', row)
    assert cells[0] == (literal, f"{ep['k']}/{ep['n']}")
    # every arm and every shown endpoint, through the same formatter
    for info in report_endpoints():
        m = re.search(rf'<tr id="ep-{info.name}">(.*?)</tr>', text, re.DOTALL)
        if m is None:
            continue
        cells = re.findall(r'<td class="num">(.*?)<span', m.group(1))
        assert cells == [
            format_endpoint(info.name, arm.endpoints[info.name]) for arm in trial.arms
        ], info.name
    # pairwise difference from the summary
    d = trial.to_dict()["differences"][0]["endpoints"]["complete_clearance"]
    assert format_difference(d) in text


def test_html_embeds_figures_and_pngs_written(written):
    out, _, _, text = written
    imgs = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert text.count("data:image/png;base64") == len(FIGURE_NAMES) == 4
    for b64, name in zip(imgs, FIGURE_NAMES, strict=True):
        raw = base64.b64decode(b64)
        assert raw.startswith(PNG_MAGIC)
        assert (out / name).read_bytes() == raw


def test_subgroups(trial, written):
    _, _, _, text = written
    rows = subgroup_table(trial)
    assert {r["group"] for r in rows} == {"all", "sex", "immune status"}
    for a in trial.arms:
        whole = next(r for r in rows if r["group"] == "all" and r["arm"] == a.name)
        assert whole["k"] == a.endpoints["complete_clearance"]["k"]
        by_sex = [r for r in rows if r["group"] == "sex" and r["arm"] == a.name]
        assert sum(r["n"] for r in by_sex) == whole["n"]
        for r in by_sex:
            if r["n"]:
                assert 0 <= r["ci95"][0] <= r["value"] + 1e-12 and r["value"] <= r["ci95"][1] <= 1
    assert "sex: " in text and "immune status: " in text


# --------------------------------------------------------------------------- data files


def test_outputs_paths(written):
    out, data, _, _ = written
    assert [p.name for p in data] == ["outcomes.parquet", "summary.json", "traces.nc"]
    assert all(p.parent == out and p.stat().st_size > 0 for p in data)


def test_parquet_round_trip(written, trial):
    out, _, _, _ = written
    df = pd.read_parquet(out / "outcomes.parquet")
    assert len(df) == N * len(trial.arms)
    assert {
        "arm",
        "patient",
        "lesion_burden_final",
        "complete_clearance",
        "sex",
        "immune_status",
    } <= set(df.columns)
    assert list(df.columns[:2]) == ["arm", "patient"]
    for a in trial.arms:
        sub = df[df["arm"] == a.name].reset_index(drop=True)
        assert sorted(sub["patient"]) == list(range(N))
        np.testing.assert_allclose(
            sub["lesion_burden_final"].to_numpy(), a.outcomes["lesion_burden_final"].to_numpy()
        )
        assert (
            sub["complete_clearance"].astype(float).sum() == a.endpoints["complete_clearance"]["k"]
        )


def test_summary_json(written, trial):
    out, _, _, _ = written
    s = json.loads((out / "summary.json").read_text())
    assert s["seed"] == trial.seed and [a["name"] for a in s["arms"]] == ARMS
    assert (
        s["arms"][0]["endpoints"]["complete_clearance"]["k"]
        == trial.arms[0].endpoints["complete_clearance"]["k"]
    )
    assert s["differences"][0]["arms"] == ARMS


def test_traces_netcdf(written, trial):
    out, _, _, _ = written
    with xr.open_dataset(out / "traces.nc", engine="h5netcdf") as ds:
        assert dict(ds["lesion_burden"].sizes) == {
            "arm": 2,
            "patient": N,
            "time": trial.arms[0].t_days.size,
        }
        assert ds["lesion_burden"].dims == ("arm", "patient", "time")
        assert set(TRACE_VARIABLES) <= set(ds.data_vars)
        assert list(ds["arm"].values) == ARMS
        np.testing.assert_allclose(ds["time"].values, trial.arms[0].t_days)
        np.testing.assert_array_equal(
            ds["ifn_alpha"].sel(arm=ARMS[0]).values, trial.arms[0].traces["ifn_alpha"]
        )
        assert ds["time"].attrs["units"] == "days"
        assert ds["ifn_alpha"].attrs["units"] == "pg/mL"
        assert ds.attrs["seed"] == trial.seed


# --------------------------------------------------------------------------- robustness


def _variant(trial: TrialResult, arm_index: int, **changes) -> TrialResult:
    arms = list(trial.arms)
    arms[arm_index] = replace(arms[arm_index], **changes)
    return replace(trial, arms=arms)


def test_different_time_grids_union_with_nan(trial):
    a = trial.arms[1]
    short = _variant(
        trial, 1, t_days=a.t_days[:-5], traces={k: v[:, :-5] for k, v in a.traces.items()}
    )
    ds = traces_dataset(short)
    assert ds.sizes["time"] == trial.arms[0].t_days.size
    assert np.isnan(ds["lesion_burden"].values[1, :, -5:]).all()
    assert np.isfinite(ds["lesion_burden"].values[0]).all()


def test_failed_patient_keeps_rows_and_report_renders(trial, tmp_path):
    a = trial.arms[0]
    df = a.outcomes.copy()
    for c in df.columns:
        if c not in ("arm", "patient", "status") and df[c].dtype.kind in "bif":
            df[c] = df[c].astype(float)
    df.loc[0, "status"] = -1
    df.loc[0, [c for c in df.columns if df[c].dtype.kind == "f"]] = np.nan
    traces = {k: v.copy() for k, v in a.traces.items()}
    for v in traces.values():
        v[0] = np.nan
    bad = _variant(trial, 0, outcomes=df, traces=traces)
    frame = outcomes_frame(bad)
    assert frame["complete_clearance"].dtype.kind == "f"  # bool in one arm, float in the other
    paths = write_trial_outputs(bad, tmp_path)
    assert len(pd.read_parquet(paths[0])) == 2 * N
    html = write_trial_report(bad, tmp_path).read_text()
    assert "could not be simulated" in html


def _boom(*args, **kwargs):
    raise RuntimeError("plotting failed")


def test_bundle_writes_data_before_figures(trial, tmp_path, monkeypatch):
    monkeypatch.setattr(trial_report, "fig_waterfall", _boom)
    with pytest.raises(RuntimeError, match="plotting failed"):
        write_trial_bundle(trial, tmp_path)
    for name in ("outcomes.parquet", "summary.json", "traces.nc"):
        assert (tmp_path / name).stat().st_size > 0
    assert not (tmp_path / "report.html").exists()


def test_bundle_reports_a_figure_failure_and_keeps_the_data(trial, tmp_path, monkeypatch):
    monkeypatch.setattr(trial_report, "fig_waterfall", _boom)
    messages: list[str] = []
    paths = write_trial_bundle(trial, tmp_path, on_figure_error=messages.append)
    assert [p.name for p in paths] == ["outcomes.parquet", "summary.json", "traces.nc"]
    assert len(messages) == 1 and "RuntimeError: plotting failed" in messages[0]
    assert "data files were written" in messages[0]
    assert not (tmp_path / "report.html").exists()


def test_one_disclaimer_in_report_summary_and_traces(written):
    out, _, _, text = written
    assert text.count(DISCLAIMER) >= 2  # the banner and the footer
    with xr.open_dataset(out / "traces.nc", engine="h5netcdf") as ds:
        assert ds.attrs["disclaimer"] == DISCLAIMER_SHORT


def test_old_import_path_is_the_same_code():
    import imiqsim.report as old

    assert old.write_trial_report is write_trial_report
    assert old.write_trial_outputs is write_trial_outputs
    assert old.DISCLAIMER is DISCLAIMER


def _panel_titles(fig) -> list[str]:
    return [ax.get_title(loc="left") for ax in fig.axes if ax.get_visible()]


def test_kinetics_panels_are_the_models_traced_series(trial):
    from imiqsim.model import CYTOKINES, SKIN_CELLS
    from imiqsim.outputs.trial_figures import fig_kinetics

    titles = _panel_titles(fig_kinetics(trial))
    traced = set(trial.arms[0].traces)
    cytokines = [c for c in CYTOKINES if c in traced]
    assert len(cytokines) >= 3
    assert len(titles) == len(cytokines) + sum(c in traced for c in SKIN_CELLS) + (
        "memory_t" in traced
    )
    assert titles[:2] == ["IFN-\u03b1", "TNF-\u03b1"]


def test_kinetics_panels_follow_the_traces(trial):
    """A traced model cytokine is drawn, an untraced one is not: no list to edit in the figure."""
    from imiqsim.outputs.trial_figures import fig_kinetics

    def titles_with(il6: bool) -> list[str]:
        arms = []
        for a in trial.arms:
            traces = {k: v for k, v in a.traces.items() if k != "il6"}
            if il6:
                traces["il6"] = a.traces["ifn_alpha"] * 0.5
            arms.append(replace(a, traces=traces))
        return _panel_titles(fig_kinetics(replace(trial, arms=arms)))

    without, with_il6 = titles_with(False), titles_with(True)
    assert "IL-6" not in without
    assert "IL-6" in with_il6 and len(with_il6) == len(without) + 1
    assert with_il6.index("IL-6") < with_il6.index("pDC")  # with the cytokines, in model order


def test_old_endpoint_info_is_read_from_the_registry():
    from imiqsim.report import ENDPOINT_INFO

    rows = report_endpoints()
    assert [e.key for e in ENDPOINT_INFO] == [e.name for e in rows]
    assert [e.explanation for e in ENDPOINT_INFO] == [e.description for e in rows]
    kinds = {e.key: e.kind for e in ENDPOINT_INFO}
    assert kinds["time_to_clearance_days"] == "days"
    assert kinds["median_lesion_reduction"] == "fraction_median"
    assert kinds["complete_clearance"] == "proportion"
