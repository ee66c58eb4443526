"""Documentation generated from the model definition (never hand-kept)."""

from __future__ import annotations

from imiqsim.model import KNOCKOUTS, get_model
from imiqsim.model._dsl import to_text


def equations_markdown() -> str:
    """The full equation listing, stage by stage, as Markdown."""
    m = get_model()
    out = [
        "# imiqsim model equations",
        "",
        f"Generated from the model definition (fingerprint `{m.fingerprint}`): "
        f"{len(m.states)} states, {len(m.parameters)} parameters, "
        f"{len(m.observables)} algebraic quantities, {len(m.reactions)} fluxes. "
        "Time in hours. `hill(x, k, n) = x^n/(k^n + x^n)` for x > 0 else 0; `pos(x) = max(x, 0)`; "
        "`step(x) = 1 if x > 0 else 0`.",
        "",
    ]
    for mod in m.modules:
        out += [f"## {mod.title} (`{mod.name}`)", ""]
        if mod.states:
            out += [
                "### States",
                "",
                "| state | unit | initial | description |",
                "|---|---|---|---|",
            ]
            for s in mod.states:
                out.append(f"| `{s.name}` | {s.unit} | `{to_text(s.initial)}` | {s.description} |")
            out.append("")
            out += ["### Differential equations", ""]
            for s in mod.states:
                terms = []
                for r in m.reactions:
                    c = r.products.get(s.name, 0.0) - r.reactants.get(s.name, 0.0)
                    if c:
                        sign = "+" if c > 0 else "-"
                        coef = "" if abs(c) == 1 else f"{abs(c):g}*"
                        terms.append(f"{sign} {coef}{r.name}")
                rhs = " ".join(terms).lstrip("+ ") if terms else "0"
                out.append(f"- d`{s.name}`/dt = {rhs}")
            out.append("")
        if mod.observables:
            out += ["### Algebraic quantities", ""]
            for o in mod.observables:
                out.append(f"- `{o.name}` [{o.unit}] = `{to_text(o.expr)}`: {o.description}")
            out.append("")
        if mod.reactions:
            out += ["### Fluxes", ""]
            for r in mod.reactions:
                out.append(f"- `{r.name}` = `{to_text(r.rate)}`: {r.description}")
            out.append("")
    out += ["## Knockouts and depletions", ""]
    for k, v in KNOCKOUTS.items():
        out.append(f"- `{k}`: sets " + ", ".join(f"`{n}` = {x:g}" for n, x in v.items()))
    out.append("")
    return "\n".join(out)
