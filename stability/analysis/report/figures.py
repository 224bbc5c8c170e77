"""The report's figures: matplotlib drawn to inline SVG text (no files, no network)."""

from __future__ import annotations

import io
from typing import Any

import networkx as nx
import numpy as np

MAX_CURVES = 40
MAX_GRAPH_NODES = 300
MAX_RATING_TARGETS = 8
RELATION_COLOURS = {"paraphrase": "#2a9d8f", "stronger": "#264653", "weaker": "#8ab17d", "opposite": "#e76f51",
                    "other-axis": "#e9c46a", None: "#8d99ae"}


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.fonttype": "none", "font.size": 9})
    return plt


def _svg(fig: Any) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    _pyplot().close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def convergence_curves(result: Any, palette: dict[str, str] | None = None) -> str:
    """Per-step curves: thin lines for single runs (first 40), coloured by group; a thick line per group for the
    mean over its runs at each step, with a band of ±1.96 standard errors (runs still going at that step)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.4))
    panels = [("d_prev", "step-to-step distance"), ("d_origin", "distance to the origin"),
              ("d_final", "distance to the final"), ("n_principles", "number of principles")]
    groups = result.groups or []
    group_of = {run_id: g.label for g in groups for run_id in g.run_ids}
    palette = palette or {}
    for axis, (field, title) in zip(axes, panels, strict=True):
        for run in result.runs[:MAX_CURVES]:
            points = [(s.step, getattr(s, field)) for s in run.steps if getattr(s, field) is not None]
            if points:
                axis.plot(*zip(*points, strict=True), linewidth=0.6, alpha=0.45,
                          color=palette.get(group_of.get(run.run_id, ""), "#8d99ae"))
        for g in groups:
            by_step: dict[int, list[float]] = {}
            members = set(g.run_ids)
            for run in result.runs:
                if run.run_id in members:
                    for s in run.steps:
                        if getattr(s, field) is not None:
                            by_step.setdefault(s.step, []).append(float(getattr(s, field)))
            if not by_step:
                continue
            steps = sorted(by_step)
            means = [sum(by_step[t]) / len(by_step[t]) for t in steps]
            half = [1.96 * (float(np.std(by_step[t], ddof=1)) / len(by_step[t]) ** 0.5 if len(by_step[t]) > 1
                            else 0.0) for t in steps]
            colour = palette.get(g.label, "#333333")
            axis.plot(steps, means, color=colour, linewidth=2, label=f"{g.label} (n={g.runs})")
            axis.fill_between(steps, [m - h for m, h in zip(means, half, strict=True)],
                              [m + h for m, h in zip(means, half, strict=True)], color=colour, alpha=0.15)
        axis.set_title(title)
        axis.set_xlabel("step")
    shown = min(len(result.runs), MAX_CURVES)
    fig.suptitle(f"{len(result.runs)} runs ({shown} drawn thin); thick: group mean, band ±1.96 s.e.", fontsize=9)
    if groups:
        axes[-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1), title="group", title_fontsize=7)
    return _svg(fig)


def graph_drawing(graph: nx.MultiDiGraph) -> str:
    plt = _pyplot()
    simple = nx.DiGraph()
    simple.add_nodes_from(graph.nodes(data=True))
    simple.add_edges_from((u, v) for u, v in graph.edges() if u != v)
    if simple.number_of_nodes() > MAX_GRAPH_NODES:
        keep = sorted(simple.nodes, key=lambda n: -len(simple.nodes[n].get("runs", [])))[:MAX_GRAPH_NODES]
        simple = simple.subgraph(keep).copy()
    fig, axis = plt.subplots(figsize=(10, 6))
    layout = nx.spring_layout(simple, seed=0)
    colours = ["#2a9d8f" if simple.nodes[n].get("start_of") else "#e76f51" if simple.nodes[n].get("final_of")
               else "#8d99ae" for n in simple.nodes]
    sizes = [80 + 60 * len(simple.nodes[n].get("runs", [])) for n in simple.nodes]
    nx.draw_networkx(simple, layout, ax=axis, node_color=colours, node_size=sizes, arrows=True, with_labels=True,
                     labels={n: n[7:13] for n in simple.nodes}, font_size=7, edge_color="#555555")
    axis.set_title(f"revision graph ({simple.number_of_nodes()} nodes drawn): green = start, orange = final, "
                   "grey = visited; size = runs through the node")
    axis.axis("off")
    return _svg(fig)


def attractor_projection(result: Any) -> str:
    plt = _pyplot()
    fig, axis = plt.subplots(figsize=(7, 5))
    points = result.cross_run.projection
    starts = {p.run_id: p for p in points if p.role == "start"}
    finals = [p for p in points if p.role == "final"]
    for p in finals:
        s = starts[p.run_id]
        axis.annotate("", xy=(p.x, p.y), xytext=(s.x, s.y),
                      arrowprops={"arrowstyle": "->", "color": "#bbbbbb", "linewidth": 0.8})
    axis.scatter([s.x for s in starts.values()], [s.y for s in starts.values()], marker="s", c="#999999",
                 s=25, label="start")
    scatter = axis.scatter([p.x for p in finals], [p.y for p in finals], c=[p.cluster for p in finals],
                           cmap="tab10", s=60, label="final (colour = attractor)")
    axis.legend(*scatter.legend_elements(), title="attractor", fontsize=7, loc="upper right")
    axis.set_title(f"starts and finals of {result.cross_run.runs} runs with a verdict, first two principal "
                   "components")
    axis.set_xlabel("PC 1")
    axis.set_ylabel("PC 2")
    return _svg(fig)


def condition_comparison(result: Any) -> str:
    plt = _pyplot()
    conditions = [c for c in result.consistency.conditions if c.steps_to_fixed_point.mean is not None]
    fig, axis = plt.subplots(figsize=(5, 3.2))
    names = [c.condition for c in conditions]
    means = [c.steps_to_fixed_point.mean for c in conditions]
    low = [c.steps_to_fixed_point.mean - (c.steps_to_fixed_point.low if c.steps_to_fixed_point.low is not None
                                          else c.steps_to_fixed_point.mean) for c in conditions]
    high = [(c.steps_to_fixed_point.high if c.steps_to_fixed_point.high is not None
             else c.steps_to_fixed_point.mean) - c.steps_to_fixed_point.mean for c in conditions]
    axis.bar(names, means, yerr=[low, high], capsize=6, color=["#2a9d8f", "#e76f51", "#8d99ae"][:len(names)])
    for x, c in enumerate(conditions):
        axis.text(x, 0, f"n={c.steps_to_fixed_point.n}", ha="center", va="bottom", fontsize=7, color="white")
    axis.set_ylabel("steps to the fixed point (mean, 95% CI)")
    axis.set_title("consistent vs contradictory")
    return _svg(fig)


def rating_chart(result: Any) -> str:
    """Per rated target: each option's mean rating with its 95% interval, coloured by its relation to the
    target, and its favourite rate written beside the bar."""
    plt = _pyplot()
    targets = result.preferences.targets[:MAX_RATING_TARGETS]
    heights = [max(1.2, 0.45 * len(t.options) + 0.8) for t in targets]
    fig, axes = plt.subplots(len(targets), 1, figsize=(9, sum(heights)), squeeze=False,
                             gridspec_kw={"height_ratios": heights})
    for axis, target in zip(axes[:, 0], targets, strict=True):
        options = list(reversed(target.options))
        means = [o.mean_rating.mean if o.mean_rating.mean is not None else 0.0 for o in options]
        low = [m - (o.mean_rating.low if o.mean_rating.low is not None else m) for m, o in zip(means, options,
                                                                                           strict=True)]
        high = [(o.mean_rating.high if o.mean_rating.high is not None else m) - m for m, o in zip(means, options,
                                                                                              strict=True)]
        labels = [(o.text if len(o.text) <= 60 else o.text[:57] + "...") for o in options]
        axis.barh(range(len(options)), means, xerr=[low, high], capsize=3,
                  color=[RELATION_COLOURS.get(o.relation, "#8d99ae") for o in options])
        axis.set_yticks(range(len(options)), labels, fontsize=7)
        for y, option in enumerate(options):
            rate = option.favourite_rate.mean
            axis.text(5.05, y, f"fav {rate:.0%}" if rate is not None else "unscored", va="center", fontsize=7)
        axis.set_xlim(0, 5.6)
        title = target.target if len(target.target) <= 80 else target.target[:77] + "..."
        axis.set_title(f"{target.mode}: {title} ({target.trials} trials)", fontsize=8, loc="left")
    axes[-1, 0].set_xlabel("mean rating (1-5, 95% CI); colour = relation to the target")
    from matplotlib.patches import Patch

    shown = sorted({o.relation for t in targets for o in t.options}, key=lambda r: (r is None, r or ""))
    axes[0, 0].legend(handles=[Patch(color=RELATION_COLOURS.get(r, "#8d99ae"), label=r or "untagged") for r in shown],
                      fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1), title="relation", title_fontsize=7)
    return _svg(fig)
