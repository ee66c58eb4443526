"""Trials with parameter uncertainty: posterior draws and the widened intervals."""

from __future__ import annotations

import json

import numpy as np
import pytest

from imiqsim.errors import InputError
from imiqsim.trial import run_trial
from imiqsim.trial.uncertainty import Posterior, combine_endpoint


def _posterior(sd: float = 0.5) -> Posterior:
    return Posterior(
        ["death_receptor_tnf_half@sBCC", "k_memory_kill"],
        ["log", "log"],
        [2.0, 1e-4],
        [60.0, 0.5],
        np.log([9.566, 0.00997483]),
        np.diag([sd**2, 0.01]),
        "test",
    )


def _write(post: Posterior, path):
    path.write_text(
        json.dumps(
            {
                "keys": post.keys,
                "scale": post.scale,
                "lower": post.lower,
                "upper": post.upper,
                "mean": post.mean.tolist(),
                "cov": post.cov.tolist(),
            }
        )
    )


def test_draws_are_reproducible_for_a_seed_and_follow_the_covariance():
    post = _posterior(0.3)
    a, b, c = post.draw(5, seed=3), post.draw(5, seed=3), post.draw(5, seed=4)
    assert a == b and a != c
    many = post.draw(4000, seed=1)
    th = np.log([[d[k] for k in post.keys] for d in many])
    assert np.allclose(th.mean(axis=0), post.mean, atol=0.02)
    assert np.allclose(th.std(axis=0), [0.3, 0.1], rtol=0.05)


def test_draws_stay_in_the_search_box():
    post = _posterior(5.0)  # far wider than the box
    for d in post.draw(200, seed=2):
        assert 2.0 <= d["death_receptor_tnf_half@sBCC"] <= 60.0


def test_posterior_file_round_trip_and_errors(tmp_path):
    post = _posterior()
    f = tmp_path / "p.json"
    _write(post, f)
    again = Posterior.load(f)
    assert again.keys == post.keys and np.allclose(again.cov, post.cov)
    with pytest.raises(InputError, match="imiqsim calibrate --write"):
        Posterior.load(tmp_path / "missing.json")
    f.write_text(json.dumps({"keys": ["a"], "scale": ["log"], "lower": [1], "upper": [2],
                             "mean": [0, 1], "cov": [[1]]}))  # fmt: skip
    with pytest.raises(InputError, match="covariance"):
        Posterior.load(f)


def test_combine_endpoint_adds_between_draw_spread_beyond_sampling():
    pooled = {"value": 0.5, "ci95": [0.45, 0.55], "n": 400}
    se = 0.05 / 1.959963984540054
    # draws that differ only by sampling (4 blocks: sd = 2 x pooled se): no parameter spread
    calm = combine_endpoint(pooled, [0.5 - 2 * se, 0.5 + 2 * se, 0.5, 0.5], percent=True)
    assert calm["parameter_sd"] == 0.0 and calm["ci95"] == pytest.approx([0.45, 0.55])
    wide = combine_endpoint(pooled, [0.2, 0.8, 0.35, 0.65], percent=True)
    assert wide["parameter_sd"] > 0.2
    assert wide["ci95"][0] < 0.1 and wide["ci95"][1] > 0.9
    assert wide["ci95_sampling"] == [0.45, 0.55]


def test_run_trial_with_uncertainty_splits_patients_across_draws(tmp_path, monkeypatch):
    post = _posterior(0.8)
    from imiqsim.trial.uncertainty import run_trial_uncertain

    tr = run_trial_uncertain(
        ["sbcc-5pct"], uncertainty=4, patients=80, seed=5, followup_years=0.0, posterior=post
    )
    df = tr.arms[0].outcomes
    assert len(df) == 80 and sorted(df["patient"]) == list(range(80))
    assert df.groupby("parameter_draw").size().tolist() == [20, 20, 20, 20]
    e = tr.arms[0].endpoints["composite_clearance"]
    assert e["ci95"][0] <= e["ci95_sampling"][0] and e["ci95"][1] >= e["ci95_sampling"][1]
    # the draws reach the simulation: a wide posterior of the TNF-alpha level that primes the
    # death-receptor route, which clears most sBCC, spreads clearance by block
    by_draw = df.groupby("parameter_draw")["composite_clearance"].mean()
    assert by_draw.max() - by_draw.min() > 0.2 and e["parameter_sd"] > 0.05
    # run_trial(uncertainty=K) reads the package posterior: the same seed, the same numbers
    import imiqsim.calibrate as cal

    _write(post, tmp_path / "posterior.json")
    monkeypatch.setattr(cal, "posterior_path", lambda: tmp_path / "posterior.json")
    tr2 = run_trial(["sbcc-5pct"], patients=80, seed=5, followup_years=0.0, uncertainty=4)
    assert tr2.arms[0].endpoints == tr.arms[0].endpoints


def test_uncertainty_argument_is_checked():
    with pytest.raises(InputError, match="uncertainty"):
        run_trial(["sbcc-5pct"], patients=10, uncertainty=1)
    with pytest.raises(InputError, match="one patient per parameter draw"):
        run_trial(["sbcc-5pct"], patients=3, uncertainty=4)
