"""The input-validation framework shared by every user-facing model.

Scenario files, regimen and treatment tables, field specs and API arguments
are pydantic models derived from :class:`InputModel`: frozen, no unknown keys,
strict numbers (TOML strings and booleans are refused, not coerced), and a
pydantic ``ValidationError`` is turned into one :class:`~imiqsim.errors.InputError`
whose message names the field (dotted, as in the scenario file), the value and
what is allowed.

Examples
--------
>>> from imiqsim.validation import InputModel, StrictFloat
>>> class Area(InputModel):
...     area_cm2: StrictFloat
>>> Area(area_cm2="25")
Traceback (most recent call last):
...
imiqsim.errors.InputError: area_cm2: got '25'; must be a number
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, Strict, ValidationError
from pydantic_core import PydanticCustomError

from imiqsim.errors import InputError

__all__ = [
    "MISSING",
    "InputModel",
    "StrictBool",
    "StrictFloat",
    "StrictInt",
    "fail",
    "input_error_from_validation",
    "parse_number",
    "require_unique",
]


class _Missing:
    """Stands for a required key that is absent (so messages read 'got nothing')."""

    def __repr__(self) -> str:
        return "nothing"


MISSING = _Missing()


def fail(allowed: str, value: Any, field: str = "") -> PydanticCustomError:
    """Build a pydantic error that carries InputError's (field, value, allowed).

    ``field`` is relative to the location where pydantic raises it; empty means
    the location itself. :func:`input_error_from_validation` reads it back.
    """
    return PydanticCustomError(
        "imiqsim_input", "{allowed}", {"allowed": allowed, "value": value, "field": field}
    )


def _numpy_to_python(v: Any) -> Any:
    # numpy scalars (e.g. from a parameter sweep) are welcome where a number is expected
    if isinstance(v, np.generic):
        return v.item()
    return v


# Strict numbers: TOML strings like "25" and booleans are refused instead of coerced.
StrictFloat = Annotated[float, Strict(), BeforeValidator(_numpy_to_python)]
StrictInt = Annotated[int, Strict(), BeforeValidator(_numpy_to_python)]
StrictBool = Annotated[bool, Strict(), BeforeValidator(_numpy_to_python)]


def _unwrap_model(annotation: Any) -> type[BaseModel] | None:
    """Return the BaseModel class inside ``annotation`` (handles Optional/Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _unwrap_model(arg)
        if found is not None:
            return found
    return None


def _model_at(root: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model class that owns the field at ``loc`` (walking nested models)."""
    cls: type[BaseModel] | None = root
    for part in loc:
        if cls is None or not isinstance(part, str) or part not in cls.model_fields:
            return None
        cls = _unwrap_model(cls.model_fields[part].annotation)
    return cls


def _dotted(prefix: str, loc: tuple[Any, ...]) -> str:
    parts = [prefix] if prefix else []
    for p in loc:
        if isinstance(p, int):
            parts.append(f"[{p}]")
        else:
            parts.append(str(p))
    return ".".join(parts).replace(".[", "[")


def _fmt_num(x: Any) -> str:
    return f"{x:g}" if isinstance(x, (int, float)) else str(x)


_TYPE_TEXT = {
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "int_type": "must be an integer (a whole number without a decimal point)",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "finite_number": "must be a finite number (not inf or nan)",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "string_type": "must be a string",
    "list_type": "must be a list",
    "dict_type": "must be a table (a mapping of names to values)",
    "model_type": "must be a table (a mapping of names to values)",
    "model_attributes_type": "must be a table (a mapping of names to values)",
}


def _anchored(
    rel_loc: tuple[Any, ...], prefix: str, loc: tuple[Any, ...], value: Any, allowed: str
) -> InputError:
    err = InputError(_dotted(prefix, loc + rel_loc), value, allowed)
    err.rel_loc = loc + rel_loc  # type: ignore[attr-defined]
    return err


def input_error_from_validation(
    exc: ValidationError, root: type[BaseModel], prefix: str = ""
) -> InputError:
    """Turn the FIRST error of a pydantic ``ValidationError`` into an :class:`InputError`.

    Parameters
    ----------
    exc : pydantic.ValidationError
        The error pydantic raised.
    root : type of BaseModel
        The model that was being validated (used to list allowed keys).
    prefix : str
        Dotted path of ``root`` inside a scenario (``"regimen"`` when a
        RegimenSpec is built on its own), so field names match scenario files.

    Returns
    -------
    InputError
    """
    err = exc.errors(include_url=False)[0]
    loc = tuple(err.get("loc", ()))
    etype = err["type"]
    ctx = err.get("ctx") or {}
    value = err.get("input")

    nested = ctx.get("error")
    if etype == "value_error" and isinstance(nested, InputError) and hasattr(nested, "rel_loc"):
        # a nested model's own __init__ already converted its error: re-anchor its
        # path (relative to that model) under this location
        return _anchored(nested.rel_loc, prefix, loc, nested.value, nested.allowed)

    if etype == "imiqsim_input":
        extra = tuple(p for p in str(ctx.get("field", "")).split(".") if p)
        return _anchored(extra, prefix, loc, ctx.get("value"), str(ctx["allowed"]))

    if etype == "extra_forbidden":
        owner = _model_at(root, loc[:-1])
        keys = ", ".join(owner.model_fields) if owner is not None else "?"
        return _anchored((), prefix, loc, value, f"unknown key; allowed keys: {keys}")
    if etype == "missing":
        return _anchored((), prefix, loc, MISSING, "this key is required")
    if etype in _TYPE_TEXT:
        return _anchored((), prefix, loc, value, _TYPE_TEXT[etype])
    bounds = {
        "greater_than": ("gt", ">"),
        "greater_than_equal": ("ge", ">="),
        "less_than": ("lt", "<"),
        "less_than_equal": ("le", "<="),
    }
    if etype in bounds:
        key, op = bounds[etype]
        return _anchored((), prefix, loc, value, f"must be {op} {_fmt_num(ctx.get(key))}")
    if etype == "literal_error":
        return _anchored((), prefix, loc, value, f"allowed values: {ctx.get('expected')}")
    msg = str(err.get("msg", etype))
    msg = msg.removeprefix("Value error, ")
    return _anchored((), prefix, loc, value, msg)


class InputModel(BaseModel):
    """Base of the user-facing models: frozen, no extra keys, InputError on bad input."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    #: dotted location of this model inside a scenario, for error messages
    _error_prefix: ClassVar[str] = ""

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise input_error_from_validation(exc, type(self), type(self)._error_prefix) from None

    @classmethod
    def from_dict(cls, data: Any) -> Any:
        """Validate a mapping (e.g. parsed TOML), raising :class:`InputError` on bad input."""
        if not isinstance(data, dict):
            raise InputError(
                cls._error_prefix or cls.__name__,
                data,
                "must be a table (a mapping of names to values)",
            )
        return cls(**data)


def require_unique(values: Any, field: str) -> list[str]:
    """``values`` as a list, refusing a name given twice (knockouts, arms' options ...).

    Examples
    --------
    >>> require_unique(["tlr7", "nk"], "knockouts")
    ['tlr7', 'nk']
    >>> require_unique(["tlr7", "tlr7"], "--knockout")
    Traceback (most recent call last):
    ...
    imiqsim.errors.InputError: --knockout: got 'tlr7'; each knockout may be given only once
    """
    if isinstance(values, str):
        values = [values]
    out: list[str] = []
    for v in values or ():
        if v in out:
            raise InputError(field, v, "each knockout may be given only once")
        out.append(v)
    return out


_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def parse_number(text: str, field: str) -> float:
    """Parse a decimal number strictly: digits, one point, an exponent; nothing else.

    Python's ``float`` also reads ``1_0`` (as 10), ``inf``, ``nan`` and surrounding
    blanks; none of these is a parameter value, so all are refused.

    Examples
    --------
    >>> parse_number("2.5e-3", "--set k")
    0.0025
    >>> parse_number("1_0", "--set k")
    Traceback (most recent call last):
    ...
    imiqsim.errors.InputError: --set k: got '1_0'; a decimal number such as 3, 0.25 or 1e-4
    """
    t = text.strip()
    if not _NUMBER.fullmatch(t):
        raise InputError(field, text, "a decimal number such as 3, 0.25 or 1e-4")
    v = float(t)
    if not np.isfinite(v):
        raise InputError(field, text, "a finite number (this one overflows)")
    return v
