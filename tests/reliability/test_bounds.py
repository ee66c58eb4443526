"""Parameter bounds as data (model/parameter_bounds.csv): every parameter covered, enforced on
every path a value comes in by (--set, [parameters], the Python API)."""

from __future__ import annotations

import numpy as np
import pytest

import imiqsim
from imiqsim.engine.run import run_batch
from imiqsim.errors import InputError, ModelDefinitionError
from imiqsim.model import KNOCKOUTS, get_model
from imiqsim.model import bounds as B
from imiqsim.scenario import load_scenario, resolve


def test_every_model_parameter_has_a_bound_and_its_values_lie_inside():
    m = get_model()
    assert B.uncovered(m.parameter_names) == []
    for q in m.parameters:
        assert B.bound_for(q.name).allows(q.value), (q.name, q.value)
    for ind, table in m.indication_parameters.items():
        for name, q in table.items():
            assert B.bound_for(name).allows(q.value), (ind, name, q.value)
    for site, v in m.site_permeability.items():
        assert B.bound_for("site_permeability").allows(v), site
    for ko, values in KNOCKOUTS.items():  # a knockout sets allowed values only
        for name, v in values.items():
            assert B.bound_for(name).allows(v), (ko, name, v)


def test_exact_names_win_over_patterns_and_the_first_pattern_wins():
    assert B.bound_for("cream_strength").pattern == "cream_strength"
    assert B.bound_for("tolerance_max").describe() == "in [0, 1]"  # not *_max (>= 0)
    assert B.bound_for("k_nk_kill").pattern == "k_*"
    assert B.bound_for("nk_kill_half").describe() == "> 0"
    assert B.bound_for("a_new_thing_present").kind == "switch"  # a new parameter: no row needed
    assert B.bound_for("k_new_rate").describe() == ">= 0"
    assert B.bound_for("entirely_unconventional") is None


@pytest.mark.parametrize(
    "name, value",
    [
        ("nk_present", 2.0),
        ("nk_present", 0.5),
        ("cd8_fraction", 1e6),
        ("tlr7_hill", 0.0),
        ("tlr7_ec50_ug_ml", 0.0),
        ("central_volume_l", 0.0),
        ("plasma_volume_ml", 0.0),
        ("visible_threshold_cells", 0.0),
        ("k_nk_kill", -1e-12),
        ("treated_area_cm2", 1e-320),
    ],
)
def test_out_of_range_values_are_refused_on_every_path(name, value, tmp_path):
    with pytest.raises(InputError) as e:  # the Python API
        imiqsim.simulate("sbcc-5pct", days=1, set={name: value})
    assert e.value.field == f"parameters.{name}" and name in str(e.value)
    assert B.bound_for(name).describe() in str(e.value)
    text = (
        'name = "t"\nindication = "sBCC"\nsite = "trunk"\nproduct = "imiquimod-5%"\n'
        f"area_cm2 = 4.0\n[parameters]\n{name} = {value!r}\n"
        "[regimen]\napplications_per_week = 5\nmax_weeks = 6\nleave_on_hours = 8\n"
        "amount = { sachets = 1 }\n"
    )
    p = tmp_path / "s.toml"
    p.write_text(text)
    with pytest.raises(InputError) as e:  # a scenario file's [parameters]
        imiqsim.simulate(load_scenario(p), days=1)
    assert e.value.field == f"parameters.{name}"


def test_in_range_values_pass_and_non_numbers_are_refused():
    assert B.check_parameter("nk_present", 0) == 0.0
    assert B.check_parameter("k_nk_kill", 0.0) == 0.0  # 0 switches a process off: allowed
    for bad in ("1", True, None, float("nan"), float("inf")):
        with pytest.raises(InputError):
            B.check_parameter("k_nk_kill", bad)


def test_duplicate_knockouts_are_refused_in_the_api():
    with pytest.raises(InputError, match="only once"):
        imiqsim.simulate("sbcc-5pct", days=1, knockouts=["tlr7", "tlr7"])


def test_a_broken_bounds_row_is_a_model_definition_error(monkeypatch):
    with pytest.raises(ModelDefinitionError):
        B._num("abc", "row")
    with pytest.raises(ModelDefinitionError):
        B._flag("maybe", "row")
    assert B._flag("", "row") is False and B._num("", "row") is None


def test_a_division_by_zero_in_the_kernel_is_a_failed_patient_not_a_lost_batch():
    # bypass the bounds (as a sweep over raw parameter vectors could): the kernels are compiled
    # with error_model="numpy", so x/0 is inf/nan and the patient gets a failure status
    m = get_model()
    sc = resolve("sbcc-5pct")
    P = np.tile(sc.model_parameters(m), (3, 1))
    P[1, m.parameter_index("central_volume_l")] = 0.0
    P[2, m.parameter_index("visible_threshold_cells")] = 0.0
    res = run_batch(m, P, sc.events(), np.arange(0.0, 24.0 * 10, 24.0))
    assert res.status[0] == 0
    assert res.status[1] != 0 and res.status[2] != 0
    assert np.all(np.isfinite(res.Y[0]))
