"""`synth-reward check FILE --env MORPHOLOGY`: vet a reward or success check by hand.

Exit 0 when accepted (prints the components and the time per call), 1 when rejected
(prints the stage and the reason), 2 for usage errors (unknown morphology or task,
unreadable file). `--json` prints the whole Verdict instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from synth_reward.errors import UsageError
from synth_reward.output import make_console
from synth_reward.sandbox.runner import ProbeRunner

console = make_console()  # not wrapped at 80 columns when piped (synth_reward/output.py)


def check_command(
    file: Annotated[
        Path, typer.Argument(help="Python file (or a saved LLM reply) defining compute_reward or success.")
    ],
    env: Annotated[str | None, typer.Option("--env", help="Morphology the code reads (e.g. humanoid).")] = None,
    task: Annotated[str | None, typer.Option("--task", help="Built-in task id; sets the morphology.")] = None,
    kind: Annotated[
        str, typer.Option(help="What FILE defines: reward, success, or auto (compute_reward if defined, else success).")
    ] = "auto",
    num_envs: Annotated[int, typer.Option(help="Production batch size N to time at (and at 4N).", min=1)] = 64,
    json_output: Annotated[bool, typer.Option("--json", help="Print the verdict as JSON.")] = False,
) -> None:
    """Vet reward or success-check code: static policy, then an isolated probe on real states."""
    runner = ProbeRunner()
    runner.prewarm(env if task is None else None, num_envs)  # the worker warms up while torch imports here
    try:
        _check(runner, file, env, task, kind, num_envs, json_output)
    finally:
        runner.close()


def _check(
    runner: ProbeRunner, file: Path, env: str | None, task: str | None, kind: str, num_envs: int, json_output: bool
) -> None:
    from synth_reward.sandbox.critic import vet_code

    if kind not in ("auto", "reward", "success"):
        raise UsageError(f"--kind must be auto, reward or success, not {kind!r}")
    morphology = _morphology(env, task)
    try:
        code = file.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise UsageError(f"cannot read {file}: {exc.strerror or exc}") from None
    if kind == "auto":
        kind = "success" if "def compute_reward" not in code and "def success" in code else "reward"
    verdict = vet_code(
        code, morphology, kind="success" if kind == "success" else "reward", num_envs=num_envs, runner=runner
    )
    if json_output:
        print(verdict.model_dump_json(indent=2))
    elif verdict.accepted:
        console.print(f"[bold green]accepted[/] {kind} for {morphology} in {verdict.seconds:.2f} s", highlight=False)
        if verdict.components:
            console.print(f"components: {', '.join(verdict.components)}", highlight=False, markup=False)
        console.print(
            f"time per call: {verdict.ms_per_call:.3f} ms at N={num_envs}, "
            f"{verdict.ms_per_call_4x:.3f} ms at N={4 * num_envs}",
            highlight=False,
        )
    else:
        where = f" line {verdict.line}" if verdict.line else ""
        console.print(f"[bold red]rejected[/] at stage [bold]{verdict.stage}[/]{where}", highlight=False)
        console.print(verdict.reason, highlight=False, markup=False, soft_wrap=True)
    if verdict.isolation.missing and not json_output:
        console.print(
            f"isolation missing: {'; '.join(verdict.isolation.missing)}", style="yellow", highlight=False, markup=False
        )
    if not verdict.accepted:
        raise typer.Exit(1)


def _morphology(env: str | None, task: str | None) -> str:
    """The morphology from --env, or from --task's definition; both must agree when both are given."""
    from synth_reward.envs.morphology import get_morphology

    if task is not None:
        from synth_reward.envs.tasks import get_task

        task_morphology = get_task(task).morphology
        if env is not None and get_morphology(env).name != task_morphology:
            raise UsageError(f"task {task!r} uses morphology {task_morphology!r}, not {env!r}; drop --env")
        return task_morphology
    if env is None:
        raise UsageError("give --env MORPHOLOGY (or --task TASK)")
    return get_morphology(env).name
