"""Every built-in success check: holds on a pose where it must, fails on one where it must not."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from synth_reward.envs import BatchedEnv, all_tasks
from synth_reward.envs.poses import pose_qpos, pose_state
from synth_reward.envs.success import CHECKS

POSTURES = [
    # check, morphology, pose where it holds, poses where it must not
    ("humanoid_kneel", "humanoid", "kneeling", ["standing", "sitting", "lying_back"]),
    ("humanoid_sit", "humanoid", "sitting", ["kneeling", "standing", "lying_back"]),
    ("humanoid_lie_back", "humanoid", "lying_back", ["lying_front", "sitting"]),
    ("humanoid_one_leg", "humanoid", "one_leg", ["standing", "kneeling"]),
    ("humanoid_arms_up", "humanoid", "arms_up", ["standing", "one_leg"]),
    ("humanoid_splits", "humanoid", "splits", ["standing", "crouching"]),
    ("humanoid_crouch", "humanoid", "crouching", ["standing", "kneeling", "splits"]),
    ("ant_lie_down", "ant", "lying", ["standing", "one_leg_up"]),
    ("ant_raise_leg", "ant", "one_leg_up", ["standing", "lying"]),
]


@pytest.mark.parametrize(("check", "morph", "good", "bad"), POSTURES, ids=[p[0] for p in POSTURES])
def test_posture_check(check: str, morph: str, good: str, bad: list[str]) -> None:
    fn = CHECKS[check]
    assert fn(pose_state(morph, good, num_envs=2)).tolist() == [True, True]
    for pose in bad:
        assert fn(pose_state(morph, pose, num_envs=2)).tolist() == [False, False], pose


def _after_one_step(morph: str, qpos: np.ndarray, qvel: np.ndarray):
    env = BatchedEnv(morph, 1, episode_length=10)
    env.set_state(qpos[None], qvel[None])
    return env.step(torch.zeros(1, env.num_actions)).state


MOVING = [
    # check, morphology, velocity index, speed that must pass, speed that must not
    ("humanoid_walk_forward", "humanoid", 0, 2.0, 0.0),
    ("humanoid_run_backward", "humanoid", 0, -2.0, 2.0),
    ("ant_forward", "ant", 0, 3.0, 0.0),
    ("hopper_forward", "hopper", 0, 2.5, 0.0),
    ("walker_forward", "walker2d", 0, 2.5, 0.0),
    ("cheetah_forward", "half_cheetah", 0, 4.0, 0.0),
    ("cheetah_backward", "half_cheetah", 0, -4.0, 4.0),
]


@pytest.mark.parametrize(("check", "morph", "index", "fast", "slow"), MOVING, ids=[m[0] for m in MOVING])
def test_locomotion_check(check: str, morph: str, index: int, fast: float, slow: float) -> None:
    standing = {"ant": {"ankle_1": 60, "ankle_2": -60, "ankle_3": -60, "ankle_4": 60}}.get(morph, {})
    qpos = pose_qpos(morph, standing)
    nv = len(BatchedEnv(morph, 1).init_qvel)
    for speed, expected in ((fast, True), (slow, False)):
        qvel = np.zeros(nv)
        qvel[index] = speed
        assert CHECKS[check](_after_one_step(morph, qpos, qvel)).tolist() == [expected], speed


@pytest.mark.parametrize("morph", ["hopper", "half_cheetah"])
def test_flip_checks(morph: str) -> None:
    env = BatchedEnv(morph, 3)
    rooty = env.morphology.model().joint("rooty").qposadr[0]
    qpos = np.tile(env.init_qpos, (3, 1))
    qpos[:, rooty] = [2 * math.pi + 0.1, -2 * math.pi - 0.1, 1.0]
    env.set_state(qpos, np.zeros((3, env.layout.nv)))
    state = env.state
    assert CHECKS["front_flip"](state).tolist() == [True, False, False]
    assert CHECKS["back_flip"](state).tolist() == [False, True, False]
    assert CHECKS["any_flip"](state).tolist() == [True, True, False]


def test_every_builtin_task_check_runs_and_has_words() -> None:
    for task in all_tasks().values():
        state = BatchedEnv(task.morphology, 2).state
        out = task.success_fn()(state)
        assert out.dtype == torch.bool and out.shape == (2,)
        assert len(task.success_text) > 20


def test_episode_success_rules() -> None:
    tasks = all_tasks()
    frac = torch.tensor([0.0, 0.1, 0.5, 0.9])
    assert tasks["humanoid/kneel"].episode_success(frac).tolist() == [False, False, True, True]
    assert tasks["hopper/front_flip"].episode_success(frac).tolist() == [False, True, True, True]
