"""Every published target next to its simulated value: ``imiqsim calibration-report``.

Every row of ``data/calibration.csv`` is simulated as ``data/calibration_arms.csv`` maps it:
clinical rows as virtual trials (Wilson 95% CIs), PK rows as the population mean (+/- 1.96 SE)
of virtual patients on the PK-study regimen. A row is a *hit* by the same criterion the joint
fit uses (:func:`imiqsim.calibrate.row_hit`): inside the published 95% CI (Clopper-Pearson from
the row's n, or a CI quoted with the row), within +/-0.10 for a proportion without n, within
2-fold for a PK figure, below an upper bound; otherwise a *miss* with its size. In the joint fit
every row is a calibration row (starred); rows that are not independent of another are marked.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imiqsim import __version__
from imiqsim.calibrate import NO_N_TOLERANCE as _NO_N
from imiqsim.calibrate import PK_FOLD, Problem, row_hit, row_miss, tolerance_text
from imiqsim.vocabulary import DISCLAIMER

#: PK rows: (sachets per application, site, area cm2); Aldara PI: 3x/week for 16 weeks
PK = {
    "pk-face-cmax": (1, "face", 25.0),
    "pk-scalp-cmax": (2, "scalp", 50.0),
    "pk-arms-cmax": (6, "forearm_hand", 150.0),
}
PK_TOLERANCE = PK_FOLD  # fold: the same tolerance as the fit's and the tests'
NO_N_TOLERANCE = _NO_N  # absolute (proportion) tolerance for clinical rows without a published n


@dataclass
class RowResult:
    id: str
    endpoint: str
    arm: str
    published: float
    published_ci: tuple[float, float] | None
    simulated: float | None
    simulated_ci: tuple[float, float] | None
    hit: bool | None
    miss: float | None
    tolerance: str
    calibrated: bool
    note: str
    likelihood: str = "binomial"
    independent: str = ""
    approximation: str = ""


def arm_scenario(arm: str):
    """Resolve a calibration arm name to its scenario.

    Parameters
    ----------
    arm : str
        A preset name (e.g. ``"ak-5pct"``), or ``"<preset>@<seconds>s"`` for a
        cryotherapy preset at another freeze time (e.g. ``"ak-cryo@3s"``).

    Returns
    -------
    Scenario
        The preset, or for ``preset@<seconds>s`` a copy of it named ``arm`` whose
        cryotherapy freeze time is ``<seconds>``.
    """
    from imiqsim.scenario import load_preset

    if "@" not in arm:
        return load_preset(arm)
    name, t = arm.split("@")
    sc = load_preset(name)
    spec = sc.cryotherapy.model_copy(update={"freeze_seconds": float(t.rstrip("s"))})
    return sc.with_overrides(name=arm, cryotherapy=spec)


def pk_population(patients: int, seed: int) -> dict:
    """Simulate the PK-study regimens of :data:`PK` on a virtual AK population.

    Each regimen is the ``ak-5pct`` preset applied 3x/week with the row's number
    of sachets, site and treated area (off-label allowed).

    Parameters
    ----------
    patients : int
        Virtual patients per regimen.
    seed : int
        Seed of the population sample (the same for every regimen).

    Returns
    -------
    dict
        Row id (each key of :data:`PK`) -> per-patient peak serum concentration
        (ng/mL, ndarray of length ``patients``), plus ``"pk-urine"`` -> per-patient
        fraction of the applied dose recovered in urine, from the first regimen.
    """
    from imiqsim.engine.run import run_batch
    from imiqsim.model import get_model
    from imiqsim.population import sample_population
    from imiqsim.regimen import Amount
    from imiqsim.scenario import load_preset

    m = get_model()
    out = {}
    base_sc = load_preset("ak-5pct")
    for rid, (sachets, site, area) in PK.items():
        reg = base_sc.regimen.model_copy(
            update={"applications_per_week": 3, "weekdays": None, "amount": Amount(sachets=sachets)}
        )
        sc = base_sc.with_overrides(regimen=reg, site=site, area_cm2=area, off_label_ok=True)
        base = sc.model_parameters(m)
        pop = sample_population(base, "AK", patients, seed, model=m)
        t = np.arange(0.0, sc.events().end_h() + 48.0, 24.0)
        res = run_batch(m, pop.P, sc.events(), t)
        cmax = res.peak[:, list(res.tracked).index("serum_conc_ng_ml")]
        applied = res.Y[:, -1, m.state_index("applied")]
        urine = res.Y[:, -1, m.state_index("urine")] / np.maximum(applied, 1e-12)
        out[rid] = cmax
        out.setdefault("pk-urine", urine)
    return out


def build_rows(
    patients: int = 1000,
    seed: int = 7,
    pk_patients: int | None = None,
    progress: Callable[[str], None] | None = None,
    workers: int = 1,
    problem: Problem | None = None,
) -> list[RowResult]:
    """Simulate every row of ``data/calibration.csv`` at the current parameter tables.

    Every row is simulated as mapped in ``data/calibration_arms.csv`` and judged by the fit's
    criterion (:func:`imiqsim.calibrate.row_hit`). In the joint fit every row is a calibration
    row, so every row is starred (``calibrated``).

    Parameters
    ----------
    patients : int
        Virtual patients per arm (trial arms).
    seed : int
        Seed; use one the fit did not use (the fit's is 2024).
    pk_patients : int, optional
        Virtual patients per PK arm (default ``patients``).
    progress : callable(str), optional
    workers : int
        Processes simulating arms.
    problem : Problem, optional
        Default: the package's tables.
    """
    from imiqsim.calibrate import Evaluator, current_values

    problem = problem or Problem.from_package()
    values = current_values(problem.params)
    arms = problem.arms_of()
    sim = problem.simulator
    results: dict[str, dict] = {}
    pk_arms = [a for a in arms if getattr(sim, "arms", {}).get(a) and sim.arms[a].kind == "pk"]
    with Evaluator(sim, workers) as ev:
        for group, n in (
            ([a for a in arms if a not in pk_arms], patients),
            (pk_arms, pk_patients or patients),
        ):
            if not group:
                continue
            if progress:
                progress(f"simulating {len(group)} arms ({n} patients each)")

            def keep(j: int, res: dict, group=group) -> None:
                results[group[j]] = res

            ev.run([(a, values) for a in group], n, seed, keep)
    sims = problem.row_values(results)
    rows = []
    for r in problem.rows:
        t = problem.targets[r.id]
        e = results[r.arm][r.endpoint]
        v = sims[r.id]
        ci = e.get("ci95") or (None, None)
        rows.append(
            RowResult(
                r.id,
                r.endpoint,
                r.arm,
                t.value,
                t.published_ci() if r.likelihood == "binomial" else None,
                v,
                (float(ci[0]), float(ci[1])) if ci[0] is not None and ci[1] is not None else None,
                row_hit(r, t, v),
                row_miss(r, t, v),
                tolerance_text(r, t),
                True,
                t.note,
                r.likelihood,
                r.independent,
                r.approximation,
            )
        )
    return rows


def _is_pk_value(r: RowResult) -> bool:
    return r.likelihood == "fold"


def _label(r: RowResult) -> str:
    return f"{r.id}{' *' if r.calibrated else ''}{' (n.i.)' if r.independent else ''}"


def _forest_png(rows: list[RowResult]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    rr = [r for r in rows if r.simulated is not None and r.likelihood in ("binomial", "absolute")]
    fig = Figure(figsize=(8, 0.36 * len(rr) + 1.2))
    ax = fig.add_subplot(111)
    for i, r in enumerate(rr):
        y = len(rr) - i
        band = r.published_ci or (r.published - NO_N_TOLERANCE, r.published + NO_N_TOLERANCE)
        ax.plot(band, [y + 0.12] * 2, color="#444", lw=2)
        ax.plot([r.published], [y + 0.12], "s", color="#444", label="published" if i == 0 else None)
        col = "#1f77b4" if r.hit else "#d62728"
        if r.simulated_ci:
            ax.plot(r.simulated_ci, [y - 0.12] * 2, color=col, lw=2)
        ax.plot([r.simulated], [y - 0.12], "o", color=col, label="simulated" if i == 0 else None)
    ax.set_yticks(range(len(rr), 0, -1))
    ax.set_yticklabels([_label(r) for r in rr], fontsize=7)
    ax.set_xlabel("proportion")
    ax.set_xlim(0, 1)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(
        "Published (95% CI, or +/-0.10 without n) vs simulated (95% CI)\n"
        "* = fitted row (joint fit: all), n.i. = not independent, red = miss",
        fontsize=8,
    )
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return buf.getvalue()


def _fmt(v, ci=None, pct=True):
    if v is None:
        return "&ndash;"
    if pct:
        s = f"{100 * v:.1f}%"
        if ci:
            s += f" ({100 * ci[0]:.1f}&ndash;{100 * ci[1]:.1f})"
        return s
    s = f"{v:.3g}"
    if ci:
        s += f" ({ci[0]:.3g}&ndash;{ci[1]:.3g})"
    return s


def _parameter_table() -> str:
    """The fitted parameters with their 95% intervals, from data/posterior.json (if current)."""
    from imiqsim.calibrate import current_values, load_parameters, posterior_path

    path = posterior_path()
    if not path.exists():
        return "<p>No posterior yet (<code>imiqsim calibrate --write</code> writes one).</p>"
    doc = json.loads(path.read_text())
    cur = current_values(load_parameters())
    stale = set(doc.get("values", {})) != set(cur) or any(
        abs(doc["values"][k] - cur[k]) > 1e-4 * abs(cur[k]) for k in cur
    )
    trs = "".join(
        f"<tr><td>{html.escape(iv['key'])}</td><td>{iv['value']:.4g}</td>"
        f"<td>{iv['ci95'][0]:.3g}&ndash;{iv['ci95'][1]:.3g}</td>"
        f"<td>{iv['prior_ratio']:.2f}</td><td>{html.escape(iv['meaning'])}</td></tr>"
        for iv in doc.get("intervals", [])
    )
    warn = (
        "<p><b>The parameter tables have changed since this posterior was written</b>; "
        "rerun <code>imiqsim calibrate --write</code>.</p>"
        if stale
        else ""
    )
    return (
        f"{warn}<p>Laplace approximation at the fit ({html.escape(doc.get('command', ''))}): "
        "95% intervals; <i>posterior/prior sd</i> near 1 means the rows hardly constrain the "
        "parameter.</p><table><tr><th>parameter</th><th>value</th><th>95% interval</th>"
        f"<th>posterior/prior sd</th><th>meaning</th></tr>{trs}</table>"
    )


def write_report(rows: list[RowResult], out: Path, *, patients: int, seed: int) -> Path:
    """Write ``calibration_report.html``, ``calibration.json`` and the forest plot into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "calibration.json").write_text(
        json.dumps([r.__dict__ for r in rows], indent=1, default=str)
    )
    png = _forest_png(rows)
    (out / "calibration_forest.png").write_bytes(png)
    trs = []
    for r in rows:
        pct = not _is_pk_value(r)
        status = "not simulated" if r.hit is None else ("hit" if r.hit else "MISS")
        miss = ""
        if r.hit is False and r.miss is not None:
            miss = (
                f"{r.miss:.2f}-fold"
                if r.likelihood in ("fold", "upper_bound")
                else f"{100 * r.miss:+.1f} points"
            )
        note = "; ".join(x for x in (r.independent, r.approximation, r.note) if x)
        pub = _fmt(r.published, r.published_ci, pct)
        if r.likelihood == "upper_bound":
            pub = f"&lt; {pub}"
        trs.append(
            f"<tr class='{status.split()[0].lower()}'>"
            f"<td>{html.escape(_label(r))}</td>"
            f"<td>{html.escape(r.endpoint)}</td><td>{html.escape(r.arm)}</td>"
            f"<td>{pub}</td>"
            f"<td>{_fmt(r.simulated, r.simulated_ci, pct)}</td>"
            f"<td>{status}</td><td>{miss}</td><td>{html.escape(r.tolerance)}</td>"
            f"<td class='note'>{html.escape(note)}</td></tr>"
        )
    n_hit = sum(1 for r in rows if r.hit)
    n_sim = sum(1 for r in rows if r.hit is not None)
    n_ind = sum(1 for r in rows if r.hit is not None and not r.independent)
    n_ind_hit = sum(1 for r in rows if r.hit and not r.independent)
    generated = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    rows_html = "".join(trs)
    png_b64 = base64.b64encode(png).decode()
    page = "\n".join(
        [
            '<!doctype html><html><head><meta charset="utf-8">'
            "<title>imiqsim calibration report</title>",
            "<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}"
            "table{border-collapse:collapse;font-size:13px}",
            "td,th{border:1px solid #ccc;padding:4px 6px;vertical-align:top}"
            "tr.miss td{background:#fde2e2}",
            "tr.hit td{background:#e7f5e7}td.note{font-size:11px;color:#555;max-width:280px}",
            ".disclaimer{border:2px solid #b00;padding:.6em;background:#fff4f4;margin:1em 0}"
            "</style></head><body>",
            "<h1>imiqsim calibration report</h1>",
            f"<p>imiqsim {__version__}, generated {generated}; {patients} virtual patients",
            f"per arm, seed {seed} (the fit uses seed 2024). The calibrated parameters are fitted "
            "<b>jointly against every row</b>, so every row is a calibration row (*): this page "
            "is the in-sample fit. How well the model predicts a trial it was not fitted to is "
            "measured by leave-one-trial-out cross-validation (<code>imiqsim validate</code>, "
            "docs/validation.md). Rows marked <i>n.i.</i> are not independent of another row "
            "(the same virtual patients, or the same arm and endpoint).</p>",
            f'<div class="disclaimer">{html.escape(DISCLAIMER)}</div>',
            f"<p><b>{n_hit} of {n_sim} rows inside their published 95% CI or tolerance</b> "
            f"({n_ind_hit} of {n_ind} counting only independent rows); misses are shown in red "
            "with their size. Criteria (the same as the fit's and the tests'): inside the "
            "published 95% CI for rows with n; +/-0.10 for proportions without n; within "
            f"{PK_FOLD:g}-fold for PK figures; below the bound for an upper bound.</p>",
            "<table><tr><th>row</th><th>endpoint</th><th>arm</th><th>published (95% CI)</th>"
            "<th>simulated (95% CI)</th>",
            f"<th>result</th><th>miss</th><th>criterion</th><th>note</th></tr>{rows_html}</table>",
            f'<h2>Forest plot</h2><img src="data:image/png;base64,{png_b64}" alt="forest plot">',
            "<h2>Fitted parameters</h2>",
            _parameter_table(),
            "<p>Published CIs: Clopper-Pearson from the row's n (or the CI quoted with the row). "
            "Simulated CIs: Wilson score intervals (clinical rows) or",
            "mean +/- 1.96 SE over virtual patients (PK rows). Sources are in the table's notes"
            " and in",
            "<code>shared/targets/calibration.csv</code>; the row-to-arm map is "
            "<code>data/calibration_arms.csv</code>.</p></body></html>",
        ]
    )
    path = out / "calibration_report.html"
    path.write_text(page, encoding="utf-8")
    return path
