"""SBML unit consistency: libsbml's unit checks on, no error and no warning.

The units come from the model's tables (every state, parameter and observable
has a unit string); literal numbers in rate laws get the unit their place
needs; species are amounts, or densities and concentrations in compartments
of that area or volume (:mod:`imiqsim.export.units`, :func:`imiqsim.export.sbml.to_sbml`).
"""

from __future__ import annotations

import dataclasses

import pytest

from imiqsim.export.sbml import sbml_warnings, to_sbml, unit_issues
from imiqsim.export.units import DIMENSIONLESS, Unit, parse_model_unit
from imiqsim.model import Parameter, Reaction, State, get_model
from imiqsim.scenario import resolve

libsbml = pytest.importorskip("libsbml")
MODEL = get_model()


def _preset_doc(preset: str, model=MODEL) -> tuple[str, list[str]]:
    sc = resolve(preset)
    p, ev = sc.model_parameters(model), sc.events()
    return to_sbml(model, p, ev, name=preset), unit_issues(model, p, ev)


@pytest.mark.parametrize("preset", ["ak-5pct", "sbcc-5pct", "egw-5pct"])
def test_preset_documents_have_no_libsbml_error_or_warning_with_units_checked(preset):
    text, issues = _preset_doc(preset)
    assert issues == []
    assert sbml_warnings(text) == []
    doc = libsbml.readSBMLFromString(text)
    doc.setConsistencyChecks(libsbml.LIBSBML_CAT_UNITS_CONSISTENCY, True)
    assert doc.checkConsistency() == 0


def _numbers(node, out: list) -> None:
    if node is None:
        return
    if node.isNumber():
        out.append(node)
    for i in range(node.getNumChildren()):
        _numbers(node.getChild(i), out)


def test_every_literal_number_carries_a_unit():
    text, _ = _preset_doc("ak-5pct")
    m = libsbml.readSBMLFromString(text).getModel()
    maths = [r.getMath() for r in m.getListOfRules()]
    maths += [r.getKineticLaw().getMath() for r in m.getListOfReactions()]
    maths += [a.getMath() for a in m.getListOfInitialAssignments()]
    for ev in m.getListOfEvents():
        maths.append(ev.getTrigger().getMath())
        maths += [a.getMath() for a in ev.getListOfEventAssignments()]
    nums: list = []
    for mt in maths:
        _numbers(mt, nums)
    assert len(nums) > 500
    assert [libsbml.formulaToL3String(n) for n in nums if not n.isSetUnits()] == []
    # the conversion in the epidermis volume, cm2 x um x 1e-4 = mL, carries mL / (cm2 um)
    rule = m.getRule("epidermis_volume_ml").getMath()
    lit: list = []
    _numbers(rule, lit)
    (one,) = lit
    ud = m.getUnitDefinition(one.getUnits())
    assert ud is not None
    si = libsbml.UnitDefinition.convertToSI(ud)
    assert si.getNumUnits() == 1 and si.getUnit(0).isDimensionless()
    assert si.getUnit(0).getMultiplier() == pytest.approx(1e4)  # 1 mL = 1e4 cm2 um


def test_compartments_have_the_treated_area_and_the_volumes():
    text, _ = _preset_doc("ak-5pct")
    m = libsbml.readSBMLFromString(text).getModel()
    sc = resolve("ak-5pct")
    pv = dict(zip(MODEL.parameter_names, sc.model_parameters(MODEL), strict=True))
    skin = m.getCompartment("skin")
    assert (skin.getSpatialDimensions(), skin.getUnits()) == (2, "mm2")
    assert skin.getSize() == pytest.approx(pv["treated_area_cm2"] * 100)
    serum = m.getCompartment("serum")
    assert serum.getUnits() == "mL" and serum.getSize() == pytest.approx(pv["plasma_volume_ml"])
    assert m.getCompartment("systemic").getSize() == pytest.approx(pv["central_volume_l"])
    assert m.getCompartment("serum_uL").getUnits() == "uL"  # circulating T cells, cells/uL
    assert m.getSpecies("t_effector").getCompartment() == "serum_uL"
    assert m.getSpecies("macrophage").getCompartment() == "skin"
    assert m.getSpecies("blood").getHasOnlySubstanceUnits()


def test_a_unit_inconsistent_rate_law_is_reported_not_hidden():
    i = next(k for k, r in enumerate(MODEL.reactions) if r.name == "tolerance_recovery")
    r = MODEL.reactions[i]
    bad = dataclasses.replace(r, rate="k_tolerance_off * (tlr7_tolerance + macrophage)")
    model = dataclasses.replace(
        MODEL, reactions=(*MODEL.reactions[:i], bad, *MODEL.reactions[i + 1 :])
    )
    issues = unit_issues(model)
    assert any(s.startswith("reaction tolerance_recovery: adds") for s in issues), issues
    warnings = sbml_warnings(to_sbml(model))
    assert warnings and all("Warning" in w for w in warnings)
    assert any("tlr7_tolerance + macrophage" in w and "kineticLaw" in w for w in warnings)


def test_new_dimensionless_state_and_parameter_export_consistently():
    # what a later model change may add: a dimensionless exhaustion state driven by a '1' weight
    model = dataclasses.replace(
        MODEL,
        states=(*MODEL.states, State("t_exhaustion", "1", "0", "T-cell exhaustion", "test")),
        parameters=(
            *MODEL.parameters,
            Parameter("k_exhaustion", 0.01, "1/h", "exhaustion rate", "test", "assumed", "test"),
            Parameter("exhaustion_weight", 0.5, "1", "weight", "test", "assumed", "test"),
        ),
        reactions=(
            *MODEL.reactions,
            Reaction(
                "exhaustion_build",
                "k_exhaustion * exhaustion_weight * ifn_gamma_signal * (1 - t_exhaustion)",
                products={"t_exhaustion": 1.0},
                module="test",
            ),
        ),
    )
    text = to_sbml(model)
    assert unit_issues(model) == []
    assert sbml_warnings(text) == []
    assert libsbml.readSBMLFromString(text).getModel().getSpecies("t_exhaustion") is not None


def test_parse_model_unit():
    assert parse_model_unit("pg/mL/h per cell/mm2").same(
        Unit.of(1e-12 / 1e-6 / 3600 * 1e-6, {"gram": 1, "metre": -1, "second": -1, "item": -1})
    )
    assert parse_model_unit("cells/uL").same(Unit.of(1e9, {"item": 1, "metre": -3}))
    assert not parse_model_unit("cells/uL").same(parse_model_unit("cells/mL"))
    assert parse_model_unit("0-3") == DIMENSIONLESS
    assert parse_model_unit("log10 cells") == DIMENSIONLESS
    assert parse_model_unit("lesions") == DIMENSIONLESS  # a count of lesions multiplies cells
    with pytest.raises(ValueError, match=r"state x: unit 'furlongs/h' has the token 'furlongs'"):
        parse_model_unit("furlongs/h", "state x")
    with pytest.raises(ValueError, match="empty unit"):
        parse_model_unit(" ", "parameter p")
