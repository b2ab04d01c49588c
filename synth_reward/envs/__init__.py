"""Environments: morphologies, batched physics, the State API, tasks and suites."""

from synth_reward.envs.batched import BatchedEnv, CheckFn, EpisodeStats, RewardFn, StepResult
from synth_reward.envs.describe import describe_state
from synth_reward.envs.morphology import (
    Layout,
    Morphology,
    get_morphology,
    list_morphologies,
    load_morphologies,
    register_morphology,
)
from synth_reward.envs.state import State

__all__ = [
    "BatchedEnv",
    "CheckFn",
    "EpisodeStats",
    "Layout",
    "Morphology",
    "RewardFn",
    "State",
    "StepResult",
    "describe_state",
    "get_morphology",
    "list_morphologies",
    "load_morphologies",
    "register_morphology",
]

from synth_reward.envs.tasks import Suite, Task, all_tasks, get_task, list_suites, load_suite  # noqa: E402

__all__ += ["Suite", "Task", "all_tasks", "get_task", "list_suites", "load_suite"]
