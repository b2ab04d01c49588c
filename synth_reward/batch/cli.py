"""`synth-reward batch SUITE`, `batch --resume BATCH`, `batch --table BATCH`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.live import Live
from rich.table import Table

from synth_reward.agent.options import (
    ApiBase,
    Episodes,
    FinalEpisodes,
    Iterations,
    Model,
    NumEnvs,
    Samples,
    Search,
    Seed,
    SpendCap,
    Steps,
    TargetSuccess,
    Video,
    one_of,
)
from synth_reward.errors import UsageError
from synth_reward.output import make_console, print_json

console = make_console()


def batch_command(
    suite: Annotated[
        str | None, typer.Argument(help="A built-in suite (`synth-reward tasks`) or a suite YAML file.")
    ] = None,
    tasks: Annotated[str | None, typer.Option("--tasks", help="Only these task ids, comma-separated.")] = None,
    executor: Annotated[
        str,
        typer.Option(
            "--executor",
            callback=one_of("--executor", "local", "ray"),
            help="local (processes on this machine) or ray.",
        ),
    ] = "local",
    workers: Annotated[
        int | None,
        typer.Option("--workers", min=1, help="Runs at once (default: this machine's cores / --cpus-per-run)."),
    ] = None,
    cpus_per_run: Annotated[
        int, typer.Option("--cpus-per-run", min=1, help="CPU cores one run uses (declared to Ray as num_cpus).")
    ] = 2,
    ray_address: Annotated[
        str | None,
        typer.Option("--ray-address", help="A Ray cluster: auto, or HOST:PORT (default: a local Ray instance)."),
    ] = None,
    baselines: Annotated[
        bool,
        typer.Option(
            "--baselines/--no-baselines",
            help="Also train each task's human reward and the sparse baseline at the same budget (the table's "
            "comparison and the human normalized score).",
        ),
    ] = True,
    resume: Annotated[
        str | None, typer.Option("--resume", help="Continue this batch (id or folder): every unfinished run.")
    ] = None,
    table: Annotated[str | None, typer.Option("--table", help="Print this batch's table again (id or folder).")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="With --table: the rows and summary as JSON.")] = False,
    samples: Samples = 3,
    iterations: Iterations = 2,
    steps: Steps = 1_200_000,
    target_success: TargetSuccess = 0.9,
    search: Search = "halving",
    final_episodes: FinalEpisodes = 32,
    episodes: Episodes = 8,
    num_envs: NumEnvs = None,
    model: Model = None,
    api_base: ApiBase = None,
    spend_cap: SpendCap = None,
    video: Video = True,
    seed: Seed = 0,
    out: Annotated[Path, typer.Option("--out", help="Folder that holds run and batch folders.")] = Path("runs"),
) -> None:
    """Every task of a suite through the loop, on this machine or a Ray cluster; a table at the end."""
    from synth_reward.batch.batch import Batch

    chosen = [name for name, given in (("SUITE", suite), ("--resume", resume), ("--table", table)) if given]
    if len(chosen) != 1:
        raise UsageError("give one of SUITE (a new batch), --resume BATCH or --table BATCH")
    if json_output and table is None:
        raise UsageError("--json goes with --table")
    if table is not None:
        _print_table(Batch.open(table, out), json_output)
        return
    if resume is not None:
        batch = Batch.open(resume, out)
        record = batch.record()
        runner = _executor(record.executor, record.workers, record.ray_address, record.cpus_per_run)
        console.print(f"resuming batch {record.batch_id}: {len(batch.units())} unfinished runs", highlight=False)
    else:
        assert suite is not None
        from synth_reward.agent.loop import settings_for
        from synth_reward.batch.executors import default_workers

        n = workers or default_workers(cpus_per_run)
        settings, _, note = settings_for(
            "batch",
            model=model,
            api_base=api_base,
            spend_cap_usd=spend_cap,
            samples=samples,
            iterations=iterations,
            steps=steps,
            target_success=target_success or None,
            search=search,
            final_episodes=final_episodes,
            eval_episodes=episodes,
            num_envs=num_envs,
            video=video,
            seed=seed,
            baselines=baselines,
        )
        template = settings.model_dump(mode="json", exclude={"instruction"})
        runner = _executor(executor, n, ray_address, cpus_per_run)  # Ray missing or not answering: before writing
        ids = [t.strip() for t in tasks.split(",") if t.strip()] if tasks else None
        batch = Batch.create(
            suite,
            ids,
            template,
            out,
            executor=executor,  # type: ignore[arg-type]
            workers=n,
            ray_address=ray_address,
            cpus_per_run=cpus_per_run,
        )
        console.print(note, highlight=False, markup=False)
        record = batch.record()
        console.print(
            f"batch {record.batch_id} -> {batch.path} ({len(record.entries)} tasks, {runner.name} executor, "
            f"{n} at a time)",
            highlight=False,
            markup=False,
        )
    _drive(batch, runner)


def _executor(name: str, workers: int, address: str | None, cpus_per_run: int) -> Any:
    from synth_reward.batch.executors import LocalExecutor, RayExecutor

    if name == "ray":
        return RayExecutor(workers, address=address, cpus_per_run=cpus_per_run)
    if address is not None:
        raise UsageError("--ray-address goes with --executor ray")
    return LocalExecutor(workers)


def _drive(batch: Any, runner: Any) -> None:
    from synth_reward.batch.table import write_tables

    overview = Overview(batch)
    with overview:
        try:
            batch.run(runner, on_change=overview.changed)
        except KeyboardInterrupt:
            overview.changed()
            write_tables(batch)
            console.print(
                f"interrupted; continue with `synth-reward batch --resume {batch.path}`", highlight=False, markup=False
            )
            raise typer.Exit(130) from None
    _, summary, files = write_tables(batch)
    _print_table(batch, False)
    console.print(f"table: {files['md']}  {files['csv']}  {files['html']}", highlight=False, markup=False)
    if summary.finished < summary.tasks:
        raise typer.Exit(1)


def _print_table(batch: Any, json_output: bool) -> None:
    from synth_reward.batch.table import COLUMNS, cell, rows, summarize, summary_line

    table = rows(batch)
    summary = summarize(batch, table)
    if json_output:
        print_json(console, {"rows": [r.model_dump() for r in table], "summary": summary.model_dump()})
        return
    from synth_reward.output import Column, print_records

    records = [{k: cell(k, r.model_dump()[k]) for k, _ in COLUMNS} for r in table]
    print_records(console, records, [Column(k, name) for k, name in COLUMNS])
    console.print(summary_line(summary), highlight=False, markup=False)


class Overview:
    """The batch while it runs: a live table on a terminal, a plain line per change otherwise.

    Polled from the run folders every two seconds (a run's iteration and best success so far
    change while its unit runs, with no message to the batch process).
    """

    def __init__(self, batch: Any) -> None:
        self.batch, self.start = batch, time.monotonic()
        self.seen: dict[str, tuple[Any, ...]] = {}
        self.live: Live | None = None
        self.running = False
        if console.is_terminal:
            self.live = Live(self._render(), console=console, refresh_per_second=1, transient=False)

    def __enter__(self) -> Overview:
        import threading

        if self.live is not None:
            self.live.__enter__()
        self.running = True
        threading.Thread(target=self._poll, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.running = False
        self.changed()
        if self.live is not None:
            self.live.__exit__(None, None, None)

    def _poll(self) -> None:
        while self.running:
            time.sleep(2)
            try:
                self.changed()
            except Exception:  # (a record read half-way through its replacement: next time)
                pass

    def _rows(self) -> list[dict[str, Any]]:
        from synth_reward.batch.table import progress

        return [progress(self.batch, e) for e in self.batch.record().entries]

    def _render(self) -> Table:
        elapsed = (time.monotonic() - self.start) / 60
        table = Table(
            "task", "iteration", "best success", "state", "elapsed", title=f"batch · {elapsed:.1f} min", expand=True
        )
        for r in self._rows():
            table.add_row(*_cells(r))
        return table

    def changed(self) -> None:
        if self.live is not None:
            self.live.update(self._render())
            return
        for r in self._rows():
            key = (r["state"], r["iteration"], r["best"])
            if self.seen.get(r["task"], ("pending", None, None)) != key:
                self.seen[r["task"]] = key
                console.print("  ".join(_cells(r)), highlight=False, markup=False)


def _cells(r: dict[str, Any]) -> list[str]:
    best = "-" if r["best"] is None else f"{r['best']:.0%}"
    elapsed = "-" if r["elapsed"] is None else f"{r['elapsed'] / 60:.1f} min"
    return [r["task"], str(r["iteration"] or "-"), best, r["state"], elapsed]
