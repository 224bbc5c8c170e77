"""The figures per group (``--by``): one colour per group with a legend, n and a 95% interval on each. The HTML
report and the viewer's experiment page both show :func:`figures` (one drawing code for both). An undefined
measure (no runs to count, one start for a ratio) is written as undefined with its reason, never drawn as 0."""

from __future__ import annotations

from typing import Any

import numpy as np

from stability.analysis.report.figures import _pyplot, _svg, convergence_curves
from stability.analysis.summary_text import median_text

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf"]


def colours(result: Any) -> dict[str, str]:
    """One colour per group label (the palette repeats after ten groups)."""
    return {g.label: PALETTE[i % len(PALETTE)] for i, g in enumerate(result.groups)}


def figures(result: Any, curves: bool = True) -> list[tuple[str, str]]:
    """The group figures a reader of ``result`` sees, as (name, inline SVG): rates with intervals and survival
    curves (when a group judged runs), convergence ratios (when a group has one), and the per-step curves
    (``curves``; the report shows them in a section of their own)."""
    out = []
    if any(g.fixed_point_rate.n for g in result.groups):
        out += [("rates", rates(result)), ("survival", survival(result))]
    if any(g.convergence_ratio.mean is not None for g in result.groups):
        out.append(("convergence-ratios", convergence_ratios(result)))
    if curves and result.runs:
        out.append(("curves", convergence_curves(result, colours(result))))
    return out


def _errors(intervals: list[Any]) -> tuple[list[float], list[float], list[float]]:
    means = [i.mean if i.mean is not None else 0.0 for i in intervals]
    low = [m - (i.low if i.low is not None else m) for m, i in zip(means, intervals, strict=True)]
    high = [(i.high if i.high is not None else m) - m for m, i in zip(means, intervals, strict=True)]
    return means, low, high


def rates(result: Any) -> str:
    """Fixed-point and cycle rates per group, with 95% intervals and n (judged runs) on each bar."""
    plt = _pyplot()
    groups = result.groups
    palette = colours(result)
    fig, axes = plt.subplots(1, 2, figsize=(max(6.0, 1.4 * len(groups) + 3), 3.4), sharey=True)
    for axis, field, title in ((axes[0], "fixed_point_rate", "fixed-point rate"), (axes[1], "cycle_rate",
                                                                                   "cycle rate")):
        intervals = [getattr(g, field) for g in groups]
        means, low, high = _errors(intervals)
        x = np.arange(len(groups))
        axis.bar(x, means, yerr=[low, high], capsize=5, color=[palette[g.label] for g in groups])
        for xi, (g, i) in enumerate(zip(groups, intervals, strict=True)):
            text = f"n={i.n}" + (f"\n{g.no_verdict} no verdict" if g.no_verdict else "")
            if i.mean is None:  # no bar of height 0: the rate is undefined
                text = f"undefined\n(n={i.n})"
            axis.text(xi, 1.03, text, ha="center", va="bottom", fontsize=7)
        axis.set_xticks(x, [""] * len(groups))
        axis.set_ylim(0, 1.25)
        axis.set_title(f"{title} (95% CI over starts)")
    _legend(fig, axes[-1], result, palette)
    axes[0].set_ylabel("share of runs with a verdict")
    return _svg(fig)


def _legend(fig: Any, axis: Any, result: Any, palette: dict[str, str]) -> None:
    from matplotlib.patches import Patch

    axis.legend(handles=[Patch(color=palette[g.label], label=f"{g.label} ({g.runs} runs)") for g in result.groups],
                fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1), title="group", title_fontsize=7)


def survival(result: Any) -> str:
    """Kaplan–Meier curves of steps to a fixed point per group (censored runs marked), median and its CI in the
    legend."""
    plt = _pyplot()
    palette = colours(result)
    fig, axis = plt.subplots(figsize=(8, 3.6))
    for g in result.groups:
        s = g.steps_to_fixed_point
        steps = [0] + [p.step for p in s.curve]
        surviving = [1.0] + [p.surviving for p in s.curve]
        axis.step(steps, surviving, where="post", color=palette[g.label], linewidth=1.6,
                  label=f"{g.label}: n={s.n}; median {median_text(s)}")
    axis.axhline(0.5, color="#bbbbbb", linewidth=0.8, linestyle="--")
    axis.set_ylim(-0.02, 1.05)
    axis.set_xlabel("step")
    axis.set_ylabel("share not yet at a fixed point")
    axis.set_title("Kaplan–Meier: steps to a fixed point (runs stopped without one are censored)")
    axis.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    return _svg(fig)


def convergence_ratios(result: Any) -> str:
    """Each group's convergence ratio with its 95% interval, and the permutation null's 95% range in grey."""
    plt = _pyplot()
    groups = [g for g in result.groups if g.convergence_ratio.mean is not None]
    palette = colours(result)
    fig, axis = plt.subplots(figsize=(max(5.0, 1.2 * len(groups) + 3), 3.4))
    ratios = [g.convergence_ratio for g in groups]
    means, low, high = _errors(ratios)
    x = np.arange(len(groups))
    for xi, r in zip(x, ratios, strict=True):
        if r.null_low is not None and r.null_high is not None:
            axis.fill_between([xi - 0.35, xi + 0.35], r.null_low, r.null_high, color="#dddddd", zorder=0)
    axis.errorbar(x, means, yerr=[low, high], fmt="none", ecolor="#333333", capsize=5, zorder=2)
    axis.scatter(x, means, c=[palette[g.label] for g in groups], s=60, zorder=3)
    for xi, r in zip(x, ratios, strict=True):
        p = f", p={r.p_value:.2g}" if r.p_value is not None else ""
        axis.annotate(f"n={r.n}{p}", (xi, r.mean or 0.0), textcoords="offset points", xytext=(8, 4), fontsize=7)
    axis.axhline(1.0, color="#999999", linewidth=0.8, linestyle="--")
    axis.set_xticks(x, [""] * len(groups))
    axis.set_ylabel("spread of finals / spread of starts")
    axis.set_title("convergence ratio (95% CI over starts; grey: permutation null)")
    _legend(fig, axis, result, palette)
    return _svg(fig)


def twins(result: Any) -> str:
    """Distance from the contradictory runs to their repaired twin's text at each step (mean, 95% CI, n)."""
    plt = _pyplot()
    t = result.twins
    fig, axis = plt.subplots(figsize=(7, 3.4))
    points = [(d.step, d.distance) for d in t.distance_to_twin if d.distance.mean is not None]
    steps = [p[0] for p in points]
    means = [p[1].mean for p in points]
    low = [p[1].low if p[1].low is not None else p[1].mean for p in points]
    high = [p[1].high if p[1].high is not None else p[1].mean for p in points]
    axis.fill_between(steps, low, high, color="#e76f51", alpha=0.25, label="95% CI")
    axis.plot(steps, means, color="#e76f51", marker="o", markersize=3, label="mean distance to the twin")
    for step, interval in points[:: max(1, len(points) // 8)]:
        axis.annotate(f"n={interval.n}", (step, interval.mean), textcoords="offset points", xytext=(0, 6),
                      fontsize=7, ha="center")
    axis.set_xlabel("step")
    axis.set_ylabel("cosine distance")
    axis.set_title(f"contradictory runs vs their repaired twin ({len(t.pairs)} pairs); fixed point reached, "
                   f"difference {_short(t.fixed_point_difference)}", fontsize=8)
    axis.legend(fontsize=7)
    return _svg(fig)


def _short(interval: Any) -> str:
    if interval.mean is None:
        return "–"
    if interval.low is None:
        return f"{interval.mean:.2g} (n={interval.n})"
    high = "∞" if interval.high is None else f"{interval.high:.2g}"
    return f"{interval.mean:.2g} [{interval.low:.2g}, {high}] (n={interval.n})"
