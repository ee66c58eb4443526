"""Validated scenarios: what to simulate, read from TOML files, presets or the API.

A :class:`Scenario` bundles the indication, the treated site and area, the
product and its :class:`~imiqsim.regimen.RegimenSpec`, the assessment visit,
mechanism knockouts and parameter overrides. Every bad input is refused here,
at the boundary, with an :class:`~imiqsim.errors.InputError` whose message
names the field (dotted path as in the scenario file), echoes the value and
says what is allowed.

Examples
--------
>>> from imiqsim.scenario import load_preset
>>> sc = load_preset("ak-5pct")
>>> sc.events().n_applications
32
>>> sc.with_overrides(area_cm2=50.0).area_cm2
50.0
"""

from __future__ import annotations

import os
import re
import sys
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 needs the tomli backport
    import tomli as tomllib

from imiqsim.comparators.cryotherapy import CryoSpec, build_freeze_events
from imiqsim.errors import InputError
from imiqsim.regimen import (
    HOURS_PER_WEEK,
    MISSING,
    PRODUCTS,
    DoseEvents,
    Product,
    RegimenSpec,
    StrictBool,
    StrictFloat,
    _fail,
    _InputModel,
    build_events,
    describe_regimen,
    drug_mg_per_application,
)

__all__ = [
    "INDICATIONS",
    "KNOCKOUTS",
    "LESION_TYPES",
    "MAX_DOSE_MULTIPLE",
    "SITES",
    "Scenario",
    "list_presets",
    "load_preset",
    "load_scenario",
    "resolve",
]

#: Mechanism parts that can be switched off (see the model modules).
KNOCKOUTS: tuple[str, ...] = (
    "tlr7",
    "pdc",
    "macrophage",
    "dendritic",
    "nk",
    "cd8",
    "memory",
    "ifn_alpha",
    "tnf_alpha",
    "il12",
)

Indication = Literal["AK", "sBCC", "EGW"]
Site = Literal["face", "scalp", "forearm_hand", "trunk", "extremity", "genital", "perianal"]
LesionType = Literal["superficial", "nodular", "infiltrative", "melanoma"]

INDICATIONS: tuple[str, ...] = ("AK", "sBCC", "EGW")
SITES: tuple[str, ...] = (
    "face",
    "scalp",
    "forearm_hand",
    "trunk",
    "extremity",
    "genital",
    "perianal",
)
LESION_TYPES: tuple[str, ...] = ("superficial", "nodular", "infiltrative", "melanoma")

#: product key of the cryotherapy comparator
CRYOTHERAPY = "cryotherapy"

#: Cream per application above this multiple of the label maximum is refused.
MAX_DOSE_MULTIPLE = 10.0

# Label sites per indication (Aldara / Zyclara prescribing information).
_LABEL_SITES: dict[str, tuple[str, ...]] = {
    "AK": ("face", "scalp", "forearm_hand", "trunk", "extremity"),
    "sBCC": ("trunk", "extremity", "forearm_hand"),  # trunk, neck and extremities
    "EGW": ("genital", "perianal"),
}
_LABEL_TEXT: dict[str, str] = {
    "AK": "the label covers AK on face, scalp and other sun-exposed skin, not genital or "
    "perianal skin",
    "sBCC": "the label covers superficial BCC only on the trunk, neck and extremities "
    "(not face, scalp, genital or perianal skin)",
    "EGW": "the label covers external genital and perianal warts only (site genital or perianal)",
}
_OFF_LABEL_HINT = "; set off_label_ok = true to simulate it anyway"

_PRESET_PACKAGE = "imiqsim"
_PRESET_DIR = "presets"


class Scenario(_InputModel):
    """A complete, validated description of one treatment to simulate.

    Parameters
    ----------
    name : str
        Short identifier (preset name or file stem).
    indication : {"AK", "sBCC", "EGW"}
        Actinic keratosis, superficial basal cell carcinoma, external genital warts.
    site : str
        Treated body site: face, scalp, forearm_hand, trunk, extremity, genital, perianal.
    lesion_type : {"superficial", "nodular", "infiltrative", "melanoma"}
        Only meaningful for sBCC; anything but superficial is off-label.
    product : str
        Key of :data:`imiqsim.regimen.PRODUCTS`, or ``"cryotherapy"`` for the cryotherapy comparator.
    regimen : RegimenSpec
        Dosing schedule of a cream (required unless product is cryotherapy).
    cryotherapy : CryoSpec
        Freeze protocol (only with product ``"cryotherapy"``).
    area_cm2 : float
        Treated skin area, cm2 (> 0, <= 500).
    assessment_weeks_after_last_dose : float
        Weeks from the last scheduled application to the assessment visit
        (0..260; trials: AK 8, sBCC 12, EGW 0).
    days : float, optional
        Simulated horizon in days (> 0, <= 3650). Default: until the
        assessment visit (see :meth:`horizon_hours`).
    knockouts : list of str
        Mechanism parts switched off, from :data:`KNOCKOUTS`.
    parameters : dict of str to float
        Model parameter overrides (finite numbers; names are checked by the model).
    off_label_ok : bool
        Accept off-label uses (with a warning) instead of refusing them.
    description : str
        Free text, e.g. the source of the regimen.
    """

    _error_prefix: ClassVar[str] = ""

    name: str = Field(min_length=1)
    indication: Indication
    site: Site
    lesion_type: LesionType = "superficial"
    product: str
    regimen: RegimenSpec | None = None
    cryotherapy: CryoSpec | None = None
    area_cm2: StrictFloat = Field(gt=0, le=500)
    assessment_weeks_after_last_dose: StrictFloat = Field(default=0.0, ge=0, le=260)
    days: StrictFloat | None = Field(default=None, gt=0, le=3650)
    knockouts: list[str] = Field(default_factory=list)
    parameters: dict[str, StrictFloat] = Field(default_factory=dict)
    off_label_ok: StrictBool = False
    description: str = ""

    # ------------------------------------------------------------------ validators

    @field_validator("product")
    @classmethod
    def _known_product(cls, v: str) -> str:
        if v not in PRODUCTS and v != CRYOTHERAPY:
            raise _fail(f"unknown product; allowed: {', '.join(PRODUCTS)}, {CRYOTHERAPY}", v)
        return v

    @field_validator("knockouts")
    @classmethod
    def _known_knockouts(cls, v: list[str]) -> list[str]:
        seen: set[str] = set()
        for k in v:
            if k not in KNOCKOUTS:
                raise _fail(f"unknown knockout; allowed: {', '.join(KNOCKOUTS)}", k)
            if k in seen:
                raise _fail("each knockout may be listed only once", k)
            seen.add(k)
        return v

    @model_validator(mode="after")
    def _check_label_and_dose(self) -> Scenario:
        if self.product == CRYOTHERAPY:
            if self.cryotherapy is None:
                raise _fail(
                    "product cryotherapy needs a [cryotherapy] table (freeze_seconds, ...)",
                    MISSING,
                    field="cryotherapy",
                )
            if self.regimen is not None:
                raise _fail(
                    "a cryotherapy scenario has no cream regimen; remove [regimen]",
                    "regimen",
                    field="regimen",
                )
        else:
            if self.regimen is None:
                raise _fail("a cream product needs a [regimen] table", MISSING, field="regimen")
            if self.cryotherapy is not None:
                raise _fail(
                    '[cryotherapy] needs product = "cryotherapy"', self.product, field="product"
                )
        for field, value, allowed in self._off_label_findings():
            if not self.off_label_ok:
                raise _fail(allowed + _OFF_LABEL_HINT, value, field=field)
        if self.lesion_type != "superficial" and self.indication != "sBCC":
            # the model has lesion-type biology only for BCC; refusing beats ignoring it
            raise _fail(
                "lesion_type applies only to indication sBCC; AK and EGW take 'superficial'",
                self.lesion_type,
                field="lesion_type",
            )
        multiple = self._dose_multiple()
        if multiple > MAX_DOSE_MULTIPLE + 1e-9:
            key, value = self.regimen.amount.given
            raise _fail(
                self._dose_text(multiple, refused=True), value, field=f"regimen.amount.{key}"
            )
        if self.days is None and self._default_horizon_h() > 3650 * 24:
            raise _fail(
                f"the default horizon (schedule plus assessment) is "
                f"{self._default_horizon_h() / 24:.0f} days, over the 3650-day limit; "
                "shorten the schedule or the assessment, or set days",
                MISSING,
                field="days",
            )
        return self

    # ------------------------------------------------------------------ label helpers

    def _off_label_findings(self) -> list[tuple[str, Any, str]]:
        """(field, value, reason) for every off-label aspect of this scenario."""
        out: list[tuple[str, Any, str]] = []
        if self.site not in _LABEL_SITES[self.indication]:
            out.append(("site", self.site, f"off-label: {_LABEL_TEXT[self.indication]}"))
        if self.indication == "sBCC" and self.lesion_type != "superficial":
            out.append(
                (
                    "lesion_type",
                    self.lesion_type,
                    (
                        "off-label: imiquimod is approved only for superficial BCC, not nodular "
                        "or infiltrative BCC, melanoma or other invasive cancers"
                    ),
                )
            )
        prod = PRODUCTS.get(self.product)
        if prod is not None and self.indication not in prod.approved_indications:
            approved = [
                k
                for k, p in PRODUCTS.items()
                if not p.vehicle and self.indication in p.approved_indications
            ]
            out.append(
                (
                    "product",
                    self.product,
                    (
                        f"off-label: {self.product} is not approved for {self.indication} "
                        f"(approved: {', '.join(approved)})"
                    ),
                )
            )
        return out

    def _dose_multiple(self) -> float:
        if self.regimen is None:
            return 0.0
        prod = PRODUCTS[self.product]
        return self.regimen.amount.cream_mg_total() / prod.label_max_cream_mg

    def _dose_text(self, multiple: float, refused: bool) -> str:
        prod = PRODUCTS[self.product]
        units = f"{prod.label_max_units:g} {prod.unit}" + ("" if prod.label_max_units == 1 else "s")
        label = f"{prod.label_max_cream_mg:g} mg cream = {units}" + (
            "" if prod.vehicle else f" = {prod.label_max_drug_mg:g} mg imiquimod"
        )
        this = f"{self.regimen.amount.cream_mg_total():g} mg cream per application"
        if not prod.vehicle:
            this += f" ({drug_mg_per_application(self.regimen, prod):g} mg imiquimod)"
        if refused:
            return (
                f"{this} is {multiple:.3g}x the label maximum of {label}; at most "
                f"{MAX_DOSE_MULTIPLE:g}x is accepted"
            )
        return f"{this} is {multiple:.3g}x the label maximum per application ({label})"

    # ------------------------------------------------------------------ public API

    def product_obj(self) -> Product | None:
        """The :class:`~imiqsim.regimen.Product` named by ``product`` (None for cryotherapy)."""
        return PRODUCTS.get(self.product)

    @property
    def is_vehicle(self) -> bool:
        """True when the product is a drug-free vehicle cream."""
        return self.product in PRODUCTS and PRODUCTS[self.product].vehicle

    @property
    def is_cryotherapy(self) -> bool:
        return self.product == CRYOTHERAPY

    @property
    def cream_strength(self) -> float:
        """Imiquimod mass fraction of the cream put on the skin (0 for a vehicle or cryotherapy)."""
        prod = self.product_obj()
        return 0.0 if prod is None or prod.vehicle else prod.strength_pct / 100.0

    def model_parameters(
        self, model: Any, overrides: dict[str, float] | None = None, knockouts: Any = ()
    ) -> Any:
        """The model's parameter vector for this scenario's typical patient.

        The one place where a scenario becomes parameters: indication, site, treated area, cream
        strength, the scenario's knockouts and parameter overrides, then ``overrides`` and extra
        ``knockouts`` on top. ``model`` is a :class:`imiqsim.model.Model`.
        """
        kos = list(self.knockouts) + [k for k in knockouts if k not in self.knockouts]
        return model.parameter_vector(
            self.indication,
            self.site,
            self.area_cm2,
            {**self.parameters, **(overrides or {})},
            kos,
            cream_strength=self.cream_strength,
        )

    def events(self) -> DoseEvents:
        """Timed events: cream applications/wash-offs, or freeze events for cryotherapy."""
        if self.cryotherapy is not None:
            return build_freeze_events(self.cryotherapy)
        return build_events(self.regimen, self.product_obj())

    def treatment_text(self) -> str:
        """The regimen or cryotherapy protocol in plain words."""
        if self.cryotherapy is not None:
            return self.cryotherapy.describe()
        return describe_regimen(self.regimen, self.product_obj())

    def drug_mg_per_application(self) -> float:
        """Imiquimod mg per application (0 for a vehicle and for cryotherapy)."""
        if self.regimen is None:
            return 0.0
        return drug_mg_per_application(self.regimen, self.product_obj())

    def dose_mg_per_cm2(self) -> float:
        """Imiquimod mg per cm2 of treated skin per application."""
        return self.drug_mg_per_application() / self.area_cm2

    def assessment_time_h(self) -> float:
        """Scheduled assessment visit: last scheduled application + assessment weeks, hours.

        With ``until_clear`` or repeat courses a patient may stop earlier; this
        is the visit of a patient who receives every scheduled application.
        """
        ev = self.events()
        last = ev.end_h() if self.cryotherapy is not None else ev.last_application_h()
        return last + self.assessment_weeks_after_last_dose * HOURS_PER_WEEK

    def _default_horizon_h(self) -> float:
        # never stop before the last wash-off, even with a 0-week assessment
        return max(self.assessment_time_h(), self.events().end_h())

    def horizon_hours(self) -> float:
        """Simulated horizon in hours.

        ``days * 24`` when ``days`` is set; otherwise the later of the scheduled
        assessment visit (:meth:`assessment_time_h`) and the last event (the
        final wash-off), which covers every course including repeats.
        """
        if self.days is not None:
            return float(self.days) * 24.0
        return self._default_horizon_h()

    def describe(self) -> str:
        """One line in plain words: indication, site, area and regimen."""
        text = (
            f"{self.indication} on {self.site.replace('_', '/')} ({self.area_cm2:g} cm2): "
            f"{self.treatment_text()}"
        )
        if self.assessment_weeks_after_last_dose > 0:
            text += (
                f"; assessed {self.assessment_weeks_after_last_dose:g} weeks after the last dose"
            )
        if self.knockouts:
            text += f"; knocked out: {', '.join(self.knockouts)}"
        return text

    def warnings(self) -> list[str]:
        """Accepted but noteworthy aspects of this scenario, in plain words.

        Off-label uses accepted with ``off_label_ok``, a dose above the label
        maximum (refused above :data:`MAX_DOSE_MULTIPLE` times), a pump count
        for a sachet-only product, and a horizon that ends before the schedule.
        """
        out: list[str] = []
        for field, value, reason in self._off_label_findings():
            out.append(f"{field} = {value!r} is {reason} (accepted: off_label_ok = true)")
        multiple = self._dose_multiple()
        if multiple > 1.0 + 1e-9:
            out.append(f"regimen.amount: {self._dose_text(multiple, refused=False)}")
        prod = self.product_obj()
        key, value = self.regimen.amount.given if self.regimen is not None else (None, None)
        if prod is not None and key == "pump_actuations" and prod.unit != "pump actuation":
            out.append(
                f"regimen.amount: {prod.key} is supplied in {prod.unit}s, not pumps; "
                f"{value:g} pump actuations taken as {self.regimen.amount.cream_mg_total():g} "
                "mg cream"
            )
        if self.days is not None and self.regimen is not None:
            last = self.events().last_application_h()
            if self.days * 24.0 < last:
                out.append(
                    f"days = {self.days:g} ends before the last scheduled application "
                    f"(day {last / 24.0:.1f}); later doses are not simulated"
                )
        return out

    def with_overrides(self, **changes: Any) -> Scenario:
        """Return a new, validated Scenario with some fields changed.

        Parameters
        ----------
        **changes
            Field values. A mapping given for ``regimen`` is merged into the
            current regimen (``amount`` inside it is replaced whole; giving
            ``weekdays`` drops ``applications_per_week`` and vice versa).
            Other fields are replaced. Dotted names set one nested value, e.g.
            ``**{"regimen.leave_on_hours": 6, "parameters.ec50": 2.0}``
            (a dotted ``parameters.x`` adds to the existing overrides).

        Returns
        -------
        Scenario

        Raises
        ------
        InputError
            If the result is not a valid scenario.

        Examples
        --------
        >>> sc = load_preset("ak-5pct")
        >>> sc.with_overrides(regimen={"leave_on_hours": 6}).regimen.leave_on_hours
        6.0
        """
        data = self.model_dump()
        for key, value in changes.items():
            parts = key.split(".")
            if len(parts) == 1:
                if key == "regimen" and isinstance(value, dict):
                    data["regimen"] = _merge_regimen(data["regimen"], value)
                else:
                    data[key] = value
                continue
            # dotted path: descend through existing mappings, then set the leaf
            head, rest = parts[0], parts[1:]
            target = data.get(head)
            if head == "regimen" and isinstance(target, dict):
                nested: dict[str, Any] = {}
                node = nested
                for p in rest[:-1]:
                    node = node.setdefault(p, {})
                node[rest[-1]] = value
                data["regimen"] = _merge_regimen(target, nested)
            elif isinstance(target, dict) and len(rest) == 1:
                data[head] = {**target, rest[0]: value}
            else:
                raise InputError(key, value, "a dotted name must point into regimen or parameters")
        return Scenario(**data)


def _merge_regimen(current: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    merged = dict(current)
    merged.update(change)
    # the two ways of naming dosing days exclude each other: the newer one wins
    if change.get("weekdays") is not None and "applications_per_week" not in change:
        merged["applications_per_week"] = None
    if change.get("applications_per_week") is not None and "weekdays" not in change:
        merged["weekdays"] = None
    if isinstance(merged.get("amount"), dict):
        # the dumped amount carries None for the unused units; drop them
        merged["amount"] = {k: v for k, v in merged["amount"].items() if v is not None}
    return merged


# --------------------------------------------------------------------------- files and presets


def _toml_error_position(exc: tomllib.TOMLDecodeError) -> str:
    m = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
    if m:
        return f"line {m.group(1)}, column {m.group(2)}"
    return "end of file" if "end of document" in str(exc) else "unknown position"


def _scenario_from_toml_text(text: str, source: str, default_name: str) -> Scenario:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(
            "scenario",
            source,
            f"a valid TOML file; syntax error at {_toml_error_position(exc)} of {source}: {exc}",
        ) from None
    data.setdefault("name", default_name)
    try:
        return Scenario(**data)
    except InputError as exc:
        # keep the field path, but say which file it came from
        raise InputError(exc.field, exc.value, f"{exc.allowed} (in {source})") from None


def load_scenario(path: str | os.PathLike[str]) -> Scenario:
    """Read and validate a scenario TOML file.

    Parameters
    ----------
    path : str or path-like
        A ``.toml`` file. A missing ``name`` key defaults to the file stem.

    Returns
    -------
    Scenario

    Raises
    ------
    InputError
        If the file is missing, is not valid TOML (the message gives the line)
        or does not describe a valid scenario.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(
            "scenario", str(path), "an existing .toml file or a preset name (see `imiqsim presets`)"
        )
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError("scenario", str(path), f"a readable UTF-8 TOML file ({exc})") from None
    return _scenario_from_toml_text(text, str(p), p.stem)


def _preset_root() -> Any:
    return resources.files(_PRESET_PACKAGE).joinpath(_PRESET_DIR)


def list_presets() -> list[str]:
    """Names of the shipped presets, sorted.

    Examples
    --------
    >>> "ak-5pct" in list_presets()
    True
    """
    root = _preset_root()
    return sorted(
        entry.name[: -len(".toml")]
        for entry in root.iterdir()
        if entry.name.endswith(".toml") and entry.is_file()
    )


def load_preset(name: str) -> Scenario:
    """Load a shipped preset by name (see :func:`list_presets`).

    Raises
    ------
    InputError
        If no preset has that name.
    """
    names = list_presets()
    if name not in names:
        raise InputError("preset", name, f"one of: {', '.join(names)}")
    text = _preset_root().joinpath(f"{name}.toml").read_text(encoding="utf-8")
    return _scenario_from_toml_text(text, f"preset {name}", name)


def resolve(name_or_path: str | os.PathLike[str]) -> Scenario:
    """A Scenario from a preset name or a path to a ``.toml`` file.

    A string that names a preset loads the preset; anything else is treated
    as a file path.

    Raises
    ------
    InputError
        If it is neither a preset name nor an existing file.
    """
    if isinstance(name_or_path, str) and name_or_path in list_presets():
        return load_preset(name_or_path)
    p = Path(name_or_path)
    if p.is_file() or p.suffix == ".toml":
        return load_scenario(p)
    raise InputError(
        "scenario",
        str(name_or_path),
        f"a preset name ({', '.join(list_presets())}) or an existing .toml file",
    )
