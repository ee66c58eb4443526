"""A scenario's [population] table reaches run_trial when no argument overrides it."""

from __future__ import annotations

from imiqsim.scenario import load_preset
from imiqsim.trial import run_trial


def test_scenario_immunosuppressed_fraction_is_used_unless_overridden():
    sc = load_preset("ak-5pct")
    pop = sc.population.model_copy(update={"immunosuppressed_fraction": 1.0})
    sc = sc.with_overrides(name="ak-5pct-otr", population=pop)
    df = run_trial([sc], patients=6, seed=3, followup_years=0.0).arms[0].outcomes
    assert (df["immune_status"] == "immunosuppressed").all()
    df0 = (
        run_trial([sc], patients=6, seed=3, followup_years=0.0, immunosuppressed_fraction=0.0)
        .arms[0]
        .outcomes
    )
    assert (df0["immune_status"] == "immunocompetent").all()
