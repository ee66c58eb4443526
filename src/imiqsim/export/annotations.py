"""SBO terms and identifiers.org (MIRIAM) annotations of the exported SBML.

Each identifier is the database's own entry for the entity (the source cited
next to it); there is no network here to resolve them, so each is checked
against its registry's identifier pattern (:data:`PATTERNS`, from the
identifiers.org registry entries ``chebi``, ``uniprot`` and ``cl``).

Examples
--------
>>> check_identifier("chebi", "CHEBI:36704")
'CHEBI:36704'
>>> check_identifier("cl", "CL:235")
Traceback (most recent call last):
...
ValueError: identifier 'CL:235' does not match the cl pattern ^CL:\\d{7}$
"""

from __future__ import annotations

import re
from typing import Any

__all__ = [
    "ENTITIES",
    "PATTERNS",
    "SBO_COMPARTMENT",
    "SBO_PARAMETER",
    "SBO_PROCESS",
    "annotate",
    "check_identifier",
    "entity_of",
]

#: identifiers.org namespace -> identifier pattern (identifiers.org registry)
PATTERNS: dict[str, str] = {
    "chebi": r"^CHEBI:\d+$",
    "uniprot": (
        r"^([A-N,R-Z][0-9]([A-Z][A-Z, 0-9][A-Z, 0-9][0-9]){1,2})"
        r"|([O,P,Q][0-9][A-Z, 0-9][A-Z, 0-9][A-Z, 0-9][0-9])(\.\d+)?$"
    ),
    "cl": r"^CL:\d{7}$",
}

#: SBO terms (Systems Biology Ontology)
SBO_SIMPLE_CHEMICAL = 247
SBO_POLYPEPTIDE = 252
SBO_MATERIAL_ENTITY = 240
SBO_PARAMETER = 2  # quantitative systems description parameter
SBO_PROCESS = 375
SBO_COMPARTMENT = 290  # physical compartment

#: entity key -> (SBO term of its species, identifiers.org namespace, id, source)
ENTITIES: dict[str, tuple[int, str, str, str]] = {
    "imiquimod": (SBO_SIMPLE_CHEMICAL, "chebi", "CHEBI:36704", "ChEBI entry 36704, imiquimod"),
    "tlr7": (SBO_POLYPEPTIDE, "uniprot", "Q9NYK1", "UniProtKB Q9NYK1, TLR7_HUMAN"),
    "ifn_alpha": (SBO_POLYPEPTIDE, "uniprot", "P01563", "UniProtKB P01563, IFNA2_HUMAN"),
    "tnf_alpha": (SBO_POLYPEPTIDE, "uniprot", "P01375", "UniProtKB P01375, TNFA_HUMAN"),
    "il1": (SBO_POLYPEPTIDE, "uniprot", "P01584", "UniProtKB P01584, IL1B_HUMAN"),
    "il6": (SBO_POLYPEPTIDE, "uniprot", "P05231", "UniProtKB P05231, IL6_HUMAN"),
    "il8": (SBO_POLYPEPTIDE, "uniprot", "P10145", "UniProtKB P10145, IL8_HUMAN (CXCL8)"),
    "il12": (SBO_POLYPEPTIDE, "uniprot", "P29460", "UniProtKB P29460, IL12B_HUMAN (p40)"),
    "macrophage": (SBO_MATERIAL_ENTITY, "cl", "CL:0000235", "Cell Ontology CL:0000235, macrophage"),
    "pdc": (
        SBO_MATERIAL_ENTITY,
        "cl",
        "CL:0000784",
        "Cell Ontology CL:0000784, plasmacytoid dendritic cell",
    ),
    "dendritic_cell": (
        SBO_MATERIAL_ENTITY,
        "cl",
        "CL:0000451",
        "Cell Ontology CL:0000451, dendritic cell",
    ),
    "nk_cell": (
        SBO_MATERIAL_ENTITY,
        "cl",
        "CL:0000623",
        "Cell Ontology CL:0000623, natural killer cell",
    ),
    "th1": (SBO_MATERIAL_ENTITY, "cl", "CL:0000545", "Cell Ontology CL:0000545, T-helper 1 cell"),
    "ctl": (SBO_MATERIAL_ENTITY, "cl", "CL:0000910", "Cell Ontology CL:0000910, cytotoxic T cell"),
    "effector_t": (
        SBO_MATERIAL_ENTITY,
        "cl",
        "CL:0000911",
        "Cell Ontology CL:0000911, effector T cell",
    ),
    "memory_t": (
        SBO_MATERIAL_ENTITY,
        "cl",
        "CL:0000813",
        "Cell Ontology CL:0000813, memory T cell",
    ),
    "keratinocyte": (
        SBO_MATERIAL_ENTITY,
        "cl",
        "CL:0000312",
        "Cell Ontology CL:0000312, keratinocyte (the atypical cells of a lesion)",
    ),
}

_DRUG_STATES = {"film", "stratum_corneum", "epidermis", "dermis", "blood"}
_CELL_STATES = {
    "macrophage": "macrophage",
    "pdc": "pdc",
    "dendritic_cells": "dendritic_cell",
    "dc_lymph_node": "dendritic_cell",
    "nk_cells": "nk_cell",
    "cd4_th1": "th1",
    "cd8_ctl": "ctl",
    "t_effector": "effector_t",
    "memory_t": "memory_t",
}
_CYTOKINES = ("ifn_alpha", "tnf_alpha", "il1", "il6", "il8", "il12")


def check_identifier(namespace: str, identifier: str) -> str:
    """Return ``identifier`` if it matches the identifiers.org pattern of ``namespace``.

    Raises
    ------
    ValueError
        Unknown namespace or an identifier that does not match.
    """
    if namespace not in PATTERNS:
        raise ValueError(
            f"unknown identifiers.org namespace {namespace!r}; known: {list(PATTERNS)}"
        )
    if not re.match(PATTERNS[namespace], identifier):
        raise ValueError(
            f"identifier {identifier!r} does not match the {namespace} pattern "
            f"{PATTERNS[namespace]}"
        )
    return identifier


def entity_of(state: str) -> str | None:
    """The :data:`ENTITIES` key a state is an amount of, or None.

    Examples
    --------
    >>> entity_of("tnf_alpha_serum"), entity_of("lesion_3"), entity_of("scar")
    ('tnf_alpha', 'keratinocyte', None)
    """
    if state in _DRUG_STATES:
        return "imiquimod"
    if state in _CELL_STATES:
        return _CELL_STATES[state]
    base = state.removesuffix("_serum")
    if base in _CYTOKINES:
        return base
    if re.fullmatch(r"lesion_\d+", state):
        return "keratinocyte"
    return None


def annotate(element: Any, key: str | None, libsbml: Any) -> None:
    """Set the SBO term of a species and, for a known entity, a ``bqbiol:is`` annotation.

    Parameters
    ----------
    element : libsbml.Species
        The species (with a meta id).
    key : str or None
        :data:`ENTITIES` key (:func:`entity_of`); None: SBO material entity only.
    libsbml : module
        The libsbml module.
    """
    if key is None:
        element.setSBOTerm(SBO_MATERIAL_ENTITY)
        return
    sbo, ns, ident, _source = ENTITIES[key]
    element.setSBOTerm(sbo)
    cv = libsbml.CVTerm(libsbml.BIOLOGICAL_QUALIFIER)
    cv.setBiologicalQualifierType(libsbml.BQB_IS)
    ident = check_identifier(ns, ident)
    curie = ident if ":" in ident else f"{ns}:{ident}"
    cv.addResource(f"https://identifiers.org/{curie}")
    if element.addCVTerm(cv) != libsbml.LIBSBML_OPERATION_SUCCESS:
        raise ValueError(f"libsbml refused the annotation of {element.getId()}")
