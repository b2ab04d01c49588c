"""`synth-reward "instruction"` (run), `resume RUN` and `show RUN`: thin commands over agent.loop."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from synth_reward.agent.options import (
    ApiBase,
    Backend,
    Device,
    Episodes,
    FinalEpisodes,
    FinalSeeds,
    FinalSteps,
    Iterations,
    Model,
    NumEnvs,
    Review,
    Samples,
    Search,
    Seed,
    SpendCap,
    Steps,
    TargetSuccess,
    Video,
)
from synth_reward.errors import UsageError
from synth_reward.output import print_json

console = Console(soft_wrap=True)


class LiveView:
    """The run's progress: a live table on a terminal, one plain line per event otherwise."""

    def __init__(self, iterations: int, samples: int, designer: str) -> None:
        self.iterations, self.samples, self.designer = iterations, samples, designer
        self.iteration, self.status, self.start = 0, "starting", time.monotonic()
        self.rows: dict[str, dict[str, Any]] = {}
        self.train_seconds: list[float] = []
        self.spend = 0.0
        self.live: Live | None = None
        if console.is_terminal:
            self.live = Live(self._render(), console=console, refresh_per_second=2, transient=False)

    def __enter__(self) -> LiveView:
        if self.live is not None:
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.__exit__(None, None, None)

    def __call__(self, event: str, data: dict[str, Any]) -> None:
        line = None
        self.spend = data.get("llm_usd", self.spend)
        if event == "iteration":
            self.iteration = data["iteration"]
            line = f"iteration {data['iteration']}/{data['of']}"
        elif event == "task":
            line = f"task {data['task']}: success means: {data['success']}"
        elif event == "success_check":
            line = "success check (frozen for the run; saved as success.py):\n" + data["code"]
        elif event == "designing":
            self.status = f"designing {data['samples']} candidates ({data['designer']})"
            line = self.status
        elif event == "stage":
            self.rows.setdefault(data["id"], {})["stage"] = data["stage"]
            self.status = f"{data['id']}: {data['stage']}"
            line = self.status
        elif event == "candidate":
            self.rows[data["id"]] = data
            if data.get("train_seconds"):
                self.train_seconds.append(data["train_seconds"])
            rate = "-" if data.get("success_rate") is None else f"{data['success_rate']:.0%}"
            line = f"{data['id']}: {data['stage']}, success {rate}" + (
                f" ({data['reason'][:200]})" if data.get("reason") else ""
            )
        elif event == "target_reached":
            line = (
                f"target reached: {data['best']} succeeded on {data['success']:.0%} of its evaluation episodes "
                f"after iteration {data['iteration']}; no further iteration (--target-success 0 runs them all)"
            )
        elif event == "final":
            self.status = f"final evaluation: retraining the best reward, seed {data['seed']}"
            line = self.status
        if self.live is not None:
            self.live.update(self._render())
        elif line is not None:
            console.print(line, highlight=False, markup=False)

    def _eta(self) -> str:
        if not self.train_seconds:
            return "-"
        done = sum(1 for r in self.rows.values() if "success_rate" in r or r.get("stage") == "rejected")
        left = max(0, self.iterations * self.samples - done)
        return f"~{left * sum(self.train_seconds) / len(self.train_seconds) / 60:.0f} min"

    def _render(self) -> Group:
        elapsed = (time.monotonic() - self.start) / 60
        head = Text(
            f"iteration {self.iteration}/{self.iterations} · {self.designer} · LLM ${self.spend:.4f} · "
            f"{elapsed:.1f} min elapsed · ETA {self._eta()} · {self.status}"
        )
        table = Table("candidate", "stage", "success", "progress", "note", expand=True)
        for cid, r in self.rows.items():
            rate = "-" if r.get("success_rate") is None else f"{r['success_rate']:.0%}"
            prog = "-" if r.get("progress") is None else f"{r['progress']:.2f}"
            table.add_row(cid, r.get("stage", ""), rate, prog, (r.get("reason") or "")[:80])
        return Group(head, table)


def run_command(
    instruction: Annotated[str, typer.Argument(help='What the robot should do, e.g. "make the humanoid kneel".')],
    env: Annotated[str | None, typer.Option("--env", help="Morphology, when the sentence names none.")] = None,
    success: Annotated[
        Path | None,
        typer.Option(
            "--success", help="Your own success(state) check (free-form instructions); vetted, then frozen for the run."
        ),
    ] = None,
    samples: Samples = 3,
    iterations: Iterations = 2,
    steps: Steps = 1_200_000,
    target_success: TargetSuccess = 0.9,
    search: Search = "halving",
    final_seeds: FinalSeeds = 0,
    final_episodes: FinalEpisodes = 32,
    final_steps: FinalSteps = None,
    episodes: Episodes = 8,
    num_envs: NumEnvs = None,
    backend: Backend = None,
    device: Device = None,
    model: Model = None,
    api_base: ApiBase = None,
    spend_cap: SpendCap = None,
    review: Review = False,
    video: Video = True,
    seed: Seed = 0,
    out: Annotated[Path, typer.Option("--out", help="Folder that holds run folders.")] = Path("runs"),
) -> None:
    """Design, vet, train and refine reward code for an instruction; the run folder keeps everything."""
    from synth_reward.agent.loop import Loop, settings_for
    from synth_reward.agent.store import RunStore, check_writable

    if backend is not None or device is not None:
        from synth_reward.envs.backend import choose_backend

        backend, device = choose_backend(backend, device)  # bad input fails here, before anything is written
    settings, llm, note = settings_for(
        instruction,
        model=model,
        api_base=api_base,
        spend_cap_usd=spend_cap,
        env=env,
        success_file=str(success) if success else None,
        samples=samples,
        iterations=iterations,
        steps=steps,
        target_success=target_success or None,
        search=search,
        final_seeds=final_seeds,
        final_episodes=final_episodes,
        final_steps=final_steps,
        eval_episodes=episodes,
        num_envs=num_envs,
        backend=backend,
        device=device,
        review=review,
        video=video,
        seed=seed,
    )
    console.print(note, highlight=False, markup=False)
    resolved = Loop.prepare(settings)  # bad input fails here, before anything is written
    check_writable(out)
    store = RunStore.create(out, settings.instruction, settings=settings.model_dump(mode="json"))
    console.print(f"run {store.run_id} -> {store.path}", highlight=False, markup=False)
    _drive(Loop(store, settings, llm, resolved=resolved), settings)


def resume_command(
    run: Annotated[str, typer.Argument(help="Run id or run folder.")],
    out: Annotated[Path, typer.Option("--out", help="Folder that holds run folders.")] = Path("runs"),
) -> None:
    """Continue a stopped or killed run where it stopped; nothing is designed, paid for or trained twice."""
    from pydantic import ValidationError

    from synth_reward.agent.loop import Loop, RunSettings
    from synth_reward.agent.store import RunStore

    store = RunStore.open(run, out)
    try:
        settings = RunSettings.model_validate(store.info().settings)
    except ValidationError as exc:
        raise UsageError(f"{store.path / 'run.json'} has unusable settings: {exc.errors()[0]['msg']}") from None
    console.print(f"resuming {store.run_id} ({store.info().status})", highlight=False, markup=False)
    _drive(Loop(store, settings), settings)


def show_command(
    run: Annotated[str, typer.Argument(help="Run id or run folder.")],
    out: Annotated[Path, typer.Option("--out", help="Folder that holds run folders.")] = Path("runs"),
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the run's info and its candidates' results as a JSON object.")
    ] = False,
) -> None:
    """Print a run's report (or its progress so far); --json gives scripts the same facts without parsing text."""
    from synth_reward.agent.store import RunStore

    store = RunStore.open(run, out)
    if json_output:
        value = {
            "run_id": store.run_id,
            "path": str(store.path),
            **store.info().model_dump(mode="json"),
            "candidates": [r for r in (c.read("result") for c in store.candidates()) if r],
            "report": store.read_text("report.md"),
            "report_html": str(store.path / "report.html") if (store.path / "report.html").is_file() else None,
        }
        print_json(console, value)
        return
    report = store.read_text("report.md")
    if report is None:
        info = store.info()
        results = [c.read("result") for c in store.candidates()]
        lines = [f"run {store.run_id}: {info.status} {info.message}".rstrip(), f"instruction: {info.instruction}"]
        lines += [
            f"{r['id']}: {r['stage']} success={r.get('success_rate')} {r.get('reason', '')[:120]}" for r in results if r
        ]
        report = "\n".join(lines)
    console.print(report, highlight=False, markup=False)
    html = store.path / "report.html"
    console.print(
        f"HTML report: {html}" if html.is_file() else f"HTML report: none yet (`synth-reward report {store.run_id}`)",
        highlight=False,
        markup=False,
    )


def _drive(loop: Any, settings: Any) -> None:
    designer = "LLM " + str(settings.llm.get("model")) if settings.designer == "llm" else "offline template designer"
    with LiveView(settings.iterations, settings.samples, designer) as view:
        loop.on_event = view
        summary = loop.run()
    console.print(f"{summary.status}: {summary.message}", highlight=False, markup=False)
    console.print(f"report: {Path(summary.run_dir) / 'report.md'}", highlight=False, markup=False)
    console.print(f"HTML report: {Path(summary.run_dir) / 'report.html'}", highlight=False, markup=False)
    if summary.best_reward_file:
        console.print(f"best reward: {summary.best_reward_file}", highlight=False, markup=False)
    if summary.status == "stopped":  # spend cap (3) or an LLM failure (1); `resume` continues it
        raise typer.Exit(3 if loop.stop_kind == "spend_cap" else 1)
