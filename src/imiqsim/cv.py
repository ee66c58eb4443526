"""Leave-one-trial-out cross-validation of the joint calibration: ``imiqsim validate``.

A fold is one published source (:func:`imiqsim.calibrate.normalise_source`: all Lebwohl 2004
rows, all four Geisse 2002 arms, the Aldara label's rows, ...). Each fold refits the calibrated
parameters without its rows and predicts them. To keep a fold cheap the refit runs on a local
emulator: the finite-difference Jacobian of every row's simulated value w.r.t. the parameters
(search scale) at the full fit, computed once with common random numbers; the fold's parameters
minimise the same objective as the fit (binomial and tolerance terms, weak prior) on the
linearised rows by Levenberg-Marquardt-type least squares (:func:`scipy.optimize.least_squares`,
within the boxes), warm-started from the full fit. A fold's parameters are the full fit plus the
shift the emulator gives for leaving the fold's rows out (its fold optimum minus its own optimum on
every row), so the emulator's disagreement with the simulated fit does not move every fold alike.
That shift is then damped on the simulator (a line search: 1, 0.5, then 0.25 of it for the
parameters some kept row depends on, each simulated on every arm; the first whose objective on
the kept rows is no higher than the full fit's, else the lowest; parameters no kept row depends
on always move the whole way), since a linear emulator of rows that move in steps (rest, a
median) or saturate can send a fold far off; the left-out rows never enter that choice, and the
full fit itself, which has seen them, is never kept.
Proportions are linearised on their own scale,
PK figures on a log scale. The held-out rows are then re-simulated at the fold's parameters: that
simulation, not the emulator, is the prediction. Its 95% interval combines the virtual trial's
sampling interval and the fold's parameter uncertainty (Laplace covariance of the fold,
propagated through the Jacobian).

Everything is checkpointed (the Jacobian column by column, then fold by fold), so an interrupted
``imiqsim validate --resume`` continues.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from imiqsim.calibrate import (
    CHECKPOINT_VERSION,
    Z95,
    Evaluator,
    Problem,
    _read_checkpoint,
    _write_json,
    current_values,
    evaluate,
    jacobian,
    laplace,
    posterior_path,
    row_hit,
    row_residual,
    tolerance_text,
)
from imiqsim.errors import InputError
from imiqsim.vocabulary import DISCLAIMER

__all__ = [
    "ValidationResult",
    "ValidationRow",
    "direct_refit",
    "emulator_refit",
    "folds",
    "information_from_other_trials",
    "linearised_values",
    "start_values",
    "validate",
    "write_validation",
]


def folds(problem: Problem) -> dict[str, list[str]]:
    """Fold (normalised source) -> row ids, in the order the sources first appear."""
    out: dict[str, list[str]] = {}
    for r in problem.rows:
        out.setdefault(problem.targets[r.id].fold, []).append(r.id)
    return out


def _log_rows(problem: Problem) -> np.ndarray:
    return np.array([r.likelihood in ("fold", "upper_bound") for r in problem.rows])


def linearised_values(
    problem: Problem, theta: np.ndarray, theta0: np.ndarray, y0: np.ndarray, J: np.ndarray
) -> np.ndarray:
    """Emulated row values at ``theta``: proportions linear, PK figures log-linear in theta."""
    d = np.asarray(theta) - np.asarray(theta0)
    lin = y0 + J @ d
    logr = _log_rows(problem)
    with np.errstate(divide="ignore", invalid="ignore"):
        loglin = y0 * np.exp((J @ d) / np.where(y0 > 0, y0, np.nan))
    return np.where(logr & (y0 > 0), loglin, lin)


def emulator_refit(
    problem: Problem,
    theta0: np.ndarray,
    y0: np.ndarray,
    J: np.ndarray,
    n_sim: int,
    exclude: Iterable[str] = (),
) -> np.ndarray:
    """Parameters minimising the objective of the rows not excluded, on the linearised rows."""
    from scipy.optimize import least_squares

    ex = set(exclude)
    lo, hi = problem.theta_bounds()
    y0 = np.asarray(y0, dtype=float)
    J = np.nan_to_num(np.asarray(J, dtype=float))
    keep = np.array([r.id not in ex for r in problem.rows])
    undefined = ~np.isfinite(y0)

    def fun(th: np.ndarray) -> np.ndarray:
        y = linearised_values(problem, th, theta0, np.where(undefined, 0.0, y0), J)
        y = np.where(undefined, np.nan, y)
        sims = {r.id: float(v) for r, v in zip(problem.rows, y, strict=True)}
        res = [
            row_residual(r, problem.targets[r.id], sims[r.id], n_sim)
            for r, k in zip(problem.rows, keep, strict=True)
            if k
        ]
        return np.concatenate([np.array(res), problem.prior_residuals(th)])

    x0 = np.clip(np.asarray(theta0, dtype=float), lo + 1e-9, hi - 1e-9)
    sol = least_squares(fun, x0, bounds=(lo, hi), method="trf", x_scale=hi - lo, max_nfev=2000)
    return np.asarray(sol.x)


def direct_refit(
    problem: Problem,
    theta0: np.ndarray,
    n_sim: int,
    seed: int,
    exclude: Iterable[str] = (),
    workers: int = 1,
    diff_step: float = 1e-3,
) -> np.ndarray:
    """The same refit on the simulator itself (finite differences at every step; costly).

    For checking the emulator on cheap simulators (tests), not for the model.
    """
    from scipy.optimize import least_squares

    ex = set(exclude)
    lo, hi = problem.theta_bounds()
    with Evaluator(problem.simulator, workers) as ev:

        def fun(th: np.ndarray) -> np.ndarray:
            res = evaluate(problem, [th], n_sim, seed, ev)[0]
            sims = problem.row_values(res)
            return np.concatenate([problem.residuals(sims, n_sim, ex), problem.prior_residuals(th)])

        x0 = np.clip(np.asarray(theta0, dtype=float), lo + 1e-9, hi - 1e-9)
        sol = least_squares(
            fun, x0, bounds=(lo, hi), method="trf", x_scale=hi - lo, diff_step=diff_step
        )
    return np.asarray(sol.x)


@dataclass
class ValidationRow:
    """One published row: in-sample and leave-its-trial-out predictions."""

    id: str
    fold: str
    likelihood: str
    published: float
    published_ci: tuple[float, float] | None
    tolerance: str
    in_sample: float | None
    in_sample_hit: bool | None
    predicted: float | None
    predicted_ci: tuple[float, float] | None
    inside: bool | None
    independent: str = ""
    approximation: str = ""
    #: share of the row's prior parameter variance that the other folds' rows remove
    #: (:func:`information_from_other_trials`): near 0, the prediction is the prior's
    informed: float | None = None


@dataclass
class ValidationResult:
    """What :func:`validate` measured."""

    rows: list[ValidationRow]
    folds: dict[str, dict]
    patients: int
    seed: int
    start: dict[str, float]
    start_from: str
    keys: list[str] = field(default_factory=list)
    jacobian_source: str = ""
    #: the emulator's all-rows optimum minus the full fit (prior SDs): the largest three
    emulator_bias: list = field(default_factory=list)

    @property
    def n_rows(self) -> int:
        return len(self.rows)

    @property
    def n_inside(self) -> int:
        return sum(1 for r in self.rows if r.inside)

    @property
    def n_inside_in_sample(self) -> int:
        return sum(1 for r in self.rows if r.in_sample_hit)


#: checkpoints of folds refitted by another rule are not resumed
LINE_SEARCH_VERSION = 2
#: fractions of a fold's emulator shift tried in turn, on the simulator itself
LINE_SEARCH_STEPS: tuple[float, ...] = (1.0, 0.5, 0.25)


def _line_search(
    problem: Problem,
    theta0: np.ndarray,
    shift: np.ndarray,
    arms0: dict[str, dict],
    ids: list[str],
    patients: int,
    seed: int,
    ev: Evaluator,
    bounds: tuple[np.ndarray, np.ndarray],
    free: np.ndarray,
) -> tuple[np.ndarray, dict[str, dict], dict]:
    """The fold's parameters: a damped emulator shift, the damping chosen on the simulator.

    The emulator is linear, and a row that moves in steps (the rest threshold, a median) or
    saturates can send it far off. The parameters no kept row depends on (``free``: only the
    left-out rows and the prior see them) always take their whole shift, so what only the
    left-out rows said is never kept. The others take each fraction of
    :data:`LINE_SEARCH_STEPS` in turn, simulated on every arm with the same patients and seed;
    the first whose objective on the kept rows (binomial and tolerance terms plus the prior)
    is no higher than the full fit's is kept, else the fraction with the lowest. The full fit
    itself is never the answer (it has seen the left-out rows), and the left-out rows never
    enter the choice.
    """
    lo, hi = bounds
    f0 = problem.objective(problem.row_values(arms0), patients, theta0, exclude=ids)
    tried, best = [], None
    for a in LINE_SEARCH_STEPS:
        th = np.clip(theta0 + np.where(free, 1.0, a) * shift, lo, hi)
        res = evaluate(problem, [th], patients, seed, ev)[0]
        f = float(problem.objective(problem.row_values(res), patients, th, exclude=ids))
        tried.append([a, f])
        if best is None or f < best[0]:
            best = (f, a, th, res)
        if f <= f0:  # every fraction before it was above f0, so it is also the lowest so far
            break
    f, a, th, res = best
    return th, res, {"full_fit": float(f0), "tried": tried, "alpha": a, "free": int(free.sum())}


def start_values(problem: Problem) -> tuple[dict[str, float], str]:
    """The full fit: ``data/posterior.json`` when it matches the tables, else the tables."""
    cur = current_values(problem.params)
    path = posterior_path()
    if path.exists():
        doc = json.loads(path.read_text())
        vals = doc.get("values", {})
        if set(vals) == set(cur) and all(math.isclose(vals[k], cur[k], rel_tol=1e-4) for k in cur):
            return cur, "the parameter tables (= data/posterior.json mean)"
    return cur, "the parameter tables"


def _posterior_jacobian(problem: Problem, theta0: np.ndarray) -> dict | None:
    """The fit's Jacobian from data/posterior.json, if taken at theta0 for these rows/params."""
    path = posterior_path()
    if not path.exists():
        return None
    try:
        doc = json.loads(path.read_text())
        jac = doc["jacobian"]
        ok = (
            doc.get("fingerprint") == problem.fingerprint()
            and doc.get("keys") == problem.keys
            and jac["rows"] == [r.id for r in problem.rows]
            and np.allclose(doc["mean"], theta0, rtol=0, atol=1e-4)
        )
    except (ValueError, KeyError, TypeError):
        return None
    if not ok:
        return None
    return {
        "J": jac["J"],
        "source": (
            f"the fit's (data/posterior.json: {jac['patients']} patients, seed {jac['seed']})"
        ),
    }


def information_from_other_trials(
    problem: Problem, y0: np.ndarray, J: np.ndarray, n_sim: int, exclude: Iterable[str]
) -> dict[str, float | None]:
    """How much the rows kept in a fold say about each left-out row, from 0 to 1.

    ``1 - var_fold / var_prior`` of the row's emulated value: ``J_i C J_i'`` with ``C`` the fold's
    Laplace covariance (:func:`imiqsim.calibrate.laplace` without the excluded rows) against the
    same with the prior covariance alone. 0: the kept rows do not constrain any parameter the row
    depends on, so its prediction is where the prior (the centre of the search box) puts it, not
    a prediction from the other trials; 1: the other trials pin it down; None: the Jacobian
    shows no dependence of the row on any parameter.
    """
    ex = set(exclude)
    J = np.nan_to_num(np.asarray(J, dtype=float))
    cov = laplace(problem, y0, J, n_sim, exclude=ex)
    _, sd = problem.prior()
    out = {}
    for i, r in enumerate(problem.rows):
        if r.id not in ex:
            continue
        v_prior = float(np.sum((J[i] * sd) ** 2))
        v_fold = float(J[i] @ cov @ J[i])
        # None: the Jacobian resolves no dependence at all (a row that moves in steps no
        # parameter step of the finite differences crossed), so there is nothing to compare
        out[r.id] = 1.0 - v_fold / v_prior if v_prior > 0 else None
    return out


def _interval(
    ci, var_param: float, value: float | None, proportion: bool
) -> tuple[float, float] | None:
    """Sampling CI widened by a parameter variance; proportions within [0, 1], PK above 0."""
    if ci is None or ci[0] is None or ci[1] is None or value is None:
        return None
    se = (ci[1] - ci[0]) / (2 * Z95)
    s = math.sqrt(se * se + max(var_param, 0.0))
    lo, hi = value - Z95 * s, value + Z95 * s
    return (max(lo, 0.0), min(hi, 1.0)) if proportion else (max(lo, 0.0), hi)


def validate(
    problem: Problem | None = None,
    *,
    start: dict[str, float] | None = None,
    patients: int = 400,
    seed: int = 11,
    workers: int = 1,
    checkpoint: Path | None = None,
    resume: bool = False,
    progress: Callable[[int, int, str], None] | None = None,
    reuse_jacobian: bool = True,
) -> ValidationResult:
    """Leave-one-trial-out cross-validation (see the module docstring).

    Parameters
    ----------
    problem : Problem, optional
        Default: the package's rows and calibrated parameters with the model.
    start : dict, optional
        The full fit's values (default :func:`start_values`).
    patients, seed : int
        Virtual patients per arm and their seed (the Jacobian and every prediction).
    workers : int
        Processes simulating arms.
    checkpoint : Path, optional
        Progress file; the Jacobian's is ``jacobian_<name>`` beside it.
    resume : bool
        Continue from ``checkpoint``.
    progress : callable(done, total, message), optional
    reuse_jacobian : bool
        Linearise with the Jacobian stored in ``data/posterior.json`` by the fit when it was
        taken at the start values (the base point is still simulated at ``patients`` and
        ``seed``); otherwise, or with False, compute one here.

    Returns
    -------
    ValidationResult
    """
    problem = problem or Problem.from_package()
    if start is None:
        start, start_from = start_values(problem)
    else:
        start_from = "given values"
    theta0 = problem.to_theta(start)
    fl = folds(problem)
    jck = checkpoint.with_name("jacobian_" + checkpoint.name) if checkpoint else None
    if resume:
        state = _read_checkpoint(checkpoint, problem, "validation")
        if state.get("line_search") != LINE_SEARCH_VERSION:
            raise InputError(
                "--resume",
                str(checkpoint),
                "a checkpoint of a run with the simulated line search (this one predates it: "
                "rerun without --resume)",
            )
        if state["patients"] != patients or state["seed"] != seed:
            raise InputError(
                "--resume",
                str(checkpoint),
                f"a checkpoint of {state['patients']} patients, "
                f"seed {state['seed']} (rerun with those, or without --resume)",
            )
    else:
        state = {
            "version": CHECKPOINT_VERSION,
            "kind": "validation",
            "fingerprint": problem.fingerprint(),
            "patients": patients,
            "seed": seed,
            "theta0": theta0.tolist(),
            "line_search": LINE_SEARCH_VERSION,
            "folds": {},
        }
        _write_json(checkpoint, state)
    theta0 = np.asarray(state["theta0"])
    total = 1 + len(problem.params) + len(fl)

    def jprog(done: int, tot: int, msg: str) -> None:
        if progress:
            progress(done, total, msg)

    stored = _posterior_jacobian(problem, theta0) if reuse_jacobian else None
    if stored is not None:
        # the fit's Jacobian (its seed and patients) linearises; the base point is simulated here
        if state.get("arms0") is None:
            with Evaluator(problem.simulator, workers) as ev:
                state["arms0"] = evaluate(problem, [theta0], patients, seed, ev)[0]
            _write_json(checkpoint, state)
        jac = {"arms0": state["arms0"], "J": stored["J"], "source": stored["source"]}
        sims0 = problem.row_values(state["arms0"])
        jac["y0"] = [np.nan if sims0[r.id] is None else sims0[r.id] for r in problem.rows]
        if progress:
            progress(1 + len(problem.params), total, "base point (Jacobian from the fit)")
    else:
        jac = jacobian(
            problem,
            theta0,
            patients=patients,
            seed=seed,
            workers=workers,
            checkpoint=jck,
            resume=resume and jck is not None and jck.exists(),
            progress=jprog,
        )
        jac["source"] = f"finite differences at {patients} patients, seed {seed}"
    state["jacobian_source"] = jac["source"]
    y0, J = np.asarray(jac["y0"], dtype=float), np.asarray(jac["J"], dtype=float)
    # The emulator's own optimum on every row: where linearisation error and Monte Carlo noise
    # alone would move the full fit. A fold's shift is measured from it, so a fold moves only
    # by what leaving its rows out changes, not by the emulator's disagreement with the fit.
    theta_all = emulator_refit(problem, theta0, y0, J, patients)
    state["emulator_bias"] = [
        [k, float(d)]
        for k, d in sorted(
            zip(problem.keys, (theta_all - theta0) / problem.prior()[1], strict=True),
            key=lambda kv: -abs(kv[1]),
        )[:3]
    ]
    lo, hi = problem.theta_bounds()
    with Evaluator(problem.simulator, workers) as ev:
        for fi, (fold, ids) in enumerate(fl.items()):
            if fold in state["folds"]:
                continue
            shift = emulator_refit(problem, theta0, y0, J, patients, exclude=ids) - theta_all
            kept = np.array([r.id not in ids for r in problem.rows])
            free = ~np.any(np.nan_to_num(J[kept]) != 0, axis=0)
            th, res, search = _line_search(
                problem, theta0, shift, jac["arms0"], ids, patients, seed, ev, (lo, hi), free
            )
            cov = laplace(problem, y0, J, patients, exclude=ids)
            sims = problem.row_values(res, row_ids=set(ids))
            idx = [i for i, r in enumerate(problem.rows) if r.id in ids]
            var = np.einsum("ij,jk,ik->i", J[idx], cov, J[idx])
            preds = {}
            for i, v in zip(idx, var, strict=True):
                r = problem.rows[i]
                e = res[r.arm][r.endpoint]
                preds[r.id] = {
                    "value": sims[r.id],
                    "ci95": _interval(
                        e["ci95"], float(v), sims[r.id], r.likelihood in ("binomial", "absolute")
                    ),
                    "param_sd": math.sqrt(max(float(v), 0.0)),
                }
            moved = sorted(
                zip(problem.keys, (th - theta0) / problem.prior()[1], strict=True),
                key=lambda kv: -abs(kv[1]),
            )
            state["folds"][fold] = {
                "rows": ids,
                "theta": th.tolist(),
                "values": problem.values(th),
                "moved": [[k, float(d)] for k, d in moved[:3]],
                "line_search": search,
                "predictions": preds,
            }
            _write_json(checkpoint, state)
            if progress:
                progress(2 + len(problem.params) + fi, total, f"fold {fold} ({len(ids)} rows)")
    in_sample = problem.row_values(jac["arms0"])
    informed: dict[str, float | None] = {}
    for ids in fl.values():
        informed.update(information_from_other_trials(problem, y0, J, patients, ids))
    rows = []
    for r in problem.rows:
        t = problem.targets[r.id]
        pr = state["folds"][t.fold]["predictions"][r.id]
        ci = pr["ci95"]
        rows.append(
            ValidationRow(
                r.id,
                t.fold,
                r.likelihood,
                t.value,
                t.published_ci() if r.likelihood == "binomial" else None,
                tolerance_text(r, t),
                in_sample[r.id],
                row_hit(r, t, in_sample[r.id]),
                pr["value"],
                None if ci is None else (float(ci[0]), float(ci[1])),
                row_hit(r, t, pr["value"]),
                r.independent,
                r.approximation,
                informed[r.id],
            )
        )
    return ValidationResult(
        rows,
        state["folds"],
        patients,
        seed,
        problem.values(theta0),
        start_from,
        problem.keys,
        state.get("jacobian_source", ""),
        state.get("emulator_bias", []),
    )


# ----------------------------------------------------------------------------- docs/validation


def _is_pk(r: ValidationRow) -> bool:
    return r.likelihood in ("fold", "upper_bound")


def _fmt(v: float | None, ci=None, pk: bool = False) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    if pk:
        s = f"{v:.3g}"
        return s + (f" ({ci[0]:.3g}-{ci[1]:.3g})" if ci else "")
    s = f"{100 * v:.1f}%"
    return s + (f" ({100 * ci[0]:.1f}-{100 * ci[1]:.1f})" if ci else "")


def forest_png(result: ValidationResult) -> bytes:
    """Forest plot: published (95% CI) vs in-sample vs leave-one-trial-out prediction (95% CI)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    props = [r for r in result.rows if not _is_pk(r)]
    pks = [r for r in result.rows if _is_pk(r)]
    h = 0.34 * len(props) + 0.34 * len(pks) + 2.0
    fig = Figure(figsize=(9, h))
    gs = fig.add_gridspec(2, 1, height_ratios=[max(len(props), 1), max(len(pks), 1) + 1])
    for ax, rows, pk in (
        (fig.add_subplot(gs[0]), props, False),
        (fig.add_subplot(gs[1]), pks, True),
    ):
        for i, r in enumerate(rows):
            y = len(rows) - i
            lo_hi = r.published_ci
            if lo_hi is None and r.likelihood == "absolute":
                lo_hi = (r.published - 0.10, r.published + 0.10)
            if lo_hi is None and r.likelihood == "fold":
                lo_hi = (r.published / 2, r.published * 2)
            scale = r.published if pk else 1.0
            if lo_hi:
                ax.plot([lo_hi[0] / scale, lo_hi[1] / scale], [y + 0.2] * 2, color="#444", lw=2)
            ax.plot([r.published / scale], [y + 0.2], "s", color="#444", ms=4)
            if r.in_sample is not None and math.isfinite(r.in_sample):
                ax.plot([r.in_sample / scale], [y], "^", color="#888", ms=4)
            col = "#1f77b4" if r.inside else "#d62728"
            if r.predicted_ci:
                ax.plot(
                    [r.predicted_ci[0] / scale, r.predicted_ci[1] / scale], [y - 0.2] * 2, color=col
                )
            if r.predicted is not None and math.isfinite(r.predicted):
                ax.plot([r.predicted / scale], [y - 0.2], "o", color=col, ms=4)
        ax.set_yticks(range(len(rows), 0, -1))
        ax.set_yticklabels(
            [f"{r.id}{' (n.i.)' if r.independent else ''}" for r in rows], fontsize=7
        )
        ax.grid(axis="x", alpha=0.3)
        if pk:
            ax.set_xscale("log")
            ax.set_xlabel("simulated / published (PK rows)")
        else:
            ax.set_xlim(-0.02, 1.02)
            ax.set_xlabel("proportion")
    fig.axes[0].set_title(
        "published (square, 95% CI or tolerance), in-sample (triangle), leave-one-trial-out "
        "prediction (circle, 95% CI; red: outside)",
        fontsize=8,
    )
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


#: below this share of prior variance removed, a prediction is the prior's, not the other trials'
PRIOR_DRIVEN_BELOW = 0.5


def _informed_summary(result: ValidationResult) -> str:
    """One sentence: how many rows, and how many misses, the other trials barely constrain."""
    weak = [r for r in result.rows if r.informed is not None and r.informed < PRIOR_DRIVEN_BELOW]
    weak_miss = [r for r in weak if r.inside is False]
    misses = sum(1 for r in result.rows if r.inside is False)
    return (
        f"{len(weak)} of {result.n_rows} rows have informed < {PRIOR_DRIVEN_BELOW:g}; "
        f"{len(weak_miss)} of the {misses} misses are among them"
        + (f" ({', '.join(r.id for r in weak_miss)})." if weak_miss else ".")
        + (
            f" '-': the Jacobian resolves no dependence of the row on any parameter "
            f"({', '.join(r.id for r in blind)}: a row that moves in steps the finite "
            "differences did not cross)."
            if (blind := [r for r in result.rows if r.informed is None])
            else ""
        )
    )


def write_validation(result: ValidationResult, out: Path, *, command: str) -> list[Path]:
    """Write ``validation.md``, ``validation_forest.png`` and ``validation.json`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    png = out / "validation_forest.png"
    png.write_bytes(forest_png(result))
    js = out / "validation.json"
    js.write_text(
        json.dumps(
            {
                "command": command,
                "rows": [asdict(r) for r in result.rows],
                "folds": result.folds,
                "start": result.start,
                "patients": result.patients,
                "seed": result.seed,
                "emulator_bias": result.emulator_bias,
            },
            indent=1,
        )
    )
    lines = [
        "# Leave-one-trial-out cross-validation",
        "",
        f"> {DISCLAIMER}",
        "",
        f"Generated by `{command}` on {_dt.date.today().isoformat()} ({result.patients} virtual "
        f"patients per arm, seed {result.seed}; full fit: {result.start_from}; emulator "
        f"Jacobian: {result.jacobian_source}).",
        "",
        f"**{result.n_inside} of {result.n_rows} rows** fall inside their published 95% CI (or "
        f"tolerance) when their trial is left out of the fit; in-sample (every row fitted): "
        f"{result.n_inside_in_sample} of {result.n_rows}.",
        "",
        "A fold is one published source; its rows are left out, the calibrated parameters are "
        "refitted on the other rows (local emulator: Jacobian at the full fit, least squares on "
        "the linearised rows, warm-started from the full fit; the fold's parameters are the full "
        "fit plus the shift the emulator gives for leaving the rows out, measured from the "
        "emulator's own optimum on every row, kept whole or in part by a simulated line search "
        "on the kept rows), and the left-out rows are "
        "re-simulated at the fold's parameters. The prediction's 95% interval combines the "
        "virtual trial's sampling interval and the fold's parameter uncertainty (Laplace). "
        "Criteria, the same as the fit's and the calibration report's: inside the published "
        "95% CI for rows with n; +/-0.10 for proportions without n; within 2-fold for PK "
        "figures; below the bound for the urine upper bound. Rows marked *n.i.* are not "
        "independent checks of another row (same virtual patients).",
        "",
        "The *informed* column says how much the other folds' rows constrain the row's "
        "prediction: the share of its prior parameter variance they remove (0: they say nothing "
        "about the parameters the row depends on, so the prediction sits where the prior, the "
        "centre of the search box, puts it; 1: they pin it down). " + _informed_summary(result),
        "",
        "| row | fold | published (95% CI) | in-sample | LOO predicted (95% CI) | inside? "
        "| informed |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in result.rows:
        pk = r.likelihood == "fold"
        pub = _fmt(r.published, r.published_ci, pk and r.likelihood != "upper_bound")
        if r.likelihood == "upper_bound":
            pub = f"< {100 * r.published:.1f}%"
        flag = "-" if r.inside is None else ("yes" if r.inside else "**no**")
        mark = " *n.i.*" if r.independent else ""
        mark += " (approx.)" if r.approximation else ""
        lines.append(
            f"| {r.id}{mark} | {r.fold} | {pub} | {_fmt(r.in_sample, None, pk)} | "
            f"{_fmt(r.predicted, r.predicted_ci, pk)} | {flag} | "
            f"{'-' if r.informed is None else f'{r.informed:.2f}'} |"
        )
    lines += [
        "",
        "![forest plot](validation_forest.png)",
        "",
        "## Folds: the parameters that moved most",
        "",
        "Shift of the refitted parameter from the full fit, in prior standard deviations (half "
        "the search box on its scale). A parameter only the left-out rows constrain drifts "
        "toward the centre of its box: the other trials say nothing about it.",
        "",
        "*step kept*: the fraction of the emulator's shift that the simulated line search kept "
        "for the parameters some kept row depends on (1, 0.5, 0.25 tried in turn: the first "
        "whose simulated objective on the fold's kept rows is no higher than at the full fit, "
        "else the lowest; never the full fit itself, which has seen the left-out rows); the "
        "parameters no kept row depends on always take the whole shift. With the objective "
        "at the full fit and at each fraction tried.",
        "",
        "| fold | rows | step kept | kept rows' objective: full fit; tried | largest shifts |",
        "|---|---|---|---|---|",
    ]
    for fold, f in result.folds.items():
        moved = ", ".join(f"{k} {d:+.2f}" for k, d in f["moved"])
        ls = f["line_search"]  # every fold has one: older checkpoints are not resumed
        tried = ", ".join(f"x{a:g}: {v:.1f}" for a, v in ls["tried"])
        lines.append(
            f"| {fold} | {len(f['rows'])} | {ls['alpha']:g} | "
            f"{ls['full_fit']:.1f}; {tried} | {moved} |"
        )
    if result.emulator_bias:
        bias = ", ".join(f"{k} {d:+.2f}" for k, d in result.emulator_bias)
        lines += [
            "",
            "The emulator's own optimum on every row lies this far from the full fit (prior SDs; "
            f"linearisation error and Monte Carlo noise, removed from every fold's shift): {bias}.",
        ]
    approx = [r for r in result.rows if r.approximation or r.independent]
    if approx:
        lines += ["", "## Notes on rows", ""]
        for r in approx:
            note = "; ".join(x for x in (r.independent, r.approximation) if x)
            lines.append(f"- `{r.id}`: {note}")
    md = out / "validation.md"
    md.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [md, png, js]
