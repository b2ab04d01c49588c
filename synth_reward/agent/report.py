"""The report: report.md, rendered from the run's RunSummary (and its frozen task) for people."""

from __future__ import annotations

from synth_reward.agent.records import RunSummary
from synth_reward.agent.resolve import ResolvedTask


def render_report(summary: RunSummary, resolved: ResolvedTask | None) -> str:
    """report.md: what was asked, what was tried, what won, and how well it did."""
    lines = [
        f"# synth-reward run {summary.run_id}",
        "",
        f"- instruction: {summary.instruction}",
        f"- task: {summary.task_id}",
        f"- designer: {summary.designer}",
        f"- status: {summary.status} ({summary.message})",
        f"- wall time: {summary.wall_seconds / 60:.1f} min",
        f"- LLM: {summary.llm_calls} requests, {summary.llm_tokens:,} tokens, ${summary.llm_cost_usd:.4f}",
        "",
    ]
    if resolved is not None:
        lines += ["## Success check (frozen for the run)", "", resolved.success_text, ""]  # type: ignore[list-item]  # resolved: written
    lines += ["## Candidates", "", "| candidate | stage | success | progress | note |", "|---|---|---|---|---|"]
    for c in summary.candidates:
        rate = "-" if c.success_rate is None else f"{c.success_rate:.0%}"
        prog = "-" if c.progress is None else f"{c.progress:.2f}"
        mark = " **best**" if c.id == summary.best else ""
        lines.append(f"| {c.id}{mark} | {c.stage} | {rate} | {prog} | {c.reason[:160].replace('|', '/')} |")
    if summary.final is not None:
        f = summary.final
        if f.mode == "own_policy":
            lines += [
                "",
                "## Final evaluation (the winner's own policy on fresh episodes)",
                "",
                f"- success rate {f.success_mean:.0%} on {f.episodes} episodes (seed {f.seeds[0]}, "
                "used by no training or selection)",
            ]
        else:
            lines += [
                "",
                "## Final evaluation (best reward retrained on fresh seeds)",
                "",
                f"- seeds {f.seeds}: success rates {[round(r, 3) for r in f.success_rates]}",
                f"- success rate {f.success_mean:.0%} ± {f.success_std:.0%} (mean ± std over seeds)",
            ]
        if f.human_normalized_score is not None:
            lines.append(
                f"- human normalized score {f.human_normalized_score:.2f} "
                f"(returns: method {f.method_return:.1f}, human {f.human_return:.1f}, "
                f"sparse {f.sparse_return:.1f})"
            )
        lines += [f"- video: {v}" for v in f.videos]
        if f.video_error:
            lines.append(f"- video: none; {f.video_error}")
    if summary.best_reward_file:
        lines += ["", f"The winning reward: `{summary.best_reward_file}`."]
    return "\n".join(lines) + "\n"
