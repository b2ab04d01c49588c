"""Typed records the trainer, the evaluator and the analyzer write to a run folder, and atomic I/O.

A training run folder holds:

    run.json             RunManifest: task, reward source, config, versions
    reward.py            the reward code that trained (absent for a task's human reward)
    records.jsonl        one TrainRecord per record point
    result.json          TrainResult once training stops (completed, failed or interrupted)
    checkpoints/last.pt  latest state (resume, evaluate); checkpoints/best.pt: best success rate
    tb/                  TensorBoard scalars
    eval/eval.json       EvalResult; eval/states.npz: every step's qpos, qvel, actions; eval/videos/*.mp4
    analysis.json        Analysis; analysis.txt: its compact text
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from synth_reward.atomic import write_text
from synth_reward.envs.tasks import Task, get_task
from synth_reward.train.config import TrainConfig

MANIFEST = "run.json"
RECORDS = "records.jsonl"
RESULT = "result.json"
REWARD_FILE = "reward.py"
CHECKPOINT_DIR = "checkpoints"
EVAL_DIR = "eval"
ANALYSIS_JSON = "analysis.json"
ANALYSIS_TEXT = "analysis.txt"


class RunManifest(BaseModel):
    """What was trained: enough to rebuild the env, the reward and the networks."""

    task_id: str
    morphology: str
    task: Task | None = None
    """The task itself, so that evaluation and analysis rebuild it without a lookup (a run's own free-form task
    is in no suite). Runs written before 0.3 lack it: `run_task` then looks the id up."""
    reward_source: str
    """`file:<path>` (code copied to reward.py), `code` (given in memory, copied), `sparse` (1 while the task's
    success check holds, else 0: built from the check itself), or `human:<name>`."""
    reward_sha256: str | None = None
    config: TrainConfig
    created: str
    versions: dict[str, str] = Field(default_factory=dict)
    """synth_reward, rsl_rl, torch, mujoco versions."""


class TrainRecord(BaseModel):
    """One record point: statistics of the episodes that finished since the previous one."""

    iteration: int
    """PPO iterations completed."""
    env_steps: int
    """env steps collected so far (all envs)."""
    wall_seconds: float
    """wall time of training so far, s (resumed runs add up)."""
    steps_per_second: float
    """env steps per wall second over this window (collection and update)."""
    episodes: int
    """episodes that finished in this window; the means below are over them (None when 0)."""
    return_mean: float | None = None
    """mean episode return of the training reward."""
    length_mean: float | None = None
    """mean episode length, control steps."""
    success_rate: float | None = None
    """fraction of episodes that succeeded by the task's rule (check held on >= half the steps)."""
    success_fraction_mean: float | None = None
    """mean fraction of steps on which the success check held."""
    components: dict[str, float] = Field(default_factory=dict)
    """per reward component: mean over episodes of the component's episode sum."""
    human_return_mean: float | None = None
    """mean episode return of the task's human reward (Gymnasium's), where it has one."""
    end_reasons: dict[str, float] = Field(default_factory=dict)
    """fraction of episodes that ended by time_limit / terminated (the task's rule, e.g. a fall) / unstable."""
    losses: dict[str, float] = Field(default_factory=dict)
    """PPO losses of the last update (value, surrogate, entropy)."""
    action_std: float | None = None
    """mean std of the Gaussian policy, policy action units."""
    learning_rate: float | None = None


class TrainResult(BaseModel):
    """How a training run ended."""

    status: Literal["completed", "failed", "interrupted"]
    reason: str = ""
    """For failed: what went wrong (a reward fault, NaN); for interrupted: the signal."""
    run_dir: str
    iterations: int
    env_steps: int
    wall_seconds: float
    steps_per_second: float
    """env steps per wall second over the whole run."""
    best_success_rate: float | None = None
    best_iteration: int | None = None
    last: TrainRecord | None = None


def run_task(manifest: RunManifest) -> Task:
    """The task a run trained: the manifest's own copy, else (older runs) the task table's entry for its id."""
    return manifest.task if manifest.task is not None else get_task(manifest.task_id)


def read_task_file(path: str | Path) -> Task:
    """A task written as JSON (`synth-reward train --task-file`), or UsageError in one line."""
    from synth_reward.errors import UsageError

    try:
        return Task.model_validate_json(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read task file {path}: {exc.strerror or type(exc).__name__}") from None
    except ValueError as exc:
        first = str(exc).splitlines()
        raise UsageError(f"task file {path} is not a task: {' '.join(first[:3])[:300]}") from None


def write_model(path: Path, model: BaseModel) -> None:
    write_text(path, model.model_dump_json(indent=2) + "\n")


def write_jsonl(path: Path, models: Sequence[BaseModel]) -> None:
    """Rewrite the whole JSONL file atomically (records are few: about 20 lines per run)."""
    write_text(path, "".join(m.model_dump_json() + "\n" for m in models))


def read_records(run_dir: Path) -> list[TrainRecord]:
    path = Path(run_dir) / RECORDS
    if not path.exists():
        return []
    return [TrainRecord.model_validate(json.loads(line)) for line in path.read_text().splitlines() if line.strip()]
