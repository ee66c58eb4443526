"""SBO terms, identifiers.org annotations and the model history of the exported SBML."""

from __future__ import annotations

import pytest

from imiqsim.export.annotations import ENTITIES, PATTERNS, check_identifier, entity_of
from imiqsim.export.sbml import to_sbml
from imiqsim.model import get_model

libsbml = pytest.importorskip("libsbml")
MODEL = get_model()


def test_every_identifier_matches_its_pattern_and_names_its_source():
    for key, (sbo, ns, ident, source) in ENTITIES.items():
        assert check_identifier(ns, ident) == ident, key
        bare = ident.split(":")[-1]
        assert bare in source, (key, source)  # the cited entry is the identifier's own
        assert sbo in (240, 247, 252)
    with pytest.raises(ValueError, match="uniprot pattern"):
        check_identifier("uniprot", "TLR7")
    with pytest.raises(ValueError, match="unknown identifiers.org namespace"):
        check_identifier("go", "GO:0000001")
    assert set(PATTERNS) == {ns for _, ns, _, _ in ENTITIES.values()}


def test_document_carries_sbo_terms_cv_terms_and_history():
    doc = libsbml.readSBMLFromString(to_sbml(MODEL))
    m = doc.getModel()
    for sp in m.getListOfSpecies():
        assert sp.isSetSBOTerm(), sp.getId()
    uris = {
        sp.getId(): sp.getCVTerm(0).getResourceURI(0)
        for sp in m.getListOfSpecies()
        if sp.getNumCVTerms()
    }
    assert uris["film"] == "https://identifiers.org/CHEBI:36704"
    assert uris["tnf_alpha_serum"] == "https://identifiers.org/uniprot:P01375"
    assert uris["pdc"] == "https://identifiers.org/CL:0000784"
    assert uris["lesion_1"] == "https://identifiers.org/CL:0000312"
    assert "scar" not in uris and entity_of("scar") is None
    assert all(p.isSetSBOTerm() for p in m.getListOfParameters() if p.getConstant())
    assert all(r.getSBOTermID() == "SBO:0000375" for r in m.getListOfReactions())
    assert m.getCompartment("skin").getSBOTermID() == "SBO:0000290"
    h = m.getModelHistory()
    assert h.getNumCreators() == 1 and h.getCreator(0).getFamilyName() == "developers"
    assert h.isSetCreatedDate() and h.isSetModifiedDate()
