"""Tests for imiqsim.regimen: products, schedules and dose events."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imiqsim.errors import InputError
from imiqsim.regimen import (
    APPLY,
    CHECK,
    GATE_ALWAYS,
    GATE_NOT_CLEAR_AT_CHECK,
    GATE_UNTIL_CLEAR,
    HOURS_PER_WEEK,
    PRODUCTS,
    WASH,
    WEEKDAYS,
    Amount,
    RegimenSpec,
    build_events,
    describe_regimen,
    drug_mg_per_application,
)
from imiqsim.scenario import load_preset

P5 = PRODUCTS["imiquimod-5%"]


def spec(**kw):
    base = {
        "applications_per_week": 2,
        "max_weeks": 16,
        "leave_on_hours": 8,
        "amount": {"sachets": 1},
    }
    base.update(kw)
    return RegimenSpec(**base)


# --------------------------------------------------------------------------- products


def test_products_strengths_and_label_maxima():
    assert set(PRODUCTS) == {
        "imiquimod-5%",
        "imiquimod-3.75%",
        "imiquimod-2.5%",
        "vehicle-5%",
        "vehicle-3.75%",
        "vehicle-2.5%",
    }
    assert P5.label_max_drug_mg == pytest.approx(12.5)
    assert PRODUCTS["imiquimod-3.75%"].label_max_cream_mg == 500.0
    assert PRODUCTS["imiquimod-2.5%"].label_max_drug_mg == pytest.approx(12.5)
    assert PRODUCTS["vehicle-5%"].vehicle and PRODUCTS["vehicle-5%"].drug_fraction == 0.0


def test_amount_exactly_one():
    assert Amount(sachets=2).cream_mg_total() == 500.0
    assert Amount(pump_actuations=1).cream_mg_total() == 250.0
    assert Amount(cream_mg=100).cream_mg_total() == 100.0
    with pytest.raises(InputError, match="exactly one"):
        Amount(sachets=1, cream_mg=100)
    with pytest.raises(InputError, match="exactly one"):
        Amount()


def test_drug_mg_per_application():
    assert drug_mg_per_application(spec(), P5) == pytest.approx(12.5)
    r = spec(amount={"pump_actuations": 2})
    assert drug_mg_per_application(r, PRODUCTS["imiquimod-3.75%"]) == pytest.approx(18.75)
    assert drug_mg_per_application(r, PRODUCTS["vehicle-3.75%"]) == 0.0


# --------------------------------------------------------------------------- event counts


@pytest.mark.parametrize(
    ("preset", "n_apply", "gate"),
    [
        ("ak-5pct", 32, GATE_ALWAYS),
        ("sbcc-5pct", 30, GATE_ALWAYS),
        ("egw-5pct", 48, GATE_UNTIL_CLEAR),
        ("ak-3.75pct", 28, GATE_ALWAYS),
        ("ak-2.5pct", 28, GATE_ALWAYS),
        ("egw-3.75pct", 56, GATE_UNTIL_CLEAR),
    ],
)
def test_preset_event_counts(preset, n_apply, gate):
    ev = load_preset(preset).events()
    assert ev.n_applications == n_apply
    assert np.count_nonzero(ev.kinds == WASH) == n_apply
    assert np.count_nonzero(ev.kinds == CHECK) == 0
    assert np.all(ev.gates[ev.kinds == APPLY] == gate)
    assert np.all(ev.gates[ev.kinds == WASH] == GATE_ALWAYS)


def test_ak5_days_and_times():
    ev = build_events(spec(), P5)
    t = ev.times_of(APPLY)
    # Mon and Thu at 22:00
    assert set(((t // 24) % 7).astype(int)) == {0, 3}
    assert np.allclose(t % 24, 22.0)
    assert t[0] == 22.0
    assert ev.last_application_h() == pytest.approx((15 * 7 + 3) * 24 + 22)


def test_leave_on_timing():
    ev = build_events(spec(leave_on_hours=6.5), P5)
    assert np.allclose(ev.times_of(WASH) - ev.times_of(APPLY), 6.5)


def test_twice_daily_spacing():
    r = spec(applications_per_week=7, times_per_day=2, max_weeks=1, leave_on_hours=6)
    t = build_events(r, P5).times_of(APPLY)
    assert t.size == 14
    assert np.allclose(np.diff(t), 12.0)
    assert np.allclose(np.sort(np.unique(t % 24)), [10.0, 22.0])


def test_twice_daily_morning_hour_stays_in_the_day():
    r = spec(
        applications_per_week=7, times_per_day=2, max_weeks=1, leave_on_hours=6, application_hour=8
    )
    t = build_events(r, P5).times_of(APPLY)
    assert t.min() == 8.0 and np.allclose(np.unique(t % 24), [8.0, 20.0])


def test_cycles_ak375():
    ev = load_preset("ak-3.75pct").events()
    week = (ev.times_of(APPLY) // HOURS_PER_WEEK).astype(int)
    assert ev.n_applications == 28
    assert set(week) == {0, 1, 4, 5}  # weeks 3-4 (index 2, 3) are the rest period
    assert not np.any((week == 2) | (week == 3))


def test_vehicle_drug_mg_zero():
    ev = load_preset("ak-5pct-vehicle").events()
    assert ev.n_applications == 32
    assert np.all(ev.amounts_mg == 0.0)
    active = load_preset("ak-5pct").events()
    assert np.allclose(active.amounts_mg[active.kinds == APPLY], 12.5)
    assert np.all(active.amounts_mg[active.kinds != APPLY] == 0.0)


def test_repeat_course_gated_after_check():
    r = spec(
        applications_per_week=3,
        max_weeks=4,
        until_clear=True,
        repeat_courses=2,
        repeat_check_weeks=4,
    )
    ev = build_events(r, P5)
    assert ev.n_applications == 3 * 12
    checks = ev.times_of(CHECK)
    assert checks.size == 2
    applies = ev.kinds == APPLY
    # first course: until-clear gate; repeats: gate 2, all after their CHECK
    assert np.all(ev.gates[applies & (ev.course == 0)] == GATE_UNTIL_CLEAR)
    for k in (1, 2):
        sel = applies & (ev.course == k)
        assert sel.sum() == 12
        assert np.all(ev.gates[sel] == GATE_NOT_CLEAR_AT_CHECK)
        check_k = ev.times_h[(ev.kinds == CHECK) & (ev.course == k)][0]
        prev_end = ev.times_h[(ev.kinds == WASH) & (ev.course == k - 1)].max()
        assert check_k == pytest.approx(prev_end + 4 * HOURS_PER_WEEK)
        first = ev.times_h[sel].min()
        start = first - 22.0
        # next course starts on the first Monday 00:00 after the check
        assert start > check_k and start % HOURS_PER_WEEK == 0
        assert start - check_k <= HOURS_PER_WEEK


def test_events_sorted_with_tie_order():
    # a 0-week check lands exactly on the last wash-off: a WASH/CHECK tie
    r = spec(applications_per_week=3, max_weeks=4, repeat_courses=1, repeat_check_weeks=0)
    ev = build_events(r, P5)
    assert np.all(np.diff(ev.times_h) >= 0)
    same = np.diff(ev.times_h) == 0
    assert same.any()
    assert np.all(np.diff(ev.kinds)[same] > 0)
    for a in (ev.times_h, ev.kinds, ev.amounts_mg, ev.gates, ev.course):
        assert len(a) == len(ev)
        assert not a.flags.writeable
    assert ev.times_h.dtype == np.float64 and ev.kinds.dtype == np.int64
    assert ev.gates.dtype == np.int64 and ev.course.dtype == np.int64


def test_describe_regimen_key_facts():
    text = describe_regimen(spec(weekdays=["mon", "thu"], applications_per_week=None), P5)
    assert text == (
        "imiquimod 5% cream, 1 sachet (12.5 mg imiquimod) 2x/week (Mon, Thu) "
        "for 16 weeks, left on 8 h"
    )
    sc = load_preset("ak-3.75pct")
    t = describe_regimen(sc.regimen, sc.product_obj())
    for fact in (
        "3.75%",
        "2 pump actuations",
        "18.75 mg",
        "daily",
        "2 weeks on",
        "2 weeks off",
        "6 weeks",
        "8 h",
    ):
        assert fact in t
    sc = load_preset("egw-5pct")
    assert "until clear" in describe_regimen(sc.regimen, sc.product_obj())
    r = spec(repeat_courses=1, repeat_check_weeks=8)
    assert "1 more course" in describe_regimen(r, P5) and "8 weeks" in describe_regimen(r, P5)
    assert "no imiquimod" in describe_regimen(spec(), PRODUCTS["vehicle-5%"])


# --------------------------------------------------------------------------- spec validation


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"leave_on_hours": 30}, "regimen.leave_on_hours"),
        ({"weekdays": ["mon"]}, "regimen.weekdays"),  # both ways of naming days
        ({"applications_per_week": None}, "regimen.applications_per_week"),
        ({"applications_per_week": None, "weekdays": ["mon", "mon"]}, "regimen.weekdays"),
        ({"applications_per_week": None, "weekdays": ["mun"]}, "regimen.weekdays"),
        ({"cycle_on_weeks": 2}, "regimen.cycle_off_weeks"),
        ({"repeat_courses": 1}, "regimen.repeat_check_weeks"),
        ({"times_per_day": 3}, "regimen.times_per_day"),
        ({"max_weeks": 60}, "regimen.max_weeks"),
        ({"max_weeks": 0.05}, "regimen.max_weeks"),  # no application fits
        ({"applications_per_week": 7, "leave_on_hours": 24}, "regimen.leave_on_hours"),
        ({"applications_per_week": 2.0}, "regimen.applications_per_week"),
        ({"amount": {"sachets": 0}}, "regimen.amount.sachets"),
        ({"bogus": 1}, "regimen.bogus"),
    ],
)
def test_bad_regimen_refused(changes, field):
    with pytest.raises(InputError) as info:
        spec(**changes)
    assert info.value.field == field
    assert str(info.value).startswith(field + ": got ")


def test_weekday_names_normalised():
    r = spec(applications_per_week=None, weekdays=["Thursday", "mon"])
    assert r.weekdays == ["mon", "thu"]


# --------------------------------------------------------------------------- property test


@st.composite
def regimen_specs(draw):
    kw: dict = {}
    if draw(st.booleans()):
        kw["applications_per_week"] = draw(st.integers(1, 7))
    else:
        kw["weekdays"] = draw(
            st.lists(st.sampled_from(WEEKDAYS), min_size=1, max_size=7, unique=True)
        )
    kw["times_per_day"] = draw(st.integers(1, 2))
    if draw(st.booleans()):
        kw["cycle_on_weeks"] = draw(st.integers(1, 4))
        kw["cycle_off_weeks"] = draw(st.integers(1, 4))
    kw["max_weeks"] = draw(st.floats(1.0, 20.0, allow_nan=False))
    kw["until_clear"] = draw(st.booleans())
    kw["repeat_courses"] = draw(st.integers(0, 3))
    if kw["repeat_courses"]:
        kw["repeat_check_weeks"] = draw(st.floats(0.0, 12.0, allow_nan=False))
    limit = 11.9 if kw["times_per_day"] == 2 else 23.9
    kw["leave_on_hours"] = draw(st.floats(0.25, limit, allow_nan=False))
    kw["application_hour"] = draw(st.floats(0.0, 23.75, allow_nan=False))
    kw["amount"] = {"cream_mg": draw(st.floats(10.0, 1000.0, allow_nan=False))}
    return RegimenSpec(**kw)


@settings(max_examples=150, deadline=None)
@given(regimen_specs(), st.sampled_from(sorted(PRODUCTS)))
def test_property_washes_follow_applies_and_max_weeks(r, key):
    ev = build_events(r, PRODUCTS[key])
    applies = ev.times_of(APPLY)
    washes = ev.times_of(WASH)
    assert applies.size >= 1 and applies.size == washes.size
    # each wash comes exactly leave_on_hours after its apply (applies never overlap)
    assert np.allclose(washes - applies, r.leave_on_hours)
    assert np.all(np.diff(ev.times_h) >= 0)
    for k in np.unique(ev.course):
        t = ev.times_h[(ev.kinds == APPLY) & (ev.course == k)]
        start = np.floor(t.min() / HOURS_PER_WEEK) * HOURS_PER_WEEK  # a Monday 00:00
        assert np.all(t - start < r.max_weeks * HOURS_PER_WEEK)
        assert np.all(t >= start)
    # a repeat course begins after its deciding CHECK
    for k in range(1, r.repeat_courses + 1):
        check = ev.times_h[(ev.kinds == CHECK) & (ev.course == k)]
        assert check.size == 1
        assert ev.times_h[(ev.kinds == APPLY) & (ev.course == k)].min() > check[0]
