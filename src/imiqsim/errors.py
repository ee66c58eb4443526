"""Structured exceptions. User-input errors name the field, the value and what is allowed."""

from __future__ import annotations

from typing import Any


class ImiqsimError(Exception):
    """Base class of every error imiqsim raises on purpose."""


class InputError(ImiqsimError, ValueError):
    """Bad user input (scenario file, CLI flag, API argument).

    The message always has the shape ``<field>: got <value!r>; <what is allowed>``.
    The CLI turns it into exit code 2 without a traceback.
    """

    def __init__(self, field: str, value: Any, allowed: str):
        self.field = field
        self.value = value
        self.allowed = allowed
        super().__init__(f"{field}: got {value!r}; {allowed}")


class ModelDefinitionError(ImiqsimError):
    """The model definition itself is inconsistent (a developer error, not a user error)."""
