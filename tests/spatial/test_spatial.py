"""The skin field: a 2-D grid of sites running the compiled single-site model (imiqsim.spatial).

Coarse grids keep this file fast; benchmarks/bench_field.py times the fine ones.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from imiqsim.engine.run import run_batch
from imiqsim.errors import InputError
from imiqsim.model import CYTOKINES, SKIN_CELLS, get_model
from imiqsim.spatial import (
    DIFFUSION_TABLE,
    FieldSpec,
    LesionPlacement,
    SiteEvent,
    build_layout,
    diffuse_2d,
    diffusion_step,
    register_site_event,
    simulate_field,
    unregister_site_event,
    write_field_outputs,
)
from imiqsim.spatial.outputs import plot_key_days
from imiqsim.spatial.simulate import FieldIntegrator
from imiqsim.vocabulary import APPLY, FOOTER, FREEZE

MODEL = get_model()


@pytest.fixture(scope="module")
def ak_field():
    """Typical AK patient, 5% cream on the whole 25 cm2 field, 5 mm grid, to end of treatment."""
    return simulate_field(FieldSpec("ak-5pct", resolution_mm=5.0, seed=2, days=16 * 7))


# --------------------------------------------------------------------------- the single-site limit


def test_single_lesion_over_whole_field_without_diffusion_is_the_single_site_model():
    spec = FieldSpec(
        "ak-5pct",
        resolution_mm=10.0,
        days=35,
        output_every_hours=12,
        diffusion_enabled=False,
        lesions=(LesionPlacement(slot=1, x_mm=25.0, y_mm=25.0, radius_mm=100.0, cells=1e5),),
        group_tol=None,
        shared_states=(),
        rtol=1e-9,
    )
    res = simulate_field(spec)
    assert (
        res.info["n_sites"] == 25 and res.info["mean_groups_per_step"] == 25
    )  # every site integrated
    P = res.layout.single_site_parameters
    assert P[MODEL.parameter_index("treated_area_cm2")] == pytest.approx(25.0)  # the field's area
    t_h = res.timecourses["time"].values * 24.0
    ref = run_batch(MODEL, P[None, :], spec.scenario_obj.events(), t_h, rtol=1e-9)
    assert ref.status[0] == 0
    burden = ref.observables[0, :, MODEL.observable_index("lesion_burden")]
    serum = ref.observables[0, :, MODEL.observable_index("serum_conc_ng_ml")]
    field_burden = res.timecourses["lesion_burden"].values
    field_serum = res.timecourses["serum_conc_ng_ml"].values
    assert serum.max() > 0 and burden[0] == pytest.approx(1e5)
    np.testing.assert_allclose(field_burden, burden, rtol=1e-6)
    np.testing.assert_allclose(field_serum, serum, rtol=1e-6, atol=1e-6 * serum.max())


@pytest.mark.parametrize(
    "preset, side_mm, days",
    [("ak-5pct", 50.0, 60), ("egw-3.75pct", 20.0, 70), ("ak-cryo", 50.0, 60)],
)
def test_a_one_site_field_takes_exactly_the_patient_engines_steps(preset, side_mm, days):
    """One stepper core, one dose policy, one event code: a 1-site field is run_batch, bit for bit.

    Cream until clear (egw) exercises the gates and the rest rule, ak-cryo the model's FREEZE.
    """
    spec = FieldSpec(
        preset,
        resolution_mm=side_mm,
        days=days,
        output_every_hours=24,
        map_every_days=1,
        diffusion_enabled=False,
        group_tol=None,
        lesions=(LesionPlacement(1, side_mm / 2, side_mm / 2, 100.0, cells=1e5),),
    )
    res = simulate_field(spec)
    assert res.info["n_sites"] == 1
    t_h = res.timecourses["time"].values * 24.0
    P = res.layout.single_site_parameters
    ref = run_batch(MODEL, P[None, :], spec.scenario_obj.events(), t_h, method="dp5")
    assert ref.status[0] == 0
    cells = ref.Y[0][:, MODEL.state_index("lesion_1")]
    assert np.array_equal(res.timecourses["lesion_cells"].values[:, 0], cells)
    serum = ref.observables[0, :, MODEL.observable_index("serum_conc_ng_ml")]
    assert np.array_equal(res.timecourses["serum_conc_ng_ml"].values, serum)
    assert res.info["integrator_steps"] == ref.steps[0]
    assert res.info["applications_given"] == ref.applications_given[0]
    assert res.info["doses_skipped_for_rest"] == ref.doses_skipped_for_rest[0]


def test_whole_field_cream_reproduces_each_lesion_of_the_single_site_model():
    """Lesions as patches, cream everywhere, antigen shared: each lesion as in one-site model.

    The antigen-driven local arm (IFN-gamma from T cells meeting their antigen, antigen retention
    of T cells) is local on purpose: a lesion's own cells drive it where they sit, so with it on a
    patch cannot equal the single-site model, which pools every lesion's antigen. It is switched
    off here; with it on, the reaction concentrates over lesions (the next test).
    """
    off = {"ifn_gamma_present": 0.0, "t_retention_max": 0.0}
    ak_field = simulate_field(
        FieldSpec("ak-5pct", resolution_mm=5.0, seed=2, days=16 * 7, parameters=off)
    )
    P = ak_field.layout.single_site_parameters
    t_h = ak_field.timecourses["time"].values * 24.0
    ref = run_batch(MODEL, P[None, :], ak_field.spec.scenario_obj.events(), t_h)
    slots = ak_field.timecourses["lesion"].values
    cells = ref.Y[0][:, [MODEL.state_index(f"lesion_{k}") for k in slots]]
    np.testing.assert_allclose(
        ak_field.timecourses["lesion_cells"].values, cells, rtol=1e-4, atol=1e-3
    )


# --------------------------------------------------------------------------- lateral transport


def test_diffusion_alone_conserves_mass_and_flattens_a_peak():
    rng = np.random.default_rng(0)
    u = rng.uniform(0.0, 1.0, (23, 17))
    u[11, 8] = 500.0
    v = diffuse_2d(u, d_mm2_h=0.036, dt_h=48.0, dx_mm=0.25)  # hundreds of explicit sub-steps
    assert abs(v.sum() - u.sum()) <= 1e-12 * u.sum()
    assert v.max() < 0.1 * u.max() and v.min() > u.min()
    assert np.all(v >= 0)
    w = diffuse_2d(v, d_mm2_h=0.036, dt_h=5000.0, dx_mm=0.25)
    assert np.ptp(w) < 1e-6 * w.mean()  # zero-flux boundaries: flattens to the mean, nothing leaks
    assert w.mean() == pytest.approx(u.mean(), rel=1e-12)
    flat = np.full((6, 5), 3.0)
    assert np.array_equal(diffuse_2d(flat, 0.036, 10.0, 0.25), flat)  # flat stays exactly flat
    # the engine's in-place step on a site-major state array (only the named column moves)
    Y = np.zeros((23 * 17, 3))
    Y[:, 1] = u.ravel()
    Y[:, 2] = 7.0
    assert diffusion_step(Y, np.array([1, 2]), np.array([0.036, 0.036]), 48.0, 23, 17, 0.25) == 1
    assert np.allclose(Y[:, 1].reshape(23, 17), v, rtol=0, atol=1e-12)
    assert np.all(Y[:, 0] == 0.0) and np.all(Y[:, 2] == 7.0)


def test_every_cytokine_and_skin_cell_of_the_model_diffuses():
    """The diffusion table's groups are the model's vocabulary, not a list kept in spatial/."""
    spec = FieldSpec("ak-5pct", resolution_mm=10.0, days=1)
    integ = FieldIntegrator(spec, MODEL, build_layout(spec))
    diffused = {MODEL.states[i].name for i in integ.diff_cols}
    assert set(CYTOKINES) | set(SKIN_CELLS) <= diffused
    assert {"epidermis", "dermis", "stratum_corneum"} <= diffused
    local = {st.name for st in MODEL.states if not st.systemic}
    for group, entry in DIFFUSION_TABLE.items():
        assert set(entry.states) <= local, group  # no typo, nothing systemic
    assert not diffused & {"film", "applied", "apoptotic_cells", "lesion_1"}
    off = FieldIntegrator(
        FieldSpec("ak-5pct", resolution_mm=10.0, days=1, diffusion={"cytokines": 0.0}),
        MODEL,
        build_layout(spec),
    )
    assert not {MODEL.states[i].name for i in off.diff_cols} & set(CYTOKINES)


def test_lesion_directed_cream_gradients_conserve_drug_and_grouping_matches_every_site():
    kw = {
        "resolution_mm": 5.0,
        "days": 10,
        "application": "lesions",
        "application_margin_mm": 2.0,
        "seed": 2,
    }
    grouped = simulate_field(FieldSpec("ak-5pct", **kw))
    every = simulate_field(FieldSpec("ak-5pct", group_tol=None, **kw))
    assert grouped.info["diffused_column_steps"] > 0  # there were lateral gradients
    assert grouped.info["mean_groups_per_step"] < every.info["mean_groups_per_step"]
    for name in ("erythema_score", "skin_conc_ug_ml", "immune_infiltrate"):
        a, b = grouped.maps[name].values, every.maps[name].values
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * max(float(np.abs(b).max()), 1e-9))
    np.testing.assert_allclose(
        grouped.timecourses["lesion_cells"].values,
        every.timecourses["lesion_cells"].values,
        rtol=1e-5,
    )
    # drug only where the cream went: outside the masks the skin sees far less
    conc = every.maps["skin_conc_ug_ml"]
    assert float(conc.max()) > 0 and float(conc.min()) < 0.5 * float(conc.max())
    # drug mass balance over the field (film + skin + washed off + blood + excreted = applied),
    # with diffusion on
    tc = every.timecourses
    applied = tc["drug_applied_mg"].values[-1]
    assert 0 < applied < 12.5 * 3  # less than whole-field doses: cream only on the lesions
    assert tc["drug_in_skin_mg"].values.max() > 0


# --------------------------------------------------------------------------- biology on the grid


def test_whole_field_cream_clears_subclinical_lesions_and_inflames_visible_lesion_sites(ak_field):
    les = ak_field.lesions
    sub = les[les["subclinical_baseline"]]
    vis = les[les["visible_baseline"]]
    assert len(sub) >= 1 and len(vis) >= 1
    lc = ak_field.timecourses["lesion_cells"].sel(lesion=sub["id"].values)
    assert np.all(lc.isel(time=-1).values < 0.5 * lc.isel(time=0).values)  # subclinical cells fall
    mid = ak_field.key_times_days["mid_treatment"]
    ery = ak_field.maps["peak_erythema_score"].values
    slot_map = ak_field.maps["lesion_slot"].values
    lesion_sites = np.isin(slot_map, vis["id"].values)
    assert ery[lesion_sites].min() > 0.5  # visible lesions' sites inflamed
    lsr_mid = ak_field.maps["lsr_score"].sel(time=mid, method="nearest").values
    assert lsr_mid[lesion_sites].min() > 1.0
    # the pigment-change map exists and is a fraction
    pig = ak_field.pigment.values
    assert pig.shape == slot_map.shape and np.all((pig >= 0) & (pig <= 1))


def test_reaction_is_strongest_over_lesions_mid_treatment(ak_field):
    # issue 10: under imiquimod subclinical AKs "light up"; the antigen-driven infiltrate (its
    # IFN-gamma) inflames the skin over lesions more than clear skin between them
    les = ak_field.lesions
    mid = ak_field.key_times_days["mid_treatment"]
    slot_map = ak_field.maps["lesion_slot"].values
    sub = np.isin(slot_map, les[les["subclinical_baseline"]]["id"].values)
    clear = slot_map <= 0
    assert sub.any() and clear.any()
    ery = ak_field.maps["erythema_score"].sel(time=mid, method="nearest").values
    lsr = ak_field.maps["lsr_score"].sel(time=mid, method="nearest").values
    assert ery[sub].mean() > ery[clear].mean() + 0.01
    assert lsr[sub].mean() > lsr[clear].mean() + 0.5
    # and the difference is the infiltrate's: without IFN-gamma it is gone
    ko = simulate_field(
        FieldSpec("ak-5pct", resolution_mm=5.0, seed=2, days=16 * 7, knockouts=("ifn_gamma",))
    )
    lsr_ko = ko.maps["lsr_score"].sel(time=mid, method="nearest").values
    gap = lsr[sub].mean() - lsr[clear].mean()
    gap_ko = lsr_ko[sub].mean() - lsr_ko[clear].mean()
    assert gap_ko < 0.5 * gap


def test_vehicle_field_shows_no_inflammation():
    res = simulate_field(FieldSpec("ak-5pct-vehicle", resolution_mm=10.0, days=21))
    assert float(res.maps["peak_erythema_score"].max()) < 1e-6
    assert float(res.timecourses["serum_conc_ng_ml"].max()) == 0.0


def test_freeze_events_use_the_models_cryotherapy_on_visible_lesions_only():
    res = simulate_field(
        FieldSpec("ak-cryo", resolution_mm=5.0, days=2, output_every_hours=6, seed=2)
    )
    les = res.lesions.set_index("id")
    lc = res.timecourses["lesion_cells"]
    before, after = lc.isel(time=0), lc.isel(time=-1)
    for slot, row in les.iterrows():
        b, a = float(before.sel(lesion=slot)), float(after.sel(lesion=slot))
        if row["visible_baseline"]:
            assert a < 0.5 * b
        elif b > 0:
            assert a > 0.8 * b  # subclinical lesions are not frozen


def test_a_registered_handler_replaces_the_models_effect_of_a_kind():
    """FREEZE acts through cryo.py's declaration unless a handler replaces it (until removed)."""
    spec = {"resolution_mm": 5.0, "days": 2, "output_every_hours": 6, "seed": 2}
    calls = []
    before = register_site_event(FREEZE, lambda state, event, mask: calls.append(state.t_h))
    try:
        assert before is None  # no handler by default: the model's own effect
        untouched = simulate_field(FieldSpec("ak-cryo", **spec))
    finally:
        unregister_site_event(FREEZE)
    frozen = simulate_field(FieldSpec("ak-cryo", **spec))
    assert len(calls) >= 1
    lc_u = untouched.timecourses["lesion_cells"].isel(time=-1).values
    lc_f = frozen.timecourses["lesion_cells"].isel(time=-1).values
    vis = untouched.lesions["visible_baseline"].values
    assert np.all(lc_f[vis] < 0.5 * lc_u[vis])  # the model's freeze kills, the no-op did not
    assert float(untouched.maps["peak_pigment_loss"].max()) < float(
        frozen.maps["peak_pigment_loss"].max()
    )


def test_registered_site_event_handler_changes_masked_sites_only():
    seen = []

    def mark(state, event, mask):
        seen.append((state.t_h, int(mask.sum())))
        state.column("scaling")[mask.ravel()] += event.amount_mg

    assert register_site_event(77, mark) is None
    try:
        mask = np.zeros((5, 5), dtype=bool)
        mask[1:3, 2] = True
        res = simulate_field(
            FieldSpec(
                "ak-5pct-vehicle",
                resolution_mm=10.0,
                days=1,
                output_every_hours=1,
                extra_events=(SiteEvent(time_h=3.0, kind=77, amount_mg=0.5, mask=mask),),
            )
        )
    finally:
        assert unregister_site_event(77) is mark
    assert seen == [(3.0, 2)]
    with pytest.raises(InputError):
        register_site_event(APPLY, mark)  # built-ins cannot be replaced
    assert res.info["n_sites"] == 25


def test_same_spec_same_numbers():
    a = simulate_field(
        FieldSpec("ak-5pct", resolution_mm=10.0, seed=5, days=20, application="lesions")
    )
    b = simulate_field(
        FieldSpec("ak-5pct", resolution_mm=10.0, seed=5, days=20, application="lesions")
    )
    assert a.lesions[["x_mm", "y_mm", "radius_mm"]].equals(b.lesions[["x_mm", "y_mm", "radius_mm"]])
    assert np.array_equal(a.maps["erythema_score"].values, b.maps["erythema_score"].values)
    assert np.array_equal(
        a.timecourses["lesion_cells"].values, b.timecourses["lesion_cells"].values
    )
    c = simulate_field(FieldSpec("ak-5pct", resolution_mm=10.0, seed=6, days=1))
    assert not np.allclose(
        a.lesions["x_mm"].values, c.lesions["x_mm"].values
    )  # the seed moves the lesions


def test_extra_site_events_and_unknown_kinds():
    spec = FieldSpec(
        "ak-5pct-vehicle",
        resolution_mm=10.0,
        days=2,
        extra_events=(SiteEvent(time_h=1.0, kind=APPLY, amount_mg=12.5, mask=(1,)),),
    )
    res = simulate_field(spec)
    assert res.timecourses["drug_applied_mg"].values[-1] > 0
    with pytest.raises(InputError) as e:
        FieldSpec("ak-5pct", resolution_mm=10.0, extra_events=(SiteEvent(time_h=1.0, kind=99),))
    assert e.value.field == "extra_events[0].kind"


# --------------------------------------------------------------------------- inputs and outputs


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"resolution_mm": 0.0}, "resolution_mm"),
        ({"resolution_mm": -1.0}, "resolution_mm"),
        ({"resolution_mm": float("nan")}, "resolution_mm"),
        ({"resolution_mm": 0.05}, "resolution_mm"),  # 1,000,000 sites
        ({"followup_days": -1.0}, "followup_days"),
        ({"lesions": (LesionPlacement(1, 60.0, 10.0, 2.0),)}, "lesions[0].x_mm"),
        ({"lesions": (LesionPlacement(1, 10.0, -3.0, 2.0),)}, "lesions[0].y_mm"),
        (
            {"lesions": ({"slot": 99, "x_mm": 10.0, "y_mm": 10.0, "radius_mm": 2.0},)},
            "lesions[0].slot",
        ),
        (
            {"lesions": ({"slot": 1, "x_mm": 10.0, "y_mm": 10.0, "radius_mm": 0.0},)},
            "lesions[0].radius_mm",
        ),
        (
            {"lesions": (LesionPlacement(1, 10.0, 10.0, 2.0), LesionPlacement(1, 20.0, 20.0, 2.0))},
            "lesions[1].slot",
        ),
        (
            {"lesions": ({"slot": 1, "x_mm": 10.0, "y_mm": 10.0, "radius_mm": 1.0, "r": 2.0},)},
            "lesions[0].r",
        ),
        ({"diffusion": {"cytokines": True}}, "diffusion.cytokines"),
        ({"group_tol": -1.0}, "group_tol"),
        ({"group_tol": True}, "group_tol"),
        ({"rtol": 1.0}, "rtol"),
        ({"days": 0.0}, "days"),
        ({"patient": -2}, "patient"),
        ({"seed": 1.5}, "seed"),
        ({"shared_states": "apoptotic_cells"}, "shared_states"),
        ({"scenario": "no-such-preset"}, "scenario"),
        ({"parameters": {"no_such_parameter": 1.0}}, "parameters.no_such_parameter"),
        (
            {"extra_events": (SiteEvent(1.0, APPLY, mask=np.ones((3, 3), bool)),)},
            "extra_events[0].mask",
        ),
        (
            {"extra_events": ({"time_h": 1.0, "kind": APPLY, "mask": "face"},)},
            "extra_events[0].mask",
        ),
        ({"resolution_mmm": 1.0}, "resolution_mmm"),
        ({"diffusion": {"cytokines": -5.0}}, "diffusion.cytokines"),
        ({"diffusion": {"film": 1.0}}, "diffusion.film"),
        ({"application": "everywhere"}, "application"),
        ({"shared_states": ("film",)}, "shared_states"),
        ({"shared_states": ("washed_off",)}, "shared_states"),  # written by WASH, from a dose
        ({"extra_events": (SiteEvent(1.0, 99),)}, "extra_events[0].kind"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_input_names_the_field(kwargs, field):
    with pytest.raises(InputError) as e:
        FieldSpec("ak-5pct", **{"resolution_mm": 1.0, **kwargs})
    assert e.value.field == field
    assert field in str(e.value)


def test_inputs_validate_themselves_and_take_positional_fields():
    les = LesionPlacement(2, 20.0, 20.0, 3.0, cells=5e4)
    assert (les.slot, les.x_mm, les.radius_mm, les.cells) == (2, 20.0, 3.0, 5e4)
    assert les == LesionPlacement(slot=2, x_mm=20, y_mm=20, radius_mm=3, cells=5e4)
    with pytest.raises(InputError) as e:
        LesionPlacement(99, 10.0, 10.0, 2.0)
    assert e.value.field == "slot"
    with pytest.raises(InputError) as e:
        SiteEvent(-1.0, APPLY)
    assert e.value.field == "time_h"
    with pytest.raises(InputError) as e:
        SiteEvent(1.0, APPLY, 1.0, "field", 9)
    assert e.value.field == "gate"
    with pytest.raises(InputError):
        LesionPlacement(1, 2.0, x_mm=3.0, y_mm=1.0, radius_mm=1.0)  # x_mm given twice
    spec = FieldSpec("ak-5pct", resolution_mm=10)
    assert spec.scenario == "ak-5pct" and spec.scenario_obj.name == "ak-5pct"
    assert isinstance(spec.resolution_mm, float) and spec.n_sites == 25
    with pytest.raises(ValueError):  # frozen, as before
        spec.seed = 3  # type: ignore[misc]


def test_layout_scales_per_lesion_parameters():
    spec = FieldSpec(
        "ak-5pct", resolution_mm=1.0, lesions=(LesionPlacement(2, 20.0, 20.0, 3.0, cells=5e4),)
    )
    lay = build_layout(spec)
    (les,) = lay.lesions
    pidx = MODEL.parameter_index
    assert (
        les.n_sites == np.count_nonzero(lay.site_class == 1) and 20 < les.n_sites < 40
    )  # ~pi * 3^2 mm2
    f = lay.n_sites / les.n_sites
    P = lay.class_parameters[1]
    assert P[pidx("lesion_initial_cells_2")] == pytest.approx(5e4 * f)
    assert P[pidx("visible_threshold_cells")] == pytest.approx(f * lay.visible_threshold_cells)
    assert lay.class_parameters[0][pidx("lesion_initial_cells_2")] == 0.0
    assert lay.single_site_parameters[pidx("lesion_initial_cells_2")] == pytest.approx(5e4)


def test_outputs_netcdf_png_gif(ak_field, tmp_path):
    paths = write_field_outputs(ak_field, tmp_path / "field")
    maps = xr.open_dataset(paths["maps"], engine="h5netcdf")
    try:
        assert maps["lesion_cells"].dims == ("time", "y", "x")
        for name in ("erythema_score", "immune_infiltrate", "skin_conc_ug_ml", "pigment_change"):
            assert name in maps
    finally:
        maps.close()
    assert paths["key_days"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert paths["gif"].read_bytes()[:6] in (b"GIF89a", b"GIF87a")
    assert "id" in paths["lesions"].read_text().splitlines()[1]
    fig = plot_key_days(ak_field)
    assert any(FOOTER in t.get_text() for t in fig.texts)
    assert len(fig.axes) >= 5 * 3
