"""The review page: a Starlette app over one run folder, server-rendered HTML, nothing from outside.

Routes (every file the page loads is served here; no CDN, no JavaScript build step, no script at all:
while an iteration runs the page reloads itself with a meta refresh):

    GET  /                   the run: per iteration, the candidates side by side
    GET  /file/<path>        a file of the run folder (videos, frame strips); a path that resolves outside
                             the folder, or to nothing, is a 404
    GET  /plot/<cand>.png    a candidate's reward-component curves during training (matplotlib)
    GET  /progress           {"busy": ..., "lines": [...], "latest": N} as JSON
    POST /act                one act of the feedback session (form fields act, candidate, text, success_code);
                             303 back to / when recorded, 4xx with the reason in one line when not

The page drives the same session as the terminal (agent/session.py, agent/loop.py): an act is
recorded in session.jsonl and the next iteration runs in a worker thread while the page shows its
progress. The server holds the run's lock for its lifetime, so a terminal session (or a second
page) on the same run is refused with "in use by PID N".
"""

from __future__ import annotations

import collections
import html
import threading
import urllib.parse
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from synth_reward.agent.html_report import STYLE, diff_html, pct
from synth_reward.agent.loop import Loop
from synth_reward.agent.media import ensure_media
from synth_reward.agent.records import RunSettings
from synth_reward.agent.store import RunStore
from synth_reward.agent.view import CandidateView, RunView, load_run
from synth_reward.errors import SynthRewardError, UsageError

esc = html.escape
PAGE_STYLE = (
    STYLE
    + """
.progress{background:#eef4ff;border:1px solid #9bb8ff;padding:.6em;border-radius:6px}
.progress pre{max-height:12em;background:none}
form{margin:.4em 0}textarea{width:100%;box-sizing:border-box;font:inherit}
button{margin:.2em .3em .2em 0;padding:.3em .8em}video{width:100%;background:#000}
.error{background:#ffebe9;border:1px solid #d33;padding:.6em}
"""
)


class Review:
    """The state of one review server: the run, its loop, and the worker that runs iterations."""

    def __init__(self, store: RunStore, settings: RunSettings, who: str | None = None) -> None:
        self.store, self.settings, self.who = store, settings, who
        self.loop = Loop(store, settings, on_event=self._event)
        self.lines: collections.deque[str] = collections.deque(maxlen=200)
        self.error = ""
        self.finished = False
        self._worker: threading.Thread | None = None
        self._plots: dict[tuple[str, float], bytes] = {}
        self._mutex = threading.Lock()

    # ---- the worker ----------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self._worker is not None and self._worker.is_alive()

    def _event(self, event: str, data: dict[str, Any]) -> None:
        if event == "iteration":
            self.lines.append(f"iteration {data.get('iteration')}")
        elif event == "stage":
            self.lines.append(f"{data.get('id')}: {data.get('stage')}")
        elif event == "candidate":
            self.lines.append(f"{data.get('id')}: {data.get('stage')}, success {pct(data.get('success_rate'))}")
        elif event == "designing":
            self.lines.append(f"designing {data.get('samples')} candidates")

    def start(self, accept: bool = False) -> None:
        """Run what the records call for (and, after an accept, the final evaluation) in the background."""

        def work() -> None:
            try:
                if accept:
                    self.lines.append("accepted: final evaluation and report")
                    self.loop.finish_session()
                    self.finished = True
                    self.lines.append("finished; the report is written")
                else:
                    self.loop.advance()
                    self.lines.append("drawing the candidates' videos")
                    for cand in self.store.candidates(self.loop.latest):
                        result = self.loop.results.get(cand.id)
                        if result is not None and result.stage == "analyzed":
                            ensure_media(cand.path / "train" / "eval" / "states.npz", cand.path / "media", video=True)
                    self.lines.append(f"iteration {self.loop.latest} is ready for review")
            except SynthRewardError as exc:
                self.error = str(exc)
            except Exception as exc:  # noqa: BLE001 - the page shows it; the server stays up
                self.error = f"{type(exc).__name__}: {exc}"

        with self._mutex:
            if self.busy:
                raise UsageError("an iteration is running; wait for it to finish")
            self.error = ""
            self._worker = threading.Thread(target=work, name="synth-reward-review", daemon=True)
            self._worker.start()

    def wait(self, timeout: float | None = None) -> None:
        if self._worker is not None:
            self._worker.join(timeout)

    # ---- acts ------------------------------------------------------------------------------------
    def act(self, form: dict[str, str]) -> str:
        """Record one act from the page and start what follows it; the act's one-line description."""
        if self.busy:
            raise UsageError("an iteration is running; wait for it to finish")
        if self.finished:
            raise UsageError("this run's session has ended (a candidate was accepted)")
        kind = form.get("act", "")
        if kind == "edit_success":
            self.loop.edit_success(form.get("success_code", ""), who=self.who, via="page")
            return "the new success check was accepted"
        done = self.loop.act(kind, form.get("candidate") or None, form.get("text"), who=self.who, via="page")
        self.start(accept=done.act == "accept")
        return f"{done.act} {done.candidate or ''}".strip()

    def plot(self, cid: str) -> bytes | None:
        from synth_reward.agent import plots

        view = load_run(self.store)
        cand = view.candidate(cid)
        if cand is None:
            return None
        records = cand.path / "train" / "records.jsonl"
        key = (cid, records.stat().st_mtime if records.exists() else 0.0)
        if key not in self._plots:
            self._plots[key] = plots.component_curves(cand.records, cid)
        return self._plots[key]


# ---- HTML ----------------------------------------------------------------------------------------
def _file_url(store: RunStore, path: Path) -> str:
    return "/file/" + urllib.parse.quote(str(path.relative_to(store.path)))


def _card(review: Review, view: RunView, c: CandidateView, latest: bool) -> str:
    store = review.store
    best = view.best(c.iteration)
    out = [f'<div class="card{" best" if best is not None and best.id == c.id else ""}" id="{esc(c.id)}">']
    out.append(f"<h3>{esc(c.id)}: {esc(c.stage)}, success {pct(c.success_rate)}</h3>")
    videos = c.videos()
    if videos:
        out.append(f'<video controls muted preload="auto" src="{_file_url(store, videos[-1])}"></video>')
    elif (strip := c.strip("best")) is not None:
        out.append(f'<img class="strip" alt="frames of {esc(c.id)}" src="{_file_url(store, strip)}">')
    elif c.media and c.media.get("error"):
        out.append(f'<p class="muted">no pictures: {esc(str(c.media["error"]))}</p>')
    else:
        out.append('<p class="muted">no video (not evaluated: it stopped early in the search)</p>')
    if c.records:
        out.append(f'<img alt="reward components of {esc(c.id)}" src="/plot/{esc(c.id)}.png">')
    out.append(f"<p><b>critic:</b> {esc(c.verdict_line)}</p>")
    if c.reason and c.stage != "analyzed":
        out.append(f'<p class="muted">{esc(c.reason[:500])}</p>')
    if c.analysis is not None:
        out.append(f"<details><summary>analyzer's notes</summary><pre>{esc(c.notes)}</pre></details>")
    parent = view.candidate(c.parent) if c.parent else None
    label = f"reward code, diff against its parent {c.parent}" if parent and parent.code else "reward code"
    if c.code:
        out.append(f"<details><summary>{esc(label)}</summary>{diff_html(c, parent.code if parent else None)}</details>")
    if latest and c.result is not None and c.result.stage in ("analyzed", "eliminated"):
        out.append(
            f'<form method="post" action="/act"><input type="hidden" name="candidate" value="{esc(c.id)}">'
            f'<textarea name="text" rows="3" aria-label="feedback on {esc(c.id)}" '
            'placeholder="what does the policy do wrong? what should it keep?"></textarea>'
            '<button name="act" value="feedback">Send feedback</button>'
            '<button name="act" value="choose">Choose as base</button>'
            + ('<button name="act" value="accept">Accept</button>' if c.result.stage == "analyzed" else "")
            + "</form>"
        )
    out.append("</div>")
    return "\n".join(out)


def render_page(review: Review, message: str = "", error: str = "") -> str:
    view = load_run(review.store)
    info, task = view.info, view.task
    busy = review.busy
    head = '<meta http-equiv="refresh" content="2">' if busy else ""
    body = [f"<h1>Review: {esc(view.store.run_id)}</h1>"]
    body.append(
        f"<p><b>{esc(info.instruction)}</b><br>{esc(task.summary() if task else '')}<br>"
        f"status: {esc(info.status)} {esc(info.message)}</p>"
    )
    if error or review.error:
        body.append(f'<div class="error">error: {esc(error or review.error)}</div>')
    if message:
        body.append(f'<div class="human">{esc(message)}</div>')
    if busy or review.lines:
        state = "running" if busy else "idle"
        lines = "\n".join(list(review.lines)[-15:])
        body.append(f'<div class="progress" id="progress"><b>progress ({state})</b><pre>{esc(lines)}</pre></div>')
    if (view.store.path / "report.html").is_file():
        body.append('<p><a href="/file/report.html">the run report</a></p>')
    if view.acts:
        body.append("<h2>Session</h2><ul>")
        for a in view.acts:
            said = f": “{esc(a.text)}”" if a.text else ""
            body.append(
                f"<li>{esc(a.t[:19])} {esc(a.who)} ({esc(a.via)}): {esc(a.act)} {esc(a.candidate or '')}{said}</li>"
            )
        body.append("</ul>")
    latest = view.latest
    for iteration in sorted(view.iterations, reverse=True):
        cands = view.iterations[iteration]
        is_latest = iteration == latest and not busy and not review.finished
        design = view.designs.get(iteration, {})
        feedback = design.get("feedback") if isinstance(design.get("feedback"), dict) else {}
        summary = f"Iteration {iteration}" + (" (latest)" if iteration == latest else "")
        body.append(
            f"<details {'open' if iteration == latest else ''}><summary><h2 style='display:inline'>{esc(summary)}</h2></summary>"
        )
        body.append(f"<p class='muted'>written from {esc(design.get('parent') or 'the task alone')}</p>")
        if feedback and feedback.get("human"):
            body.append(f'<div class="human">the person said: “{esc(feedback["human"])}”</div>')
        body.append('<div class="cands">' + "\n".join(_card(review, view, c, is_latest) for c in cands) + "</div>")
        if is_latest:
            body.append(
                '<form method="post" action="/act"><button name="act" value="skip">Skip: next iteration from the '
                "automatic best, no words</button></form>"
            )
            if task is not None and task.free_form:
                body.append(
                    '<form method="post" action="/act"><p>Edit the success check (vetted before it applies):</p>'
                    f'<textarea name="success_code" rows="8">{esc(task.success_code or "")}</textarea>'
                    '<button name="act" value="edit_success">Save the check</button></form>'
                )
        body.append("</details>")
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">{head}<title>review {esc(view.store.run_id)}</title>'
        f"<style>{PAGE_STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def inside(root: Path, rel: str) -> Path | None:
    """`rel` resolved inside `root` as an existing file, or None (outside, a folder, or nothing)."""
    try:
        path = (root / rel).resolve()
    except (OSError, RuntimeError, ValueError):
        return None
    if not path.is_relative_to(root.resolve()) or not path.is_file():
        return None
    return path


def create_app(review: Review) -> Starlette:
    root = review.store.path

    async def index(request: Request) -> Response:
        return HTMLResponse(await run_in_threadpool(render_page, review))

    async def file(request: Request) -> Response:
        path = inside(root, request.path_params["path"])
        if path is None:
            return Response("not found\n", status_code=404, media_type="text/plain")
        return FileResponse(path)

    async def plot(request: Request) -> Response:
        png = await run_in_threadpool(review.plot, request.path_params["cid"])
        if png is None:
            return Response("no such candidate\n", status_code=404, media_type="text/plain")
        return Response(png, media_type="image/png")

    async def progress(request: Request) -> Response:
        return JSONResponse(
            {"busy": review.busy, "lines": list(review.lines), "latest": review.loop.latest, "error": review.error}
        )

    async def act(request: Request) -> Response:
        raw = (await request.body()).decode("utf-8", errors="replace")
        form = {k: v[-1] for k, v in urllib.parse.parse_qs(raw, keep_blank_values=True).items()}
        try:
            await run_in_threadpool(review.act, form)
        except UsageError as exc:
            status = 409 if "running" in str(exc) or "ended" in str(exc) else 400
            if "application/json" in request.headers.get("accept", ""):
                return JSONResponse({"error": str(exc)}, status_code=status)
            return HTMLResponse(await run_in_threadpool(render_page, review, "", str(exc)), status_code=status)
        return RedirectResponse("/", status_code=303)

    routes = [
        Route("/", index),
        Route("/file/{path:path}", file),
        Route("/plot/{cid}.png", plot),
        Route("/progress", progress),
        Route("/act", act, methods=["POST"]),
    ]
    return Starlette(routes=routes)
