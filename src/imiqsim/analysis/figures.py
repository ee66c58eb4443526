"""Figures of the analysis tools (matplotlib, written as PNG with the disclaimer footer)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from imiqsim.analysis import _backend as be

__all__ = ["front_figure", "scan_figure", "sensitivity_figures"]


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    fig.text(0.99, 0.005, be.FOOTER, ha="right", va="bottom", fontsize=7, color="0.4")
    fig.savefig(path, dpi=110)
    _plt().close(fig)
    return path


def sensitivity_figures(res: Any, out: Path, top: int = 15) -> list[Path]:
    """Bar charts of the strongest drivers per output; heat maps over time for trajectories."""
    plt = _plt()
    ds = res.dataset
    paths = []
    outputs = list(ds["output"].values)
    fig, axes = plt.subplots(
        1, len(outputs), figsize=(5.2 * len(outputs), 0.32 * top + 1.8), squeeze=False
    )
    for ax, o in zip(axes[0], outputs, strict=True):
        names = res.ranking(o)[:top][::-1]
        y = np.arange(len(names))
        if res.method == "sobol":
            st = ds["ST"].sel(output=o, parameter=names).values
            s1 = ds["S1"].sel(output=o, parameter=names).values
            ax.barh(
                y + 0.2,
                st,
                0.4,
                xerr=ds["ST_conf"].sel(output=o, parameter=names).values,
                label="total order ST",
                color="tab:blue",
            )
            ax.barh(
                y - 0.2,
                s1,
                0.4,
                xerr=ds["S1_conf"].sel(output=o, parameter=names).values,
                label="first order S1",
                color="tab:orange",
            )
            ax.set_xlabel("Sobol index (95% bootstrap CI)")
        else:
            ms = ds["mu_star"].sel(output=o, parameter=names).values
            ax.barh(
                y,
                ms,
                0.6,
                xerr=ds["mu_star_conf"].sel(output=o, parameter=names).values,
                color="tab:blue",
                label="mu*",
            )
            ax.set_xlabel("Morris mu* (per unit range, 95% bootstrap CI)")
        ax.set_yticks(y, names, fontsize=8)
        ax.set_title(str(o))
        ax.legend(fontsize=7, loc="lower right")
    fig.suptitle(
        f"{ds.attrs['scenario']}: {res.method}, {ds.attrs['points']} points x "
        f"{ds.attrs['patients_per_point']} patients (common random numbers)",
        fontsize=9,
    )
    fig.tight_layout(rect=(0, 0.02, 1, 0.96))
    paths.append(_save(fig, out / "sensitivity.png"))
    if "index_over_time" in ds:
        trajs = list(ds["trajectory"].values)
        fig, axes = plt.subplots(
            len(trajs), 1, figsize=(9, 0.3 * top * len(trajs) + 1.5), squeeze=False
        )
        for ax, v in zip(axes[:, 0], trajs, strict=True):
            m = ds["index_over_time"].sel(trajectory=v)
            score = m.max("time_days", skipna=True).fillna(-1).to_series()
            names = list(score.sort_values(ascending=False).index[:top])
            M = m.sel(parameter=names).values
            t = ds["time_days"].values
            im = ax.pcolormesh(t, np.arange(len(names)), M, shading="nearest", cmap="viridis")
            ax.set_yticks(np.arange(len(names)), names, fontsize=7)
            ax.set_title(
                f"{v}: {ds['index_over_time'].attrs.get('index', '')} over time", fontsize=9
            )
            ax.set_xlabel("day")
            fig.colorbar(im, ax=ax, fraction=0.03)
        fig.tight_layout(rect=(0, 0.02, 1, 1))
        paths.append(_save(fig, out / "sensitivity_over_time.png"))
    return paths


def scan_figure(res: Any, path: Path) -> Path:
    """Line plots with CI bands (1-D) or heat maps (2-D; more dims: the first two, rest at 0)."""
    plt = _plt()
    ds = res.dataset
    f = res.factors
    outputs = list(ds["output"].values)
    fig, axes = plt.subplots(1, len(outputs), figsize=(4.8 * len(outputs), 3.8), squeeze=False)
    for ax, o in zip(axes[0], outputs, strict=True):
        sel = ds.sel(output=o)
        for extra in f[2:]:
            sel = sel.isel({extra: 0})
        if len(f) == 1:
            x = ds[f[0]].values
            ax.plot(x, sel["value"].values, "o-", color="tab:blue")
            ax.fill_between(
                x,
                sel["ci95_low"].values,
                sel["ci95_high"].values,
                alpha=0.25,
                color="tab:blue",
                label="95% CI",
            )
            ax.set_xlabel(f[0])
            ax.set_ylabel(str(o))
            ax.legend(fontsize=7)
        else:
            v = sel["value"].transpose(f[1], f[0]).values
            im = ax.imshow(v, origin="lower", aspect="auto", cmap="viridis")
            ax.set_xticks(range(len(ds[f[0]])), [f"{x:g}" for x in ds[f[0]].values], fontsize=7)
            ax.set_yticks(range(len(ds[f[1]])), [f"{x:g}" for x in ds[f[1]].values], fontsize=7)
            ax.set_xlabel(f[0])
            ax.set_ylabel(f[1])
            if v.size <= 120:
                for (i, j), z in np.ndenumerate(v):
                    ax.text(j, i, f"{z:.2f}", ha="center", va="center", fontsize=6, color="w")
            fig.colorbar(im, ax=ax, fraction=0.05)
        ax.set_title(str(o), fontsize=9)
    fig.suptitle(
        f"{ds.attrs['scenario']}: {ds.attrs['patients_per_point']} patients per point "
        "(common random numbers)",
        fontsize=9,
    )
    fig.tight_layout(rect=(0, 0.03, 1, 0.95))
    return _save(fig, path)


def front_figure(res: Any, path: Path) -> Path:
    """Objective vs the first limited metric: every candidate, the front and the label.

    With no feasible candidate the closest candidates stand where the front would.
    """
    plt = _plt()
    o = res.objective
    m = res.limits[0].metric if res.limits else o
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    t = res.trials.dropna(subset=[o, m]) if not res.trials.empty else res.trials
    if not t.empty:
        ax.scatter(
            t[m],
            t[o],
            s=14,
            c=np.where(t["feasible"], "0.55", "0.85"),
            label="searched (dark: meets the limits)",
        )
    feasible = res.feasible_found
    fr = res.front if feasible else res.closest
    if not fr.empty:
        fr = fr.sort_values(m)
        ax.errorbar(
            fr[m],
            fr[o],
            xerr=[fr[m] - fr[f"{m}_low"], fr[f"{m}_high"] - fr[m]],
            yerr=[fr[o] - fr[f"{o}_low"], fr[f"{o}_high"] - fr[o]],
            fmt="o" if feasible else "s",
            color="tab:blue" if feasible else "tab:gray",
            ms=5,
            capsize=2,
            label="front, re-evaluated (95% CI)"
            if feasible
            else "no feasible regimen: closest, re-evaluated (95% CI)",
        )
        ext = fr[~fr["validated"]]
        if not ext.empty:
            ax.scatter(
                ext[m], ext[o], s=90, facecolors="none", edgecolors="tab:red", label="extrapolation"
            )
    lab = res.label
    ax.errorbar(
        [lab[m]],
        [lab[o]],
        xerr=[[lab[m] - lab[f"{m}_low"]], [lab[f"{m}_high"] - lab[m]]],
        yerr=[[lab[o] - lab[f"{o}_low"]], [lab[f"{o}_high"] - lab[o]]],
        fmt="*",
        color="tab:orange",
        ms=12,
        capsize=2,
        label="label regimen",
    )
    for lim in res.limits[:1]:
        ax.axvline(lim.bound, color="tab:red", ls="--", lw=1, label=str(lim))
    ax.set_xlabel(m)
    ax.set_ylabel(o)
    ax.legend(fontsize=7)
    ax.set_title(
        f"{res.attrs['indication']}: efficacy vs tolerability (research use only)", fontsize=9
    )
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return _save(fig, path)
