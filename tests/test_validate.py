"""Leave-one-trial-out cross-validation: folds by source, the emulator's refit, the outputs."""

from __future__ import annotations

import math

import numpy as np
import pytest

import calibration_standin as cs
from imiqsim import calibrate as cal
from imiqsim import cv


def test_folds_group_rows_by_normalised_source():
    p = cal.Problem.from_package()
    fl = cv.folds(p)
    assert sum(len(v) for v in fl.values()) == 34
    # "Lebwohl et al. 2004, J Am Acad Dermatol 50:714" and "Lebwohl et al. 2004" are one trial
    assert sorted(fl["Lebwohl et al. 2004"]) == sorted(
        [
            "ak5-2x16-cc",
            "ak5-2x16-cc-veh",
            "ak5-2x16-pc",
            "ak5-2x16-pc-veh",
            "ak5-2x16-median-red",
            "ak5-2x16-severe-erythema",
        ]
    )
    # the label's section 6.1 rows are one document; the Australian PI another
    assert sorted(fl["Aldara label"]) == ["ak5-2x16-headache", "ak5-2x16-rest"]
    assert len(fl["Aldara product information"]) == 4
    assert len(fl["Geisse et al. 2002"]) == 4 and len(fl["Geisse et al. 2004"]) == 2
    assert len(fl["Thai et al. 2004"]) == 4 and len(fl["Swanson et al. 2010"]) == 6
    assert set(fl) >= {"Edwards et al. 1998", "Zyclara label", "Lee et al. 2005"}
    assert len(fl) == 10


def test_standin_folds_merge_citation_variants():
    fl = cv.folds(cs.problem())
    assert fl == {
        "Alpha et al. 2001": ["arm1-e1", "arm1-e2"],
        "Gamma label": ["arm2-e1", "arm2-e2"],
        "Beta 2003": ["arm3-e1", "arm3-e2"],
    }


def _perturbed_problem():
    """Published rows from other true values: the full fit and each refit move the parameters."""
    return cs.problem(n=800, truth={"k1": 0.6, "k2": 1.7, "k3@X": 1.5})


def test_emulator_refit_reproduces_a_direct_refit():
    p = _perturbed_problem()
    theta_fit = np.log([0.55, 1.8, 1.4])  # near the optimum, as a full fit would leave it
    jac = cal.jacobian(p, theta_fit, patients=10, seed=1, step=1e-3)
    y0, J = np.array(jac["y0"]), np.array(jac["J"])
    for ex in ([], ["arm3-e1", "arm3-e2"], ["arm1-e1"]):
        emu = cv.emulator_refit(p, theta_fit, y0, J, 10, exclude=ex)
        direct = cv.direct_refit(p, theta_fit, 10, 1, exclude=ex)
        assert np.allclose(emu, direct, atol=0.03), (ex, emu, direct)
    # with every row the refit stays at the optimum of the full problem
    full = cv.direct_refit(p, theta_fit, 10, 1)
    emu_full = cv.emulator_refit(p, full, *_jac(p, full), 10)
    assert np.allclose(emu_full, full, atol=1e-3)


def _jac(p, theta):
    j = cal.jacobian(p, theta, patients=10, seed=1, step=1e-4)
    return np.array(j["y0"]), np.array(j["J"])


def test_validate_predicts_held_out_rows_and_writes_docs(tmp_path):
    p = cs.problem(n=400)
    start = {k: v * 1.02 for k, v in cs.TRUE.items()}
    ck = tmp_path / "ck.json"
    res = cv.validate(p, start=start, patients=50, seed=3, checkpoint=ck)
    assert res.n_rows == 6
    # the stand-in's rows are consistent with its true parameters: every left-out row is predicted
    assert res.n_inside == 6, [(r.id, r.predicted, r.published_ci) for r in res.rows]
    for r in res.rows:
        assert r.predicted_ci[0] <= r.predicted <= r.predicted_ci[1]
    paths = cv.write_validation(res, tmp_path / "docs", command="imiqsim validate (test)")
    md = paths[0].read_text()
    assert "**6 of 6 rows**" in md and "| arm3-e2 | Beta 2003 |" in md
    assert paths[1].read_bytes()[:4] == b"\x89PNG"
    # resuming a finished run recomputes nothing and gives the same table
    again = cv.validate(p, start=start, patients=50, seed=3, checkpoint=ck, resume=True)
    assert [r.predicted for r in again.rows] == [r.predicted for r in res.rows]


def test_validate_flags_a_row_the_other_trials_contradict():
    # Beta's published rows come from other parameter values than Alpha's: left out, they miss
    p = cs.problem(n=2000)
    t = dict(p.targets)
    for rid in ("arm3-e1", "arm3-e2"):
        sim = p.simulator
        arm, ep = rid.split("-")
        v = sim.probability(arm, ep, {"k1": 3.0, "k2": 2.0, "k3@X": 0.2})
        t[rid] = cal.Target(rid, "X", arm, ep, v, 2000, cs.SOURCE[rid], "")
    p2 = cal.Problem(t, p.rows, p.params, p.simulator)
    res = cv.validate(p2, start=cs.TRUE, patients=50, seed=3)
    miss = {r.id for r in res.rows if r.inside is False}
    assert {"arm3-e1", "arm3-e2"} & miss
    assert all(math.isfinite(r.predicted) for r in res.rows)


@pytest.mark.parametrize("bad", [{"patients": 60}, {"seed": 4}])
def test_resume_with_other_settings_is_refused(tmp_path, bad):
    from imiqsim.errors import InputError

    p = cs.problem()
    ck = tmp_path / "ck.json"
    cv.validate(p, start=cs.TRUE, patients=50, seed=3, checkpoint=ck)
    kw = {"patients": 50, "seed": 3, **bad}
    with pytest.raises(InputError, match="checkpoint of 50 patients, seed 3"):
        cv.validate(p, start=cs.TRUE, checkpoint=ck, resume=True, **kw)


def test_validate_reuses_the_fits_jacobian_from_the_posterior(tmp_path, monkeypatch):
    p = cs.problem(n=400)
    theta = p.to_theta(cs.TRUE)
    jac = cal.jacobian(p, theta, patients=50, seed=9)
    cov = cal.laplace(p, np.array(jac["y0"]), np.array(jac["J"]), 50)
    path = cal.write_posterior(tmp_path / "posterior.json", p, theta, cov, jac, "test")
    monkeypatch.setattr(cv, "posterior_path", lambda: path)
    calls = []
    real = cal.jacobian
    monkeypatch.setattr(cv, "jacobian", lambda *a, **k: calls.append(1) or real(*a, **k))
    res = cv.validate(p, start=cs.TRUE, patients=50, seed=3)
    assert calls == [] and "posterior.json" in res.jacobian_source
    fresh = cv.validate(p, start=cs.TRUE, patients=50, seed=3, reuse_jacobian=False)
    assert calls == [1] and "finite differences" in fresh.jacobian_source
    # the same left-out predictions either way (the stand-in is smooth: the Jacobians agree)
    for a, b in zip(res.rows, fresh.rows, strict=True):
        assert a.predicted == pytest.approx(b.predicted, abs=0.01)


def test_fold_shift_is_measured_from_the_emulators_own_optimum(tmp_path):
    """A start off the optimum does not move every fold alike: each fold is start + its shift."""
    p = cs.problem(n=400)
    start = {k: v * 1.3 for k, v in cs.TRUE.items()}
    res = cv.validate(p, start=start, patients=50, seed=3, checkpoint=tmp_path / "ck.json")
    theta0 = p.to_theta(start)
    jac = cal.jacobian(p, theta0, patients=50, seed=3)
    y0, J = np.array(jac["y0"]), np.array(jac["J"])
    all_rows = cv.emulator_refit(p, theta0, y0, J, 50)
    # the emulator's optimum is near the truth, 0.26 on the log scale below the start
    assert np.allclose(all_rows - theta0, -np.log(1.3), atol=0.08), all_rows - theta0
    assert res.emulator_bias and abs(res.emulator_bias[0][1]) > 0.05
    lo, hi = p.theta_bounds()
    for fold, ids in cv.folds(p).items():
        # the simulated line search takes the first fraction of the shift it accepts
        alpha = res.folds[fold]["line_search"]["alpha"]
        assert alpha in cv.LINE_SEARCH_STEPS
        want = np.clip(
            theta0 + alpha * (cv.emulator_refit(p, theta0, y0, J, 50, exclude=ids) - all_rows),
            lo,
            hi,
        )
        assert np.allclose(res.folds[fold]["theta"], want, atol=1e-6), fold
    # the fold shifts are small next to the start's offset from the truth
    shifts = [np.abs(np.array(f["theta"]) - theta0).max() for f in res.folds.values()]
    assert max(shifts) < 0.2, shifts


def _problem_with_private_parameter():
    """The stand-in, with a fourth rate that only Beta's first row depends on."""
    design = {a: dict(e) for a, e in cs.DESIGN.items()}
    design["arm3"] = {**design["arm3"], "e1": (-0.3, {"k1": -0.5, "k4": 1.5})}
    sim = cs.LogisticSimulator(
        design=tuple(sorted((a, tuple(sorted(e.items()))) for a, e in design.items()))
    )
    truth = {**cs.TRUE, "k4": 1.0}
    targets, rows = {}, []
    for arm, eps in sorted(design.items()):
        for ep in eps:
            rid = f"{arm}-{ep}"
            v = sim.probability(arm, ep, truth)
            targets[rid] = cal.Target(rid, "X", arm, ep, v, 4000, cs.SOURCE[rid], "")
            rows.append(cal.RowSpec(rid, arm, ep, "binomial"))
    base = cs.problem()
    k4 = cal.CalibratedParameter("k4", "global", 0.05, 20.0, True, "stand-in rate only arm3 uses")
    return cal.Problem(targets, tuple(rows), (*base.params, k4), sim), truth


def test_information_from_other_trials_tells_a_prior_driven_row_from_a_predicted_one(tmp_path):
    # every parameter of the stand-in is shared by two or more trials: each left-out row is
    # pinned down by the others
    p = cs.problem()
    y0, J = _jac(p, p.to_theta(cs.TRUE))
    for ids in cv.folds(p).values():
        for rid, info in cv.information_from_other_trials(p, y0, J, 10, ids).items():
            assert info > 0.9, (rid, info)
    # k4 enters only Beta's first row: left out, the other trials say nothing about it, while
    # Beta's second row (k1 and k2, which Alpha and Gamma share) stays predicted
    p4, truth = _problem_with_private_parameter()
    y0, J = _jac(p4, p4.to_theta(truth))
    info = cv.information_from_other_trials(p4, y0, J, 10, cv.folds(p4)["Beta 2003"])
    assert set(info) == {"arm3-e1", "arm3-e2"}
    assert info["arm3-e1"] < 0.5 < 0.9 < info["arm3-e2"], info
    # and the validation table carries it with the count of prior-driven rows
    res = cv.validate(p4, start=truth, patients=50, seed=3)
    by_id = {r.id: r for r in res.rows}
    assert by_id["arm3-e1"].informed == pytest.approx(info["arm3-e1"], abs=0.05)
    md = cv.write_validation(res, tmp_path, command="t")[0].read_text()
    assert "1 of 6 rows have informed < 0.5" in md


def test_line_search_keeps_only_a_shift_the_simulator_accepts():
    p = cs.problem(n=4000)
    theta0 = p.to_theta(cs.TRUE)
    bounds = p.theta_bounds()
    ids = cv.folds(p)["Beta 2003"]
    none_free = np.zeros(3, dtype=bool)
    with cal.Evaluator(p.simulator, 1) as ev:
        arms0 = cal.evaluate(p, [theta0], 50, 3, ev)[0]
        # a shift away from the truth that every kept row contradicts: every fraction is tried
        # and the smallest harm is kept, never the full fit itself (it has seen the left-out rows)
        bad = np.array([2.0, 0.0, 0.0])
        th, res, search = cv._line_search(p, theta0, bad, arms0, ids, 50, 3, ev, bounds, none_free)
        assert [a for a, _ in search["tried"]] == list(cv.LINE_SEARCH_STEPS)
        assert all(f > search["full_fit"] for _, f in search["tried"])
        assert search["alpha"] == min(cv.LINE_SEARCH_STEPS)
        assert np.allclose(th, theta0 + min(cv.LINE_SEARCH_STEPS) * bad)
        # a parameter no kept row depends on takes its whole shift whatever the damping
        free = np.array([False, False, True])
        both = np.array([2.0, 0.0, 0.4])
        th, _, search = cv._line_search(p, theta0, both, arms0, ids, 50, 3, ev, bounds, free)
        assert th[2] == pytest.approx(theta0[2] + 0.4) and th[0] < theta0[0] + 2.0
        # from a start off the truth, a shift back toward it is kept whole
        off = theta0 + 0.3
        arms_off = cal.evaluate(p, [off], 50, 3, ev)[0]
        th, _, search = cv._line_search(
            p, off, theta0 - off, arms_off, ids, 50, 3, ev, bounds, none_free
        )
        assert search["alpha"] == 1.0 and np.allclose(th, theta0)
        assert search["tried"][0][1] < search["full_fit"]
