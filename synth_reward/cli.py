"""The `synth-reward` command line: thin commands that delegate to library functions.

Every `SynthRewardError` is caught here and printed as one line; usage errors exit 2.
`synth-reward "make the humanoid kneel"` is shorthand for `synth-reward run "..."`.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from synth_reward import __version__
from synth_reward.errors import SynthRewardError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Turn a sentence into reward code, vet it, and prove it by training MuJoCo robots.",
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)


@app.command("envs")
def envs_command(
    name: Annotated[str | None, typer.Argument(help="Morphology to describe (omit to list all).")] = None,
    steps: Annotated[
        int, typer.Option(min=0, help="With no NAME: step each env this many random steps as a demo.")
    ] = 0,
    morphologies: Annotated[
        Path | None,
        typer.Option(
            help="A YAML file of extra morphologies (same format as synth_reward/envs/morphologies.yaml); "
            "SYNTH_REWARD_MORPHOLOGIES (os.pathsep-separated files) adds them to every command.",
        ),
    ] = None,
) -> None:
    """List the morphologies, or print one morphology's State description (what reward code can read)."""
    from synth_reward.envs import (
        describe_state,
        get_morphology,
        list_morphologies,
        load_morphologies,
    )

    list_morphologies()
    if morphologies is not None:
        for morph in load_morphologies(morphologies):
            morph.model()  # compile now, so a broken MJCF is reported here
    if name is not None:
        console.print(describe_state(get_morphology(name)), markup=False, highlight=False, soft_wrap=True)
        return
    table = Table("morphology", "bodies", "joints", "actuators", "obs", "dt (s)", "source")
    for morph in list_morphologies():
        layout = morph.layout()
        table.add_row(
            morph.name,
            str(len(layout.body_names)),
            str(len(layout.joint_names)),
            str(layout.num_actions),
            str(morph.obs_size()),
            f"{morph.dt:.3f}",
            morph.source,
        )
    console.print(table)
    if steps > 0:
        _demo_steps(steps)


def _demo_steps(steps: int) -> None:
    """Step every morphology with random actions and print the measured rate."""
    import time

    import torch

    from synth_reward.envs import BatchedEnv, list_morphologies

    for morph in list_morphologies():
        env = BatchedEnv(morph, num_envs=8, seed=0)
        env.reset()
        start = time.perf_counter()
        for _ in range(steps):
            env.step(torch.rand(env.num_envs, env.num_actions) * 2 - 1)
        rate = steps * env.num_envs / (time.perf_counter() - start)
        console.print(f"{morph.name:>13}: stepped 8 envs x {steps} steps, {rate:,.0f} env-steps/s")
        env.close()


@app.command("tasks")
def tasks_command(
    suite: Annotated[str | None, typer.Option(help="Only this suite (name or path to a suite file).")] = None,
) -> None:
    """List the built-in task suites and their tasks."""
    from synth_reward.envs import list_suites, load_suite

    suites = [load_suite(suite)] if suite else [load_suite(name) for name in list_suites()]
    for s in suites:
        table = Table(title=f"suite {s.name}: {s.description}", title_justify="left")
        table.add_column("task", no_wrap=True)
        for column in ("morphology", "steps", "termination", "human reward"):
            table.add_column(column)
        table.add_column("instruction", ratio=1)
        for task in s.tasks:
            table.add_row(
                task.id,
                task.morphology,
                str(task.episode_length),
                task.termination,
                task.human_reward or "-",
                task.instruction,
            )
        console.print(table)


from synth_reward.agent.cli import resume_command, run_command, show_command  # noqa: E402
from synth_reward.sandbox.cli import check_command  # noqa: E402 (kept next to the other commands)

app.command("check")(check_command)
app.command("run")(run_command)
app.command("resume")(resume_command)
app.command("show")(show_command)

from synth_reward.train.cli import analyze_command, eval_command, train_command  # noqa: E402

app.command("train")(train_command)
app.command("eval")(eval_command)
app.command("analyze")(analyze_command)


def _click_types() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...]]:
    """Click's usage-error and abort classes, from every click that may raise them.

    Typer 0.17+ vendors its own click (`typer._click`) and raises its classes; older typer raises the
    `click` package's. Both are caught, so usage errors are one line on any supported typer."""
    usage: list[type[BaseException]] = []
    abort: list[type[BaseException]] = [typer.Abort]
    for name in ("typer._click.exceptions", "click.exceptions"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        usage.append(module.ClickException)
        if hasattr(module, "Abort"):  # (typer's vendored click keeps Abort in typer.exceptions)
            abort.append(module.Abort)
    return tuple(usage), tuple(abort)


def _usage_line(exc: BaseException) -> str:
    """A click usage error as one line, with the command it was for: `error: --steps: ...`."""
    message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
    ctx = getattr(exc, "ctx", None)
    where = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
    return f"{message}{where}"


def _version(value: bool) -> None:
    if value:
        console.print(f"synth-reward {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Turn a sentence into reward code, vet it, and prove it by training MuJoCo robots."""


def main() -> None:
    """Entry point: route a bare instruction to `run`, map errors to one line and an exit code."""
    argv = sys.argv[1:]
    commands = {c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands}
    if argv and not argv[0].startswith("-") and argv[0] not in commands and "run" in commands:
        argv = ["run", *argv]
    usage_errors, aborts = _click_types()
    try:
        code = app(args=argv, standalone_mode=False, prog_name="synth-reward")
        sys.exit(code if isinstance(code, int) else 0)
    except SynthRewardError as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
    except usage_errors as exc:
        err_console.print(f"[bold red]error:[/] {escape(_usage_line(exc))}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except aborts:
        err_console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
