"""The batch's table (Markdown, CSV, an HTML page with plots) and the live overview's rows.

Every figure is read from the runs' own records (summary.json: agent/records.py RunSummary;
each candidate's result.json), never from text, so the table printed again later
(`synth-reward batch --table BATCH`) is the same table.
"""

from __future__ import annotations

import base64
import csv
import datetime as _dt
import html
import io
import json
import math
from pathlib import Path
from typing import Any

from synth_reward.atomic import write_text
from synth_reward.batch.batch import Batch
from synth_reward.batch.records import BatchEntry, BatchRow, BatchSummary

REACHED = 0.8
"""A task counts as reached when its final policy succeeds on at least this share of its episodes."""

COLUMNS: list[tuple[str, str]] = [
    ("task_id", "task"),
    ("state", "state"),
    ("success", "success"),
    ("human_success", "human reward"),
    ("sparse_success", "sparse"),
    ("human_normalized_score", "HNS"),
    ("env_steps", "env steps"),
    ("llm_tokens", "LLM tokens"),
    ("llm_cost_usd", "LLM $"),
    ("wall_seconds", "wall"),
]


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def row(batch: Batch, entry: BatchEntry) -> BatchRow:
    """One task's row: its run's summary.json when it has finished, else what the batch knows."""
    from synth_reward.agent.records import RunSummary

    run_dir = batch.run_dir(entry)
    data = _read(run_dir / "summary.json")
    base = BatchRow(task_id=entry.task_id, state=entry.state, reason=entry.reason)
    if data is None:
        return base
    summary = RunSummary.model_validate(data)
    final = summary.final
    return base.model_copy(
        update={
            "success": final.success_mean if final else summary.best_success_rate,
            "human_success": final.human_success if final else None,
            "sparse_success": final.sparse_success if final else None,
            "human_normalized_score": final.human_normalized_score if final else None,
            "env_steps": sum(c.env_steps or 0 for c in summary.candidates),
            "llm_tokens": summary.llm_tokens,
            "llm_cost_usd": summary.llm_cost_usd,
            "wall_seconds": summary.wall_seconds,
            "best": summary.best,
            "best_reward_file": summary.best_reward_file,
            "reason": entry.reason if entry.state != "finished" else "",
        }
    )


def rows(batch: Batch) -> list[BatchRow]:
    return [row(batch, e) for e in batch.record().entries]


def summarize(batch: Batch, table: list[BatchRow]) -> BatchSummary:
    record = batch.record()
    hns = [r.human_normalized_score for r in table if r.human_normalized_score is not None]
    ends = [e.ended for e in record.entries if e.ended]
    wall = None
    if ends and all(e.state == "finished" or e.state == "failed" for e in record.entries):
        wall = (_dt.datetime.fromisoformat(max(ends)) - _dt.datetime.fromisoformat(record.created)).total_seconds()
    return BatchSummary(
        tasks=len(table),
        finished=sum(r.state == "finished" for r in table),
        reached=sum((r.success or 0.0) >= REACHED for r in table),
        threshold=REACHED,
        mean_hns=sum(hns) / len(hns) if hns else None,
        env_steps=sum(r.env_steps for r in table),
        llm_tokens=sum(r.llm_tokens for r in table),
        llm_cost_usd=sum(r.llm_cost_usd for r in table),
        wall_seconds=wall,
    )


def cell(key: str, value: Any) -> str:
    """A table cell as text: rates as percentages, steps with separators, seconds as minutes."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if key in ("success", "human_success", "sparse_success"):
        return f"{value:.0%}"
    if key == "human_normalized_score":
        return f"{value:.2f}"
    if key in ("env_steps", "llm_tokens"):
        return f"{value:,}"
    if key == "llm_cost_usd":
        return f"{value:.4f}"
    if key == "wall_seconds":
        return f"{value / 60:.1f} min"
    return str(value)


def summary_line(s: BatchSummary) -> str:
    hns = "-" if s.mean_hns is None else f"{s.mean_hns:.2f}"
    wall = "-" if s.wall_seconds is None else f"{s.wall_seconds / 3600:.2f} h"
    return (
        f"{s.reached} of {s.tasks} tasks reach {s.threshold:.0%} success ({s.finished} finished); mean HNS {hns}; "
        f"{s.env_steps:,} env steps; {s.llm_tokens:,} LLM tokens, ${s.llm_cost_usd:.4f}; wall {wall}"
    )


def markdown(table: list[BatchRow], s: BatchSummary, title: str) -> str:
    head = "| " + " | ".join(name for _, name in COLUMNS) + " |"
    lines = [f"# {title}", "", head, "|" + "---|" * len(COLUMNS)]
    for r in table:
        values = r.model_dump()
        lines.append("| " + " | ".join(cell(k, values[k]) for k, _ in COLUMNS) + " |")
    lines += ["", summary_line(s), ""]
    failed = [r for r in table if r.state != "finished" and r.reason]
    if failed:
        lines += ["Not finished:", ""] + [f"- {r.task_id} ({r.state}): {r.reason}" for r in failed] + [""]
    lines.append(
        "success: the synthesized reward's final policy on fresh episodes; human reward / sparse: the task's "
        "human-written reward and its success check as the reward, trained at the same budget and evaluated on "
        "the same episodes; HNS: (method - sparse) / |human - sparse| on the human reward's return."
    )
    return "\n".join(lines) + "\n"


def csv_text(table: list[BatchRow]) -> str:
    out = io.StringIO()
    fields = list(BatchRow.model_fields)
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for r in table:
        writer.writerow({k: ("" if v is None else v) for k, v in r.model_dump().items()})
    return out.getvalue()


def plot_png(table: list[BatchRow]) -> bytes:
    """Success rate per task: synthesized reward, human reward, sparse baseline (grouped bars)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r.task_id for r in table]
    series = [
        ("synthesized", [r.success for r in table]),
        ("human reward", [r.human_success for r in table]),
        ("sparse", [r.sparse_success for r in table]),
    ]
    fig, ax = plt.subplots(figsize=(max(5.0, 0.9 * len(names) + 2), 3.6), dpi=100)
    width = 0.27
    for k, (label, values) in enumerate(series):
        xs = [i + (k - 1) * width for i in range(len(names))]
        ax.bar(xs, [v if v is not None else 0.0 for v in values], width, label=label)
    ax.axhline(REACHED, color="grey", linewidth=0.8, linestyle="--")
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("success rate")
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def html_page(table: list[BatchRow], s: BatchSummary, title: str) -> str:
    """One self-contained page: the table, the summary and the plot (embedded PNG; no network)."""
    head = "".join(f"<th>{html.escape(name)}</th>" for _, name in COLUMNS)
    body = []
    for r in table:
        values = r.model_dump()
        cells = "".join(f"<td>{html.escape(cell(k, values[k]))}</td>" for k, _ in COLUMNS)
        body.append(f"<tr title='{html.escape(r.reason)}'>{cells}</tr>")
    image = base64.b64encode(plot_png(table)).decode()
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>"
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child,th:first-child{text-align:left}"
        "</style></head><body>"
        f"<h1>{html.escape(title)}</h1><table><tr>{head}</tr>{''.join(body)}</table>"
        f"<p>{html.escape(summary_line(s))}</p>"
        f"<img alt='success rate per task' src='data:image/png;base64,{image}'>"
        "</body></html>\n"
    )


def write_tables(batch: Batch) -> tuple[list[BatchRow], BatchSummary, dict[str, Path]]:
    """table.md, table.csv and table.html in the batch folder (atomic writes); returns what they hold."""
    table = rows(batch)
    s = summarize(batch, table)
    record = batch.record()
    title = f"synth-reward batch {record.batch_id}: suite {Path(record.suite).name}"
    files = {"md": batch.path / "table.md", "csv": batch.path / "table.csv", "html": batch.path / "table.html"}
    write_text(files["md"], markdown(table, s, title))
    write_text(files["csv"], csv_text(table))
    write_text(files["html"], html_page(table, s, title))
    return table, s, files


# ---- the live overview --------------------------------------------------------------------------
def progress(batch: Batch, entry: BatchEntry) -> dict[str, Any]:
    """What a run has got to: its iteration, the best success so far, elapsed minutes."""
    run_dir = batch.run_dir(entry)
    iterations = [int(p.name[5:]) for p in run_dir.glob("iter_[0-9][0-9]") if p.name[5:] != "00"]
    best = None
    for result in run_dir.glob("iter_*/cand_*/result.json"):
        rate = (_read(result) or {}).get("success_rate")
        if rate is not None and (best is None or rate > best):
            best = rate
    elapsed = None
    if entry.started:
        end = _dt.datetime.fromisoformat(entry.ended) if entry.ended else _dt.datetime.now()
        elapsed = (end - _dt.datetime.fromisoformat(entry.started)).total_seconds()
    return {
        "task": entry.task_id,
        "iteration": max(iterations) if iterations else None,
        "best": best,
        "state": entry.state,
        "elapsed": elapsed,
    }
