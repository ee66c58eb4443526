"""The joint-fit machinery on a stand-in simulator with known parameters, and the row tables."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np
import pytest

import calibration_standin as cs
from imiqsim import calibrate as cal
from imiqsim.errors import InputError

STAGES = ((200, 25), (1000, 10))


def _fit(problem, **kw):
    return cal.fit(
        problem,
        stages=kw.pop("stages", STAGES),
        seed=5,
        start={"k1": 2.0, "k2": 0.5, "k3@X": 4.0},
        sigma0=0.2,
        popsize=8,
        **kw,
    )


def test_cma_recovers_known_parameters():
    p = cs.problem()
    res = _fit(p)
    for k, v in cs.TRUE.items():
        assert math.log(res["values"][k] / v) == pytest.approx(0.0, abs=0.06), (k, res["values"])
    assert all(res["hits"].values())
    assert res["evaluations"] == 8 * 35 + 1


def test_cma_recovers_parameters_through_crn_noise():
    p = cs.problem(noise=True)
    res = _fit(p, stages=((400, 20), (4000, 10)))
    for k, v in cs.TRUE.items():
        assert abs(math.log(res["values"][k] / v)) < 0.25, (k, res["values"])


def test_checkpoint_resume_gives_identical_results(tmp_path):
    p = cs.problem(noise=True)
    stages = ((100, 3), (300, 2))
    ref = _fit(p, stages=stages)
    ck = tmp_path / "fit.json"

    class Stop(Exception):
        pass

    def interrupt(done, total, msg):
        if done == 13:  # mid-generation 2 of stage 1
            raise Stop

    with pytest.raises(Stop):
        _fit(p, stages=stages, checkpoint=ck, progress=interrupt)
    state = json.loads(ck.read_text())
    assert state["evaluations"] == 13 and state["pending"] is not None
    res = _fit(p, stages=stages, checkpoint=ck, resume=True)
    assert res["theta"] == ref["theta"]
    assert [h["best"] for h in res["history"]] == [h["best"] for h in ref["history"]]
    assert res["evaluations"] == ref["evaluations"]


def test_resume_refuses_a_checkpoint_of_other_rows(tmp_path):
    ck = tmp_path / "fit.json"
    _fit(cs.problem(), stages=((50, 1),), checkpoint=ck)
    other = cs.problem(truth={"k1": 1.0, "k2": 1.0, "k3@X": 1.0})
    with pytest.raises(InputError, match="same rows"):
        _fit(other, stages=((50, 1),), checkpoint=ck, resume=True)
    with pytest.raises(InputError, match="existing fit checkpoint"):
        _fit(other, checkpoint=tmp_path / "none.json", resume=True)


def test_budget_ends_stages_early():
    p = cs.problem()
    res = _fit(p, stages=((50, 1000), (100, 1000)), budget_s=0.0)
    assert [s["why"] for s in res["stopped"]] == ["wall-clock budget"] * 2
    assert res["evaluations"] == 1  # only the final evaluation of the search mean


def test_jacobian_matches_analytic_derivative_and_skips_unreached_arms():
    p = cs.problem()
    theta = np.log([cs.TRUE[k] for k in p.keys])
    jac = cal.jacobian(p, theta, patients=10, seed=1, step=1e-4)
    J = np.array(jac["J"])
    sim = p.simulator
    for i, r in enumerate(p.rows):
        pr = sim.probability(r.arm, r.endpoint, cs.TRUE)
        c0, coef = sim._design()[r.arm][r.endpoint]
        for j, k in enumerate(p.keys):
            assert J[i, j] == pytest.approx(pr * (1 - pr) * coef.get(k, 0.0), abs=1e-4)


def test_laplace_covariance_shrinks_with_trial_size():
    theta = np.log([cs.TRUE[k] for k in ("k1", "k2", "k3@X")])
    sds = []
    for n in (100, 10000):
        p = cs.problem(n=n)
        jac = cal.jacobian(p, theta, patients=10, seed=1, step=1e-4)
        cov = cal.laplace(p, np.array(jac["y0"]), np.array(jac["J"]), 10)
        sds.append(np.sqrt(np.diag(cov)))
    # 100x the patients: about 10x narrower (the weak prior barely matters)
    assert np.all(sds[0] / sds[1] > 8) and np.all(sds[0] / sds[1] < 11)


def test_row_residuals_match_the_tolerances():
    t = cal.Target("x", "AK", "", "", 0.5, None, "s", "")
    absolute = cal.RowSpec("x", "a", "e", "absolute")
    # the edge of the tolerance is the edge of a 95% band: residual 1.96
    assert cal.row_residual(absolute, t, 0.6, 100) == pytest.approx(cal.Z95)
    assert cal.row_hit(absolute, t, 0.6) and not cal.row_hit(absolute, t, 0.61)
    fold = cal.RowSpec("x", "a", "e", "fold")
    assert cal.row_residual(fold, t, 1.0, 100) == pytest.approx(cal.Z95)
    assert cal.row_hit(fold, t, 0.99) and not cal.row_hit(fold, t, 1.01)
    upper = cal.RowSpec("x", "a", "e", "upper_bound")
    assert cal.row_residual(upper, t, 0.2, 100) == 0.0 and cal.row_residual(upper, t, 1.0, 100) > 1
    tb = cal.Target("x", "AK", "", "", 0.3, 200, "s", "")
    binom = cal.RowSpec("x", "a", "e", "binomial")
    lo, hi = tb.published_ci()
    # at the edge of the Clopper-Pearson CI the deviance residual is about 1.96
    assert 1.7 < abs(cal.row_residual(binom, tb, hi, 10000)) < 2.3
    assert cal.row_residual(binom, tb, 0.2, 100) < 0 < cal.row_residual(binom, tb, 0.4, 100)


def test_package_tables_cover_every_row():
    p = cal.Problem.from_package()
    assert len(p.rows) == 34 == len(cal.load_targets())
    assert {r.id for r in p.rows} == set(p.targets)
    not_indep = {r.id for r in p.rows if r.independent}
    assert {"sbcc5-5x6-histo", "cryo-ak-lesion-cr-gt5s"} <= not_indep
    assert len(p.params) == 23
    assert {"kp_cream_cm_h", "cryo_t50_s", "cryo_log_kill_max", "cryo_hill"} <= set(p.keys)
    # every arm builds a valid scenario; rows of one arm share it
    for a in p.simulator.arms.values():
        assert a.scenario().name == a.name
    sc = p.simulator.arms["sbcc-5pct-bid12"].scenario()
    assert sc.treatment.regimen.times_per_day == 2 and sc.treatment.regimen.max_weeks == 12.0
    assert p.simulator.arms["ak-cryo-3s"].scenario().treatment.cryotherapy.freeze_seconds == 3.0


def test_a_key_reaches_only_the_arms_that_can_use_it():
    """Freeze-time keys reach the cryotherapy arms only; an indication's own key of a name
    replaces the global key of that name in its arms (and only there)."""
    p = cal.Problem.from_package()
    dep = p.simulator.depends
    assert dep("ak-cryo-25s", "cryo_hill") and not dep("ak-5pct-vehicle", "cryo_hill")
    assert not dep("sbcc-5pct", "cryo_t50_s") and dep("sbcc-5pct", "kp_cream_cm_h")
    assert dep("egw-5pct", "patient_susceptibility_sd@EGW")
    assert not dep("egw-5pct", "patient_susceptibility_sd")
    assert dep("ak-5pct-vehicle", "patient_susceptibility_sd")
    assert not dep("ak-5pct-vehicle", "patient_susceptibility_sd@EGW")
    ov = cal.overrides_for(
        {"patient_susceptibility_sd@EGW": 0.5, "patient_susceptibility_sd": 1.4}, "EGW"
    )
    assert ov == {"patient_susceptibility_sd": 0.5}
    # a block fit of the global key alone leaves the warts' own table value in their arms
    assert cal.overrides_for({"patient_susceptibility_sd": 1.4}, "EGW") == {}
    assert cal.overrides_for({"patient_susceptibility_sd": 1.4}, "AK") == {
        "patient_susceptibility_sd": 1.4
    }


def test_bad_table_rows_are_named():
    head = "id,arm,preset,overrides,followup_years,kind,endpoint,likelihood\n"
    with pytest.raises(InputError, match="likelihood"):
        cal.load_arms(head + "a,x,ak-5pct,,0,trial,complete_clearance,poisson\n")
    with pytest.raises(InputError, match="arm"):
        cal.load_arms(
            head
            + "a,x,ak-5pct,,0,trial,complete_clearance,binomial\n"
            + "b,x,ak-5pct,,1,trial,partial_clearance,binomial\n"
        )
    with pytest.raises(InputError, match="JSON"):
        cal.parse_overrides("site=scalp")
    with pytest.raises(InputError, match="lower < upper"):
        cal.load_parameters("name,scope,lower,upper,log_scale,meaning\nk,global,2,1,true,m\n")


def _tables(path, row: str) -> None:
    """A one-row parameters.csv and an empty indications.csv under ``path``."""
    (path / "parameters.csv").write_text(
        f"# c\nname,value,unit,module,description,source,status\n{row}\n"
    )
    (path / "indications.csv").write_text("indication,name,value,unit,description,source,status\n")


def test_write_values_sets_value_and_provenance(tmp_path):
    _tables(tmp_path, "k_memory_kill,0.01,1/h,lesions,memory hazard,old,calibrated")
    params = (
        cal.CalibratedParameter("k_memory_kill", "global", 1e-4, 1, True, "memory"),
        cal.CalibratedParameter("k_memory_kill", "EGW", 1e-4, 1, True, "memory in warts"),
    )
    keys = cal.write_values(
        {"k_memory_kill": 0.02, "k_memory_kill@EGW": 0.03},
        tmp_path,
        "imiqsim calibrate --seed 1",
        params,
        34,
    )
    assert keys == ["k_memory_kill", "k_memory_kill@EGW"]
    g = (tmp_path / "parameters.csv").read_text()
    assert "k_memory_kill,0.02,1/h" in g and "calibrated jointly against all 34 rows" in g
    ind = (tmp_path / "indications.csv").read_text()
    assert ind.splitlines()[-1].startswith("EGW,k_memory_kill,0.03,1/h,memory hazard,calibrated")


def test_gauss_newton_step_moves_toward_the_optimum_and_is_kept_only_if_better():
    p = cs.problem(n=800)
    truth = np.log([cs.TRUE[k] for k in p.keys])
    start = truth + np.array([0.4, -0.3, 0.3])  # a fit left off the optimum
    jac = cal.jacobian(p, start, patients=200, seed=1)
    step = cal.gauss_newton_step(p, start, jac, 200, 1, 1.0)
    assert step["kept"] and step["objective_after"] < step["objective_before"]
    moved = np.asarray(step["theta"])
    assert np.abs(moved - truth).max() < 0.5 * np.abs(start - truth).max()
    # the reported objective is the simulated one at the kept point
    with cal.Evaluator(p.simulator) as ev:
        sims = p.row_values(cal.evaluate(p, [moved], 200, 1, ev)[0])
    assert p.objective(sims, 200, moved) == pytest.approx(step["objective_after"])
    # a step that makes the simulated objective worse is dropped: a Jacobian of the wrong sign
    # points the linearised optimum away from the truth
    wrong = dict(jac, J=(-np.asarray(jac["J"])).tolist())
    bad = cal.gauss_newton_step(p, start, wrong, 200, 1, 1.0)
    assert not bad["kept"] and bad["objective_after"] > bad["objective_before"]
    assert bad["theta"] == start.tolist()
    with pytest.raises(InputError, match="gauss_newton_step"):
        cal.gauss_newton_step(p, start, jac, 200, 1, 1.5)


def test_block_fit_recovers_its_keys_with_the_other_held():
    # two fitted keys: cma 4.5 can fail on a one-dimensional search at its box edge
    full = cs.problem()
    p = full.restricted(["k1", "k3@X"], {"k2": cs.TRUE["k2"]})
    assert p.keys == ["k1", "k3@X"] and p.fingerprint() != full.fingerprint()
    kw = {"stages": ((1000, 20),), "seed": 5, "start": {"k1": 4.0, "k3@X": 0.5}, "sigma0": 0.2}
    res = cal.fit(p, popsize=6, **kw)
    assert list(res["values"]) == ["k1", "k3@X"]
    for k in p.keys:
        assert math.log(res["values"][k] / cs.TRUE[k]) == pytest.approx(0.0, abs=0.06), k
    assert all(res["hits"].values())
    # the held value is what the arms see: hold k2 at a wrong value and the rows miss
    wrong = full.restricted(["k1", "k3@X"], {"k2": 0.5})
    assert wrong.fingerprint() != p.fingerprint()
    assert not all(cal.fit(wrong, popsize=6, **kw)["hits"].values())


def test_posterior_at_tables_can_take_the_gauss_newton_step_first(tmp_path):
    p = cs.problem(n=800)
    truth = np.log([cs.TRUE[k] for k in p.keys])
    start = truth + np.array([0.4, -0.3, 0.3])
    values = p.values(start)
    run = cal.CalibrationRun(
        stages=((200, 1),), seed=1, workers=1, checkpoint_dir=tmp_path, gauss_newton_step=1.0
    )
    res = cal.posterior_at_tables(run, problem=p, values=values)
    step = res["gauss_newton"]
    assert step["kept"] and res["objective"] == step["objective_after"]
    moved = np.asarray(res["theta"])
    assert np.abs(moved - truth).max() < 0.5 * np.abs(start - truth).max()
    assert res["values"] == p.values(moved) and res["chosen"].startswith("a Gauss-Newton step")
    # the posterior is the one at the kept point, not at the start
    plain = cal.posterior_at_tables(
        cal.CalibrationRun(stages=((200, 1),), seed=1, workers=1, checkpoint_dir=tmp_path / "x"),
        problem=p,
        values=p.values(moved),
    )
    for a, b in zip(res["posterior"]["intervals"], plain["posterior"]["intervals"], strict=True):
        assert a["ci95"] == pytest.approx(b["ci95"], rel=1e-9), a["key"]
    assert "gauss_newton" not in plain
    assert plain["theta"] == pytest.approx(moved.tolist(), rel=1e-12)


@dataclass(frozen=True)
class _CountingSimulator(cs.LogisticSimulator):
    """The stand-in with arm3 depending on k1 only; counts the simulations of each arm."""

    calls: list = field(default_factory=list, compare=False, hash=False)
    everything_live: bool = False

    def depends(self, arm: str, key: str) -> bool:
        return self.everything_live or super().depends(arm, key)

    def run_arm(self, arm, values, patients, seed):
        self.calls.append(arm)
        return super().run_arm(arm, values, patients, seed)


def _problem_with(sim):
    full = cs.problem(noise=True)
    problem = cal.Problem(full.targets, full.rows, full.params, sim)
    return problem.restricted(["k2", "k3@X"], {"k1": cs.TRUE["k1"]})


def test_block_fit_simulates_an_arm_its_keys_cannot_reach_once_per_stage():
    design = dict(cs.DESIGN)
    design["arm3"] = {"e1": (-0.3, {"k1": -0.5}), "e2": (0.3, {"k1": 0.4})}
    frozen_design = tuple(sorted((a, tuple(sorted(e.items()))) for a, e in design.items()))
    kw = {"stages": ((300, 3), (600, 2)), "seed": 5, "start": {"k2": 1.0, "k3@X": 1.0}}
    lean = _CountingSimulator(design=frozen_design, noise=True)
    res = cal.fit(_problem_with(lean), popsize=6, sigma0=0.2, **kw)
    # arm3 once per stage; the other arms once per candidate (5 generations of 6, then the mean)
    assert lean.calls.count("arm3") == 2
    assert lean.calls.count("arm1") == 5 * 6 + 1
    # the same fit as one that re-simulates every arm for every candidate
    full = _CountingSimulator(design=frozen_design, noise=True, everything_live=True)
    ref = cal.fit(_problem_with(full), popsize=6, sigma0=0.2, **kw)
    assert full.calls.count("arm3") == 5 * 6 + 1
    assert res["theta"] == ref["theta"] and res["objective"] == ref["objective"]
    assert res["rows"] == ref["rows"]


@pytest.mark.parametrize(
    "keys, fixed, field",
    [
        (["k9"], {}, "--only"),
        (["k1", "k1"], {}, "--only"),
        (["k1"], {"k1": 1.0}, "--fix"),
        (["k1"], {"k2": float("nan")}, "--fix k2"),
        (None, {"k2": 1.0}, "--fix"),
    ],
)
def test_block_fit_refuses_bad_keys(keys, fixed, field):
    with pytest.raises(InputError) as e:
        cs.problem().restricted(keys, fixed)
    assert e.value.field == field


def test_write_values_of_a_block_fit_says_so(tmp_path):
    _tables(tmp_path, "erythema_half,0.1,1,reactions,erythema,old,calibrated")
    params = (cal.CalibratedParameter("erythema_half", "global", 0.01, 1, True, "erythema"),)
    cal.write_values({"erythema_half": 0.2}, tmp_path, "--only erythema_half", params, 34, True)
    g = (tmp_path / "parameters.csv").read_text()
    assert "erythema_half,0.2,1" in g and "held at their tables (block fit" in g
    assert "jointly" not in g


def test_fit_does_not_depend_on_the_callers_global_random_state():
    # CMA-ES draws from a pickled copy of NumPy's global RandomState: it must be the seeded one
    kw = {"stages": ((200, 2),), "seed": 5, "start": {"k1": 2.0, "k2": 0.5, "k3@X": 4.0}}
    np.random.seed(123)
    a = cal.fit(cs.problem(), sigma0=0.2, popsize=8, **kw)
    np.random.seed(456)
    b = cal.fit(cs.problem(), sigma0=0.2, popsize=8, **kw)
    assert a["values"] == b["values"]
    assert [h["best"] for h in a["history"]] == [h["best"] for h in b["history"]]
