"""Exports of the model to exchange formats (SBML)."""

from imiqsim.export.sbml import parse_unit, sbml_errors, sbml_ids, to_sbml, write_sbml

__all__ = ["parse_unit", "sbml_errors", "sbml_ids", "to_sbml", "write_sbml"]
