"""`synth-reward feedback RUN` (a feedback session in the terminal) and `synth-reward report RUN` (report.html).

Thin commands over agent/session.py and agent/loop.py: the session is the same one the review page
(`synth-reward review`, synth_reward/web) drives, stored in the run folder's session.jsonl.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from synth_reward.errors import UsageError

ACT_KEYS = {"f": "feedback", "c": "choose", "a": "accept", "e": "edit_success", "s": "skip", "q": "quit"}
PROMPT = "act: [f]eedback, [c]hoose as base, [a]ccept, [e]dit success check, [s]kip, [q]uit > "


def open_session(run: str, out: Path) -> tuple[Any, Any]:
    """(store, settings) of an existing run that no other process is writing; UsageError (exit 2) otherwise."""
    from pydantic import ValidationError

    from synth_reward.agent.records import RunSettings
    from synth_reward.agent.session import check_not_in_use
    from synth_reward.agent.store import RunStore

    store = RunStore.open(run, out)
    check_not_in_use(store)
    try:
        settings = RunSettings.model_validate(store.info().settings)
    except ValidationError as exc:
        raise UsageError(f"{store.path / 'run.json'} has unusable settings: {exc.errors()[0]['msg']}") from None
    return store, settings


def print_iteration(view: Any, iteration: int, echo: Any) -> None:
    """The latest iteration's candidates for a person in a terminal (plain text: works over SSH)."""
    from synth_reward.agent.html_report import pct

    cands = view.iterations.get(iteration, [])
    echo(f"\niteration {iteration}: {len(cands)} candidates")
    for c in cands:
        prog = "-" if c.result is None or c.result.progress is None else f"{c.result.progress:.2f}"
        echo(f"  {c.id}: {c.stage}, success {pct(c.success_rate)}, progress {prog}")
        for line in (c.short_notes or c.reason).splitlines()[:4]:
            echo(f"      {line[:200]}")
        for v in c.videos():
            echo(f"      video: {v}")
        for which in ("best", "worst"):
            if (strip := c.strip(which)) is not None:
                echo(f"      frames ({which} episode): {strip}")
        if c.media and c.media.get("error"):
            echo(f"      no pictures: {c.media['error']}")
    best = view.best(iteration)
    if best is not None and best.code:
        echo(f"\nbest of iteration {iteration}: {best.id}; its reward code:\n")
        echo(best.code.rstrip())
    echo("")


def draw_latest(loop: Any, store: Any) -> None:
    """Frame strips and a video of each evaluated candidate of the latest iteration (cached)."""
    from synth_reward.agent.media import ensure_media

    for cand in store.candidates(loop.latest):
        result = loop.results.get(cand.id)
        if result is not None and result.stage == "analyzed":
            ensure_media(cand.path / "train" / "eval" / "states.npz", cand.path / "media", video=True)


def feedback_command(
    run: Annotated[str, typer.Argument(help="Run id or run folder.")],
    out: Annotated[Path, typer.Option("--out", help="Folder that holds run folders.")] = Path("runs"),
    name: Annotated[str | None, typer.Option("--name", help="Who acts (default: the OS user).")] = None,
    act: Annotated[
        str | None,
        typer.Option(
            "--act",
            help="Do one act and exit instead of asking: feedback, choose, accept, skip or edit_success.",
        ),
    ] = None,
    candidate: Annotated[
        str | None, typer.Option("--candidate", help="The candidate the act is about (default: the latest best).")
    ] = None,
    text: Annotated[str | None, typer.Option("--text", help="Your words about the candidate (--act feedback).")] = None,
    success: Annotated[
        Path | None, typer.Option("--success", help="A new success check file (--act edit_success; free-form runs).")
    ] = None,
) -> None:
    """A feedback session in the terminal: see the latest candidates, say what is wrong, run the next iteration.

    Repeats until you accept a candidate or quit (q, Ctrl-D or Ctrl-C: the session resumes where it stopped).
    With --act it does one act and exits (--text "..." alone means --act feedback)."""
    from synth_reward.agent.cli import LiveView, console
    from synth_reward.agent.loop import Loop
    from synth_reward.agent.session import ACTS, RunLock
    from synth_reward.agent.view import load_run

    if text is not None and act is None:
        act = "feedback"
    if act is not None and act not in ACTS:
        raise UsageError(f"--act must be one of {', '.join(ACTS)}, got {act!r}")
    if act == "feedback" and not " ".join((text or "").split()):
        raise UsageError("the feedback text is empty; say what the policy does wrong (--text)")
    if act == "edit_success" and (success is None or not success.is_file()):
        raise UsageError(f"--act edit_success needs --success FILE (a readable file), got {success}")
    store, settings = open_session(run, out)
    view = load_run(store)
    if act in ("feedback", "choose", "accept", "skip"):  # checked now, before anything in the run changes
        from synth_reward.agent.session import make_act

        results = {c.id: c.result for cs in view.iterations.values() for c in cs if c.result is not None}
        best = view.best(view.latest)
        make_act(
            act,
            iteration=view.latest,
            results=results,
            candidate=candidate,
            text=text,
            default_candidate=best.id if best else None,
        )

    def echo(line: str) -> None:
        console.print(line, highlight=False, markup=False)

    designer = "LLM " + str(settings.llm.get("model")) if settings.designer == "llm" else "offline template designer"
    ran = False
    with RunLock(store, "synth-reward feedback"):
        loop = Loop(store, settings)

        def advance() -> None:
            with LiveView(loop.latest or settings.iterations, settings.samples, designer) as live:
                loop.on_event = live
                loop.advance()

        advance()
        while True:
            draw_latest(loop, store)
            print_iteration(load_run(store), loop.latest, echo)
            if act is None:
                try:
                    answer = input(PROMPT).strip().lower()
                except EOFError:
                    answer = "q"
                choice = ACT_KEYS.get(answer[:1], answer) if answer else ""
            else:
                choice = act
            if choice == "quit" or choice == "q":
                break
            try:
                if choice == "edit_success":
                    path = success or Path(input("success check file: ").strip()).expanduser()
                    if not path.is_file():
                        raise UsageError(f"no file {path}")
                    loop.edit_success(path.read_text(encoding="utf-8"), who=name)
                    echo("the new success check was accepted; it applies to the coming iterations")
                    if act is not None:
                        break
                    continue
                if choice not in ACTS:
                    echo(f"unknown act {answer!r}")
                    continue
                cid, words = candidate, text
                if act is None and choice in ("feedback", "choose", "accept"):
                    default = b.id if (b := loop.latest_best()) else ""
                    cid = input(f"candidate [{default}]: ").strip() or None
                if act is None and choice in ("feedback", "choose"):
                    words = input("your words (what is wrong, what to keep): ")
                done = loop.act(choice, cid, words, who=name)
            except UsageError as exc:
                if act is not None:
                    raise
                echo(f"error: {exc}")
                continue
            echo(f"recorded: {done.act} {done.candidate or ''} by {done.who}".rstrip())
            if done.act == "accept":
                summary = loop.finish_session()
                echo(f"{summary.status}: {summary.message}")
                echo(f"report: {store.path / 'report.html'}")
                return
            ran = True
            advance()
            if act is not None:
                draw_latest(loop, store)
                print_iteration(load_run(store), loop.latest, echo)
                break
        if ran:
            store.update_info(
                status="stopped", message="feedback session paused; continue with `synth-reward feedback`"
            )
    echo(f"session saved in {store.path / 'session.jsonl'}; continue with `synth-reward feedback {store.run_id}`")


def report_command(
    run: Annotated[str, typer.Argument(help="Run id or run folder.")],
    html_out: Annotated[
        Path | None, typer.Option("--out", help="Where to write the report (default: RUN/report.html).")
    ] = None,
    runs: Annotated[Path, typer.Option("--runs", help="Folder that holds run folders.")] = Path("runs"),
) -> None:
    """Write a run's self-contained HTML report (plots and frame strips embedded; opens offline)."""
    from synth_reward.agent.cli import console
    from synth_reward.agent.html_report import write_html_report
    from synth_reward.agent.store import RunStore

    store = RunStore.open(run, runs)
    if html_out is not None:
        target = html_out.expanduser()
        if target.is_dir() or not target.parent.is_dir() or not os.access(target.parent, os.W_OK):
            raise UsageError(f"cannot write the report to {html_out}: give a file in a writable folder")
    path = write_html_report(store, html_out)
    console.print(f"report: {path}", highlight=False, markup=False)
