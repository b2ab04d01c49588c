"""The `synth-reward` command line: thin commands that delegate to library functions.

Every `SynthRewardError` is caught here and printed as one line; usage errors exit 2.
`synth-reward "make the humanoid kneel"` is shorthand for `synth-reward run "..."`.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from synth_reward import __version__
from synth_reward.errors import SynthRewardError
from synth_reward.output import Column, make_console, print_records

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Turn a sentence into reward code, vet it, and prove it by training MuJoCo robots.",
    pretty_exceptions_enable=False,
)
# not wrapped at 80 columns when piped (see synth_reward/output.py)
console = make_console()
err_console = make_console(stderr=True)


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
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the list as a JSON array (for scripts; with no NAME).")
    ] = False,
) -> None:
    """List the morphologies, or print one morphology's State description (what reward code can read).

    The list is a table on a terminal, tab-separated lines with a header when piped (so `grep` sees whole
    rows), or JSON with --json."""
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
    records = []
    for morph in list_morphologies():
        layout = morph.layout()
        records.append(
            {
                "morphology": morph.name,
                "bodies": len(layout.body_names),
                "joints": len(layout.joint_names),
                "actuators": layout.num_actions,
                "obs": morph.obs_size(),
                "dt_s": morph.dt,
                "source": morph.source,
            }
        )
    columns: list[Column | str] = [
        "morphology",
        "bodies",
        "joints",
        "actuators",
        "obs",
        Column("dt_s", "dt (s)"),
        "source",
    ]
    print_records(console, records, columns, json_output=json_output, cells={"dt_s": lambda dt: f"{dt:.3f}"})
    if steps > 0:
        _demo_steps(steps, err_console if json_output else console)  # stdout stays pure JSON


def _demo_steps(steps: int, out: Console) -> None:
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
        out.print(f"{morph.name:>13}: stepped 8 envs x {steps} steps, {rate:,.0f} env-steps/s")
        env.close()


@app.command("tasks")
def tasks_command(
    suite: Annotated[str | None, typer.Option(help="Only this suite (name or path to a suite file).")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the tasks as a JSON array (for scripts).")] = False,
) -> None:
    """List the task suites and their tasks: the built-in ones, then the files in SYNTH_REWARD_SUITES.

    One table per suite on a terminal; piped, one tab-separated line per task (suite first) under a single
    header, so `synth-reward tasks | grep kneel` gives whole rows; --json for scripts."""
    from synth_reward.envs import list_suites, load_suite
    from synth_reward.envs.tasks import user_suite_files

    names = [*list_suites(), *map(str, user_suite_files())]
    suites = [load_suite(suite)] if suite else [load_suite(name) for name in names]
    records = [
        {
            "suite": s.name,
            "task": task.id,
            "morphology": task.morphology,
            "steps": task.episode_length,
            "termination": task.termination,
            "human_reward": task.human_reward,
            "instruction": task.instruction,
        }
        for s in suites
        for task in s.tasks
    ]
    columns: list[Column | str] = [
        Column("task", no_wrap=True),
        "morphology",
        "steps",
        "termination",
        Column("human_reward", "human reward"),
        Column("instruction", ratio=1),
    ]
    print_records(
        console,
        records,
        columns,
        json_output=json_output,
        group_by="suite",
        group_titles={s.name: f"suite {s.name}: {s.description}" for s in suites},
    )


from synth_reward.agent.cli import resume_command, run_command, show_command  # noqa: E402
from synth_reward.sandbox.cli import check_command  # noqa: E402 (kept next to the other commands)

app.command("check")(check_command)
app.command("run")(run_command)
app.command("resume")(resume_command)
app.command("show")(show_command)

from synth_reward.agent.feedback_cli import feedback_command, report_command  # noqa: E402
from synth_reward.web.cli import review_command  # noqa: E402 (the review page: imports starlette only when run)

app.command("feedback")(feedback_command)
app.command("review")(review_command)
app.command("report")(report_command)

from synth_reward.train.cli import analyze_command, eval_command, train_command  # noqa: E402

app.command("train")(train_command)
app.command("eval")(eval_command)
app.command("analyze")(analyze_command)

from synth_reward.batch.cli import batch_command  # noqa: E402

app.command("batch")(batch_command)


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


_KEY_SUFFIXES = ("_API_KEY", "_AUTH_TOKEN", "_API_BASE", "_API_VERSION", "_KEY")


def _prepare_environment() -> None:
    """The only place synth-reward changes os.environ, once, before any command runs.

    - LITELLM_LOCAL_MODEL_COST_MAP: litellm reads its bundled price table instead of fetching
      one over the network at import (seconds, and no network in a sandboxed child).
    - An API-key variable that is set but empty is no key (litellm would count it as one), so
      it is dropped: `OPENAI_API_KEY= synth-reward ...` falls back to the offline designer.
    - SYNTH_REWARD_SUITES: its suite files are registered with the task table (envs/tasks.py),
      which never reads the environment itself.
    """
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    for key in [k for k, v in os.environ.items() if k.endswith(_KEY_SUFFIXES) and not v.strip()]:
        del os.environ[key]
    suites = [p for p in os.environ.get("SYNTH_REWARD_SUITES", "").split(os.pathsep) if p]
    if suites:  # (envs/tasks.py imports torch and MuJoCo: only when there is something to register)
        from synth_reward.envs.tasks import add_suite_files

        add_suite_files(suites)


def main() -> None:
    """Entry point: route a bare instruction to `run`, map errors to one line and an exit code."""
    _prepare_environment()
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
