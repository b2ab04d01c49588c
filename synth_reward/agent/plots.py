"""Plots for people (matplotlib, off-screen Agg backend), as PNG bytes: the review page serves them and the
HTML report embeds them."""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

from synth_reward.train.records import TrainRecord


def _figure(width: float, height: float) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width, height), dpi=100)
    return fig, ax


def _png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def component_curves(records: Sequence[TrainRecord], title: str = "") -> bytes:
    """Each reward component's mean episode sum over training, with the training success rate (right axis)."""
    fig, ax = _figure(4.8, 3.0)
    points = [r for r in records if r.episodes > 0]
    names = list(dict.fromkeys(k for r in points for k in r.components))
    for name in names:
        xs = [r.env_steps for r in points if math.isfinite(r.components.get(name, math.nan))]
        ys = [r.components[name] for r in points if math.isfinite(r.components.get(name, math.nan))]
        ax.plot(xs, ys, marker="o", markersize=3, label=name)
    ax.set_xlabel("env steps")
    ax.set_ylabel("episode sum (mean)")
    if points:
        right = ax.twinx()
        right.plot(
            [r.env_steps for r in points],
            [r.success_rate or 0.0 for r in points],
            color="black",
            linestyle="--",
            label="success rate",
        )
        right.set_ylim(-0.05, 1.05)
        right.set_ylabel("training success rate")
    else:
        ax.text(0.5, 0.5, "no episode finished during training", ha="center", va="center", transform=ax.transAxes)
    if names:
        ax.legend(fontsize=7, loc="upper left")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    return _png(fig)


def success_by_iteration(rates: Mapping[int, Sequence[tuple[str, float | None]]]) -> bytes:
    """Every candidate's evaluation success rate, grouped by iteration (missing: not evaluated)."""
    fig, ax = _figure(6.0, 2.8)
    x, labels, where = 0.0, [], []
    for iteration in sorted(rates):
        for cid, rate in rates[iteration]:
            ax.bar(x, rate if rate is not None else 0.0, color=f"C{iteration % 10}", edgecolor="black")
            if rate is None:
                ax.text(x, 0.02, "-", ha="center")
            labels.append(cid)
            where.append(x)
            x += 1
        x += 0.5
    ax.set_xticks(where, labels, rotation=45, fontsize=7)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("evaluation success rate")
    ax.set_title("candidates by iteration (bars; '-': not evaluated)", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def stage_times(seconds: Mapping[str, float]) -> bytes:
    """Wall-clock seconds per stage, as horizontal bars."""
    fig, ax = _figure(5.0, 2.2)
    names = list(seconds)
    ax.barh(names, [seconds[n] for n in names], color="C0")
    for i, n in enumerate(names):
        ax.text(seconds[n], i, f" {seconds[n]:.1f} s", va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("wall-clock seconds")
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)
