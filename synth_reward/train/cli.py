"""`synth-reward train`, `eval` and `analyze`: thin commands over synth_reward.train.

Exit codes: 0 done; 1 the reward was rejected or training stopped on a reward fault;
2 bad input (unknown env or task, unreadable reward file, missing or corrupt checkpoint);
130 interrupted (a checkpoint is saved; continue with `train --out DIR --resume`).
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Annotated

import typer

from synth_reward.errors import SynthRewardError, UsageError
from synth_reward.output import make_console

console = make_console()  # not wrapped at 80 columns when piped (synth_reward/output.py)
err_console = make_console(stderr=True)


def _resolve_task(env: str | None, task: str | None) -> str:
    """Task id from --task (checked against --env) or, with --env alone, that morphology's Gymnasium task."""
    from synth_reward.envs.morphology import get_morphology
    from synth_reward.envs.tasks import all_tasks, get_task

    if task is not None:
        t = get_task(task)
        if env is not None and get_morphology(env).name != t.morphology:
            raise UsageError(f"task {task!r} uses morphology {t.morphology!r}, not {env!r}; drop --env")
        return t.id
    if env is None:
        raise UsageError("give --task TASK (see `synth-reward tasks`), or --env MORPHOLOGY for its Gymnasium task")
    morph = get_morphology(env).name
    gym = [t.id for t in all_tasks().values() if t.id.startswith("gym/") and t.morphology == morph]
    if not gym:
        raise UsageError(f"morphology {morph!r} has no Gymnasium task; give --task (see `synth-reward tasks`)")
    return gym[0]


BackendOption = Annotated[
    str | None,
    typer.Option(
        "--backend",
        help="Physics: cpu (native MuJoCo) or warp (MuJoCo Warp, the gpu extra; docs/warp.md). "
        "Default: warp with --device cuda when the extra is installed, else cpu.",
    ),
]
DeviceOption = Annotated[
    str | None,
    typer.Option(
        "--device",
        help="cpu or cuda: the networks' torch device and, with --backend warp, Warp's device "
        "(default: cuda for warp when there is one, else cpu).",
    ),
]


def _default_out(task_id: str) -> Path:
    import datetime

    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"train-{task_id.replace('/', '-')}-{stamp}"


def train_command(
    env: Annotated[str | None, typer.Option("--env", help="Morphology (e.g. humanoid); optional with --task.")] = None,
    task: Annotated[
        str | None, typer.Option("--task", help="Task id (e.g. humanoid/kneel); see `synth-reward tasks`.")
    ] = None,
    task_file: Annotated[
        Path | None,
        typer.Option(
            "--task-file",
            help="The task as JSON (a run's candidate folders hold one: task.json); instead of --task.",
        ),
    ] = None,
    reward: Annotated[
        Path | None,
        typer.Option(
            "--reward",
            help="Python file defining compute_reward(state, action); "
            "vetted in the sandbox first. Omit for the task's human reward.",
        ),
    ] = None,
    sparse: Annotated[
        bool,
        typer.Option("--sparse", help="Train on the sparse baseline: 1 while the task's success check holds, else 0."),
    ] = False,
    steps: Annotated[
        int | None, typer.Option("--steps", min=1, help="Env steps to train (default: per morphology).")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of networks, action noise and resets.")] = 0,
    out: Annotated[Path | None, typer.Option("--out", help="Run folder (default runs/train-<task>-<time>).")] = None,
    num_envs: Annotated[
        int | None, typer.Option("--num-envs", min=1, help="Parallel envs (default: per morphology).")
    ] = None,
    device: DeviceOption = None,
    backend: BackendOption = None,
    stop_at: Annotated[
        float | None, typer.Option("--stop-at", min=0, max=1, help="Stop once training success rate reaches this.")
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the run in --out from its last checkpoint.")
    ] = False,
    vetted: Annotated[
        bool,
        typer.Option(
            "--vetted",
            help="The reward already passed the sandbox (the agent loop): "
            "skip the isolated probe; the static policy still applies.",
        ),
    ] = False,
) -> None:
    """Train a policy with PPO (rsl_rl) on a reward; records, checkpoints and TensorBoard go to --out."""
    from rich.progress import (
        BarColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeRemainingColumn,
    )

    from synth_reward.envs.backend import choose_backend
    from synth_reward.envs.tasks import Task, get_task
    from synth_reward.train.config import default_config
    from synth_reward.train.evaluate import read_manifest
    from synth_reward.train.records import read_task_file, run_task
    from synth_reward.train.reward import SPARSE, load_reward_code, read_reward_file, sparse_reward, vet_and_load_reward
    from synth_reward.train.trainer import Progress as TrainProgress
    from synth_reward.train.trainer import Trainer

    if task_file is not None and (task is not None or env is not None):
        raise UsageError("give --task-file or --task/--env, not both")
    if sparse and reward is not None:
        raise UsageError("give --reward FILE or --sparse, not both")
    physics = {"backend": backend, "device": device}  # as given (None: the run's own, on --resume)
    backend, device = choose_backend(backend, device)  # bad input fails here, before any work
    manifest = None
    t: Task
    if resume:
        if out is None:
            raise UsageError("--resume needs --out DIR (the run to continue)")
        manifest = read_manifest(out)
        if task_file is not None:
            t = read_task_file(task_file)
        elif task is None and env is None:
            t = run_task(manifest)
        else:
            t = get_task(_resolve_task(env, task))
        if t.id != manifest.task_id:
            raise UsageError(f"{out} trained task {manifest.task_id!r}, not {t.id!r}")
        overrides: dict[str, object] = {"total_steps": steps, "stop_success_rate": stop_at}
        if physics["backend"] is not None or physics["device"] is not None:
            overrides |= {"backend": backend, "device": device}
        config = manifest.config.model_copy(update={k: v for k, v in overrides.items() if v is not None})
        sparse = sparse or manifest.reward_source == SPARSE
    else:
        t = read_task_file(task_file) if task_file is not None else get_task(_resolve_task(env, task))
        config = default_config(
            t.morphology,
            total_steps=steps,
            seed=seed,
            num_envs=num_envs,
            device=device,
            backend=backend,
            stop_success_rate=stop_at,
        )
    task_id = t.id
    out = out or _default_out(task_id)
    code: str | None = None
    if reward is not None:
        code = read_reward_file(reward)
    elif manifest is not None and (out / "reward.py").exists():
        code = (out / "reward.py").read_text()
    if code is not None and (vetted or manifest is not None):
        reward_fn = load_reward_code(code)  # static policy + loader; the probe ran before
    elif code is not None:
        console.print(f"vetting {reward} in the sandbox ...", highlight=False)
        reward_fn = vet_and_load_reward(code, t.morphology, config.num_envs)
    elif sparse:
        reward_fn = sparse_reward(t)
    else:
        reward_fn = None
    source = f"file:{reward}" if reward is not None else SPARSE if sparse else None
    trainer = Trainer(t, reward_fn, config, out, reward_code=code, reward_source=source)
    console.print(
        f"training {t.id} for {config.iterations * config.steps_per_iteration:,} env steps "
        f"({config.num_envs} envs) -> {out}",
        highlight=False,
    )
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.completed:,.0f}/{task.total:,.0f} steps"),
        TextColumn("{task.fields[rate]}"),
        TextColumn("success {task.fields[success]}"),
        TimeRemainingColumn(),
    )
    try:
        with Progress(*columns, console=console, transient=False) as bar:
            job = bar.add_task("train", total=config.iterations * config.steps_per_iteration, rate="", success="-")

            def update(p: TrainProgress) -> None:
                success = "-" if p.success_rate is None else f"{p.success_rate:.2f}"
                bar.update(
                    job,
                    completed=p.env_steps,
                    total=p.total_steps,
                    rate=f"{p.steps_per_second:,.0f} steps/s",
                    success=success,
                )

            result = trainer.train(resume=resume, progress=update)
    finally:
        signal.signal(signal.SIGTERM, previous)
        trainer.close()
    best = "-" if result.best_success_rate is None else f"{result.best_success_rate:.2f}"
    console.print(
        f"{result.status}: {result.env_steps:,} env steps in {result.wall_seconds / 60:.1f} min "
        f"({result.steps_per_second:,.0f} steps/s), best success rate {best}",
        highlight=False,
    )
    if result.status == "failed":
        raise SynthRewardError(f"training stopped: {result.reason}")
    if result.status == "interrupted":
        err_console.print(result.reason, highlight=False)
        raise typer.Exit(130)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def eval_command(
    run_dir: Annotated[Path, typer.Argument(help="A training run folder.")],
    episodes: Annotated[int, typer.Option("--episodes", min=1, help="Episodes to roll out.")] = 10,
    video: Annotated[bool, typer.Option("--video", help="Render one MP4 per episode (off-screen).")] = False,
    export_states: Annotated[
        Path | None, typer.Option("--export-states", help="Also write qpos/qvel/actions of every step to this .npz.")
    ] = None,
    checkpoint: Annotated[str, typer.Option("--checkpoint", help="best, last, or a checkpoint path.")] = "best",
    seed: Annotated[
        int, typer.Option("--seed", min=0, help="Seed of the evaluation episodes' initial states.")
    ] = 10_000,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Folder for eval.json, states.npz and videos "
            "(default RUN/eval; another folder leaves RUN/eval as it was).",
        ),
    ] = None,
    backend: BackendOption = None,
    device: DeviceOption = None,
) -> None:
    """Evaluate a checkpoint with the deterministic policy: success rate, state export, videos."""
    from synth_reward.envs.backend import choose_backend
    from synth_reward.train.evaluate import evaluate

    backend, device = choose_backend(backend, device)
    result = evaluate(
        run_dir,
        episodes,
        checkpoint=checkpoint,
        video=video,
        export_states=export_states,
        seed=seed,
        out_dir=out,
        backend=backend,
        device=device,
    )
    human = "" if result.human_return_mean is None else f", human return {result.human_return_mean:.1f}"
    console.print(
        f"{result.episodes} episodes of {Path(result.checkpoint).name} ({result.env_steps:,} steps): "
        f"success rate {result.success_rate:.2f}, return {result.return_mean:.1f}{human}, "
        f"length {result.length_mean:.0f}",
        highlight=False,
    )
    console.print(f"states: {result.states_file}", highlight=False, soft_wrap=True)  # a path stays on one line
    for path in result.videos:
        console.print(f"video: {path}", highlight=False, soft_wrap=True)


def analyze_command(
    run_dir: Annotated[Path, typer.Argument(help="A training run folder (evaluated first if it has no eval).")],
    episodes: Annotated[int, typer.Option("--episodes", min=1, help="Episodes to evaluate when there is no eval.")] = 8,
    json_output: Annotated[bool, typer.Option("--json", help="Print the structured analysis as JSON.")] = False,
    backend: BackendOption = None,
    device: DeviceOption = None,
) -> None:
    """Reward reflection and failure analysis of a run, as compact text (or JSON)."""
    from synth_reward.envs.backend import choose_backend
    from synth_reward.train.analyzer import analyze

    backend, device = choose_backend(backend, device)
    analysis = analyze(run_dir, episodes=episodes, backend=backend, device=device)
    if json_output:
        print(analysis.model_dump_json(indent=2))
    else:
        console.print(analysis.text, markup=False, highlight=False, soft_wrap=True)
