"""Tasks and suites: what to achieve, and the fixed check that says whether it was.

A Task names a morphology, an instruction, a success check (a built-in one by name, or
code under the same contract as rewards), how an episode's steps turn into success,
the episode length, the termination rule and, where one exists, a human-written reward.
Suites are YAML files (synth_reward/envs/suites/*.yaml) that a user can copy and extend.
"""

from __future__ import annotations

import functools
import inspect
import math
from pathlib import Path
from typing import Any, Literal

import torch
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from synth_reward.envs.batched import BatchedEnv, CheckFn, RewardFn
from synth_reward.envs.morphology import get_morphology
from synth_reward.envs.rewards import HUMAN_REWARDS
from synth_reward.envs.success import CHECKS, termination_rule
from synth_reward.errors import UsageError

SUITE_DIR = Path(__file__).with_name("suites")
SuccessRule = Literal["half_of_steps", "any_step"]


class Task(BaseModel):
    """One task. `success` names a built-in check; `success_code` holds code defining success(state)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    morphology: str
    instruction: str
    success: str | None = None
    success_code: str | None = None
    success_rule: SuccessRule = "half_of_steps"
    """half_of_steps: the check holds on at least half of the episode's steps (VLM-RM's rule); any_step: on one."""
    episode_length: int = Field(1000, ge=1)
    """Control steps per episode."""
    termination: Literal["none", "unhealthy"] = "none"
    human_reward: str | None = None
    """Name of a human-written reward (see envs/rewards.py HUMAN_REWARDS), for the human normalized score."""
    aliases: tuple[str, ...] = ()
    """Other phrasings of the instruction, for matching a sentence to this task."""

    @model_validator(mode="after")
    def _check_fields(self) -> Task:
        get_morphology(self.morphology)
        if (self.success is None) == (self.success_code is None):
            raise ValueError("give exactly one of success (a built-in check name) or success_code")
        if self.success is not None and self.success not in CHECKS:
            raise ValueError(f"unknown built-in success check {self.success!r}; known: {', '.join(CHECKS)}")
        if self.human_reward is not None and self.human_reward not in HUMAN_REWARDS:
            raise ValueError(f"unknown human_reward {self.human_reward!r}; known: {', '.join(HUMAN_REWARDS)}")
        return self

    @property
    def success_text(self) -> str:
        """The success check in words (a built-in check's docstring), for prompts and people."""
        if self.success is not None:
            return inspect.getdoc(CHECKS[self.success]) or self.success
        return "defined by code (see success_code)"

    def success_fn(self) -> CheckFn:
        if self.success is not None:
            return CHECKS[self.success]
        return _compile_success(self.success_code or "")

    def termination_fn(self) -> CheckFn | None:
        return termination_rule(self.termination, get_morphology(self.morphology))

    def human_reward_fn(self) -> RewardFn | None:
        return HUMAN_REWARDS[self.human_reward](get_morphology(self.morphology)) if self.human_reward else None

    def episode_success(self, success_fraction: torch.Tensor) -> torch.Tensor:
        """bool (K,): did each episode succeed, from the fraction of its steps on which the check held."""
        if self.success_rule == "any_step":
            return success_fraction > 0
        return success_fraction >= 0.5

    def make_env(
        self,
        num_envs: int,
        reward_fn: RewardFn | None = None,
        seed: int | None = None,
        backend: str = "cpu",
        termination_fn: CheckFn | None = None,
        **kwargs: Any,
    ) -> BatchedEnv:
        """A BatchedEnv for this task: its morphology, episode length, termination and success check.

        termination_fn: replaces the task's termination rule (training's early ending wraps that rule)."""
        return BatchedEnv(
            self.morphology,
            num_envs,
            episode_length=self.episode_length,
            reward_fn=reward_fn,
            success_fn=self.success_fn(),
            termination_fn=termination_fn if termination_fn is not None else self.termination_fn(),
            seed=seed,
            backend=backend,
            **kwargs,
        )


def _compile_success(code: str) -> CheckFn:
    """Compile a suite's success_code (the user's own file) into its success function."""
    namespace: dict[str, object] = {"torch": torch, "math": math}
    try:
        exec(compile(code, "<success_code>", "exec"), namespace)  # noqa: S102 - the user's own suite file
    except SyntaxError as exc:
        raise UsageError(f"success_code line {exc.lineno}: {exc.msg}") from None
    except Exception as exc:  # NameError, ImportError, ... at the code's top level
        raise UsageError(f"success_code failed to load: {type(exc).__name__}: {exc}".splitlines()[0]) from None
    fn = namespace.get("success")
    if not callable(fn):
        raise UsageError("success_code must define a function success(state) -> bool tensor (N,)")
    return fn


class Suite(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    description: str = ""
    tasks: tuple[Task, ...]


def list_suites() -> list[str]:
    """Names of the built-in suites."""
    return sorted(p.stem for p in SUITE_DIR.glob("*.yaml"))


@functools.cache
def _load_suite_file(path: Path) -> Suite:
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise UsageError(f"cannot read suite file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise UsageError(f"suite file {path}{where} is not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict) or not isinstance(data.get("tasks"), list):
        raise UsageError(f"suite file {path} must be a mapping with a 'tasks' list")
    defaults = data.get("defaults") or {}
    tasks: list[Task] = []
    for index, entry in enumerate(data["tasks"]):
        where = f"suite file {path} line {_task_line(path, index)} (task {index + 1})"
        if not isinstance(entry, dict):
            raise UsageError(f"{where}: a task must be a mapping (id, morphology, instruction, success...)")
        try:
            tasks.append(Task(**{**defaults, **entry}))
        except UsageError as exc:
            raise UsageError(f"{where}: {exc}") from None
        except (ValidationError, TypeError) as exc:
            raise UsageError(f"{where}: {_first_error(exc)}") from None
    try:
        return Suite(name=data.get("name", path.stem), description=data.get("description", ""), tasks=tuple(tasks))
    except (ValidationError, TypeError) as exc:
        raise UsageError(f"suite file {path}: {_first_error(exc)}") from None


def _task_line(path: Path, index: int) -> int | str:
    """The line (1-based) where the suite file's task number `index` starts, for error messages."""
    try:
        root = yaml.compose(path.read_text())
        for key, value in root.value if isinstance(root, yaml.MappingNode) else []:
            if key.value == "tasks" and isinstance(value, yaml.SequenceNode):
                return int(value.value[index].start_mark.line) + 1
    except (OSError, yaml.YAMLError, IndexError):
        pass
    return "?"


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err["loc"])
        return f"{loc + ': ' if loc else ''}{err['msg']}".replace("Value error, ", "")
    return str(exc).splitlines()[0]


def load_suite(name_or_path: str | Path) -> Suite:
    """A built-in suite by name, or a suite file by path."""
    path = Path(name_or_path)
    if path.suffix in {".yaml", ".yml"} or path.exists():
        return _load_suite_file(path.resolve())
    if str(name_or_path) not in list_suites():
        raise UsageError(
            f"unknown suite {name_or_path!r}; choose one of: {', '.join(list_suites())} (or a path to a .yaml file)"
        )
    return _load_suite_file(SUITE_DIR / f"{name_or_path}.yaml")


_USER_SUITES: list[Path] = []
"""Suite files whose tasks join the built-in ones, in the order registered. The command line registers
the files named in SYNTH_REWARD_SUITES once at start (synth_reward/cli.py); lookups never read the
environment."""


def add_suite_files(paths: list[str] | list[Path]) -> None:
    """Register suite files: their tasks join the built-in ones (a later id wins). Each is checked now."""
    for p in paths:
        load_suite(str(p))  # bad files fail here, with one line, not at the first lookup
        if Path(p) not in _USER_SUITES:
            _USER_SUITES.append(Path(p))


def user_suite_files() -> list[Path]:
    """The registered suite files (add_suite_files)."""
    return list(_USER_SUITES)


def all_tasks() -> dict[str, Task]:
    """Every task by id: the built-in suites, then the registered suite files (a later id wins)."""
    suites = [load_suite(name) for name in list_suites()] + [load_suite(str(p)) for p in _USER_SUITES]
    return {t.id: t for suite in suites for t in suite.tasks}


def get_task(task_id: str) -> Task:
    tasks = all_tasks()
    if task_id not in tasks:
        raise UsageError(f"unknown task {task_id!r}; choose one of: {', '.join(tasks)}")
    return tasks[task_id]
