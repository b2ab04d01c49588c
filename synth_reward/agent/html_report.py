"""report.html: one self-contained page about a run, for people (opens offline from a file path).

Everything is in the file: the style, the plots (matplotlib PNGs as data: URLs, agent/plots.py), the
frame strips of the winner's best and worst final episodes (agent/media.py); videos are linked by a
path relative to the report (they stay in the run folder). Rendered from the run folder's records
(agent/view.py), so it works for any run, finished or not, old or new:
`synth-reward report RUN [--out FILE.html]`; the main command writes it next to report.md.
"""

from __future__ import annotations

import base64
import html
import os
from pathlib import Path

from synth_reward.agent.media import ensure_media
from synth_reward.agent.store import RunStore
from synth_reward.agent.view import CandidateView, RunView, code_diff, load_run

REPORT_HTML = "report.html"

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1200px;
color:#1b1b1b;padding:0 1em;line-height:1.4}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}
pre{background:#f6f8fa;padding:.6em;overflow:auto;font-size:12px;max-height:28em}
.cands{display:flex;flex-wrap:wrap;gap:1em}.card{border:1px solid #bbb;border-radius:6px;padding:.7em;
flex:1 1 360px;max-width:560px;background:#fff}.best{border:2px solid #2a7;box-shadow:0 0 4px #2a7}
.muted{color:#666}.human{background:#fff7d6;border-left:4px solid #e0b000;padding:.5em .8em;margin:.6em 0}
.add{background:#e6ffec}.del{background:#ffebe9}.hunk{color:#6f42c1}
img{max-width:100%}.strip{width:100%;border:1px solid #ccc}
"""


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def pct(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.0%}"


def data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def diff_html(cand: CandidateView, parent_code: str | None) -> str:
    rows = []
    for kind, line in code_diff(parent_code, cand.code):
        cls = {"+": "add", "-": "del", "@": "hunk"}.get(kind, "")
        mark = kind if kind in "+-" else " "
        rows.append(f'<span class="{cls}">{esc((mark + line) if kind != "@" else line)}</span>')
    return "<pre>" + "\n".join(rows) + "</pre>"


def _winner_media(view: RunView, winner: CandidateView) -> tuple[str, list[Path]]:
    """The frame strips of the winner's best and worst final episodes (drawn once, cached), and its videos."""
    states = winner.path / "final_eval" / "states.npz"
    if not states.is_file():
        found = sorted(view.store.path.glob("iter_00/cand_00/*/eval/states.npz"))
        states = found[0] if found else winner.path / "train" / "eval" / "states.npz"
    media = ensure_media(states, winner.path / "media_final")
    parts = []
    if media is None:
        parts.append('<p class="muted">no recorded episodes to draw</p>')
    elif media.get("error"):
        parts.append(f'<p class="muted">no frame strip: {esc(media["error"])}</p>')
    else:
        for which in ("best", "worst"):
            entry = media.get(which) or {}
            path = winner.path / "media_final" / str(entry.get("strip"))
            if path.is_file():
                times = ", ".join(f"{t:g}" for t in entry.get("times_s", []))
                parts.append(
                    f"<h4>{which} episode (#{entry.get('episode')}: the check held on "
                    f"{entry.get('success_fraction', 0):.0%} of its steps; frames at {times} s)</h4>"
                    f'<img class="strip" alt="{which} episode" src="{data_url(path.read_bytes())}">'
                )
    videos = winner.videos()
    if winner.final is not None:
        videos = [view.store.path / v for v in winner.final.videos] or videos
    if not videos and view.summary and view.summary.final:
        videos = [view.store.path / v for v in view.summary.final.videos]
    return "\n".join(parts), videos


def render_html(view: RunView, out_dir: Path) -> str:
    """The report as one HTML string; links to videos are relative to `out_dir`."""
    from synth_reward.agent import plots

    info, task, summary = view.info, view.task, view.summary
    winner = view.winner() or view.best()
    body: list[str] = [f"<h1>synth-reward run {esc(view.store.run_id)}</h1>"]
    status = summary.status if summary else info.status
    message = summary.message if summary else info.message
    body.append("<table>")
    rows = [
        ("instruction", info.instruction),
        ("task", task.summary() if task else "not resolved yet"),
        ("designer", summary.designer if summary else info.settings.get("designer", "")),
        ("status", f"{status} {message}".strip()),
        ("result", f"{winner.id}: evaluation success {pct(winner.success_rate)}" if winner else "no candidate trained"),
    ]
    body += [f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows]
    body.append("</table>")
    if task is not None:
        check = task.success_code or (task.success_text or "")
        body.append("<h2>Success check (frozen for the run)</h2>")
        body.append(f"<p>{esc(task.success_text or '')}</p>")
        if task.success_code:
            body.append(f"<pre>{esc(check)}</pre>")
        edits = [a for a in view.acts if a.act == "edit_success"]
        for e in edits:
            state = "accepted and applied" if e.accepted else f"rejected ({e.reason})"
            body.append(
                f'<div class="human">{esc(e.who)} edited the check after iteration {e.iteration}: {esc(state)}</div>'
            )

    # ---- the winner -------------------------------------------------------------------------------------
    body.append("<h2>The winner and its final evaluation</h2>")
    if winner is None:
        body.append('<p class="muted">no candidate trained successfully</p>')
    else:
        final = summary.final if summary else None
        body.append(
            f"<p>candidate <b>{esc(winner.id)}</b> (iteration {winner.iteration}), "
            f"evaluation success rate {pct(winner.success_rate)}</p>"
        )
        if final is not None:
            body.append("<table><tr><th>seed</th><th>success rate</th></tr>")
            body += [
                f"<tr><td>{s}</td><td>{pct(r)}</td></tr>"
                for s, r in zip(final.seeds, final.success_rates, strict=False)
            ]
            body.append("</table>")
            what = f"{final.episodes} fresh episodes of its own policy" if final.mode == "own_policy" else "retrained"
            body.append(f"<p>final: {pct(final.success_mean)} ± {pct(final.success_std)} ({esc(what)})</p>")
            if final.human_normalized_score is not None:
                body.append(f"<p>human normalized score: {final.human_normalized_score:.2f}</p>")
            else:
                body.append('<p class="muted">human normalized score: not defined for this task (or not computed)</p>')
            if final.video_error:
                body.append(f'<p class="muted">no video: {esc(final.video_error)}</p>')
        strips, videos = _winner_media(view, winner)
        body.append(strips)
        for v in videos:
            rel = os.path.relpath(v, out_dir)
            body.append(f'<p>video: <a href="{esc(rel)}">{esc(rel)}</a></p>')
        if winner.code:
            body.append(f"<details open><summary>its reward code</summary><pre>{esc(winner.code)}</pre></details>")

    # ---- iterations ---------------------------------------------------------------------------------------
    rates = {it: [(c.id, c.success_rate) for c in cs] for it, cs in view.iterations.items()}
    if rates:
        body.append("<h2>Iterations</h2>")
        body.append(f'<img alt="success by iteration" src="{data_url(plots.success_by_iteration(rates))}">')
    for iteration in sorted(view.iterations):
        cands = view.iterations[iteration]
        design = view.designs.get(iteration, {})
        parent = design.get("parent")
        body.append(f"<h3>Iteration {iteration}</h3>")
        body.append(f"<p class='muted'>written from {esc(parent) if parent else 'scratch (the task alone)'}</p>")
        human = ((design.get("feedback") or {}).get("human")) if isinstance(design.get("feedback"), dict) else None
        if human:
            body.append(f'<div class="human"><b>the person said</b> (about {esc(parent)}): “{esc(human)}”</div>')
        parent_view = view.candidate(parent) if parent else None
        body.append('<div class="cands">')
        for c in cands:
            best = " best" if winner is not None and c.id == winner.id else ""
            body.append(f'<div class="card{best}"><h4>{esc(c.id)}: {esc(c.stage)}, success {pct(c.success_rate)}</h4>')
            body.append(f"<p>{esc(c.verdict_line)}</p>")
            if c.reason and c.stage != "analyzed":
                body.append(f'<p class="muted">{esc(c.reason[:400])}</p>')
            if c.records:
                body.append(
                    f'<img alt="components of {esc(c.id)}" src="{data_url(plots.component_curves(c.records, c.id))}">'
                )
            if c.short_notes and c.analysis is not None:
                body.append(f"<pre>{esc(c.short_notes)}</pre>")
            if c.code:
                label = f"reward code (diff against {parent})" if parent_view and parent_view.code else "reward code"
                body.append(
                    f"<details><summary>{esc(label)}</summary>{diff_html(c, parent_view.code if parent_view else None)}</details>"
                )
            body.append("</div>")
        body.append("</div>")
        for act in view.human_words(iteration):
            if act.act in ("accept", "skip", "choose", "feedback"):
                said = f": “{esc(act.text)}”" if act.text else ""
                body.append(
                    f'<div class="human">{esc(act.who)} ({esc(act.via)}, {esc(act.t[:19])}): '
                    f"{esc(act.act)} {esc(act.candidate or '')}{said}</div>"
                )

    # ---- cost and time ------------------------------------------------------------------------------------
    usage = view.llm_usage()
    body.append("<h2>LLM use</h2>")
    body.append(
        f"<p>{usage['requests']} requests ({usage['errors']} failed), {usage['prompt_tokens']:,} prompt + "
        f"{usage['completion_tokens']:,} completion tokens, ${usage['cost_usd']:.4f}</p>"
    )
    seconds = view.stage_seconds()
    body.append("<h2>Wall-clock per stage</h2><table>")
    body += [f"<tr><th>{esc(k)}</th><td>{v:.1f} s</td></tr>" for k, v in seconds.items()]
    body.append("</table>")
    body.append(f'<img alt="stage times" src="{data_url(plots.stage_times(seconds))}">')
    title = f"synth-reward {view.store.run_id}"
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
        f"<style>{STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def write_html_report(store: RunStore, out: Path | None = None) -> Path:
    """Write the run's report.html (or `out`) and return its path."""
    from synth_reward.atomic import write_text

    path = (out or store.path / REPORT_HTML).expanduser().resolve()
    text = render_html(load_run(store), path.parent)
    write_text(path, text)
    return path
