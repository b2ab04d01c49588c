"""The early-ending rule (train/early_end.py) on scripted states, and its effect inside TrainEnv."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from synth_reward.envs.tasks import get_task
from synth_reward.train.early_end import EarlyEnd
from synth_reward.train.vecenv import TrainEnv


def two_conditions(state):  # noqa: ANN001, ANN201 - a check in the contract's own style
    up = state.up > 0.8
    low = state.height < 0.5
    return up & low


class Scripted:
    """A stand-in State: per-env `up` and `height` values and the episode step, as the check reads them."""

    def __init__(self, step: list[int], up: list[float], height: list[float]) -> None:
        self.step = torch.tensor(step)
        self.up = torch.tensor(up)
        self.height = torch.tensor(height)
        self.device = torch.device("cpu")


def rule(rule: str = "half", length: int = 20, patience_steps: int = 3) -> EarlyEnd:
    task = SimpleNamespace(success_fn=lambda: two_conditions, episode_length=length, success_rule=rule)
    return EarlyEnd(task, 2, patience_s=patience_steps * 0.1, dt=0.1)  # type: ignore[arg-type]


def test_splits_the_check_into_its_conditions() -> None:
    end = rule()
    assert end.labels == ["state.up > 0.8", "state.height < 0.5"] and end.patience == 3


def test_lost_condition_ends_after_patience_steps() -> None:
    end = rule()
    # env 0 stays upright; env 1 is upright through the opening (3 steps) and then falls
    script = [(1.0, 1.0), (1.0, 1.0), (1.0, 1.0), (1.0, 0.1), (1.0, 0.1), (1.0, 0.1)]
    done = []
    for t, (up0, up1) in enumerate(script, start=1):
        done.append(end(Scripted([t, t], [up0, up1], [1.0, 1.0])).tolist())
    assert done[:5] == [[False, False]] * 5
    assert done[5] == [False, True]  # the third failing step in a row
    assert end.ended == {"lost": 1, "out_of_reach": 0} and end.ended_now.tolist() == [False, True]


def test_a_condition_that_only_the_opening_held_is_not_kept() -> None:
    end = rule()
    # upright on step 1 only (the ant's feet in the air at reset): never "held at the start", never ends it
    ups = [1.0, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]
    assert not any(end(Scripted([t, t], [u, u], [1.0, 1.0])).any() for t, u in enumerate(ups, start=1))


def test_conditions_to_reach_never_end_an_episode() -> None:
    end = rule(length=1000)
    # `height < 0.5` never held: failing it for many steps ends nothing (that is what the policy must reach)
    assert not any(end(Scripted([t, t], [1.0, 1.0], [1.0, 1.0])).any() for t in range(1, 50))


def test_out_of_reach_under_the_half_rule() -> None:
    end = rule(length=10)
    # the whole check fails every step: after more than 5 failed steps of 10 the episode cannot succeed
    done = [end(Scripted([t, t], [1.0, 1.0], [1.0, 1.0])).tolist() for t in range(1, 7)]
    assert done[4] == [False, False] and done[5] == [True, True]
    assert end.ended["out_of_reach"] == 2
    # any_step tasks (flips) are never out of reach before their time limit
    flips = rule(rule="any_step", length=10)
    assert not any(flips(Scripted([t, t], [1.0, 1.0], [1.0, 1.0])).any() for t in range(1, 10))


def test_counters_restart_with_each_episode() -> None:
    end = rule()
    for t in range(1, 5):  # env 1 falls after the opening
        end(Scripted([t, t], [1.0, 1.0 if t <= 3 else 0.1], [1.0, 1.0]))
    # env 1's episode restarts (step 1): its counters start again, so two failing steps do not end it
    for t, up in ((1, 1.0), (2, 1.0), (3, 1.0), (4, 0.1), (5, 0.1)):
        assert not end(Scripted([t + 4, t], [1.0, up], [1.0, 1.0]))[1]


def test_train_env_ends_falls_early_and_judges_them_over_the_full_length() -> None:
    task = get_task("humanoid/kneel")
    reward = lambda state, action: (torch.zeros(state.num_envs), {})  # noqa: E731
    env = TrainEnv(task, reward, 8, seed=0, early_end_s=0.5)
    full = TrainEnv(task, reward, 8, seed=0)
    try:
        for _ in range(150):  # a humanoid with zero torques falls within about a second
            env.step(torch.zeros(8, env.num_actions))
            full.step(torch.zeros(8, full.num_actions))
        log = env.drain()
        assert log.lengths and max(log.lengths) < 150 and set(log.end_reason) == {"terminated"}
        assert env.early_end is not None and env.early_end.ended["lost"] == len(log.lengths)
        assert full.drain().lengths == []  # without the rule nothing ends before the 400-step limit
        assert all(
            f <= length / task.episode_length for f, length in zip(log.success_fraction, log.lengths, strict=True)
        )
    finally:
        env.close()
        full.close()
    # training on the task's human reward keeps its MDP: no early ending
    gym = TrainEnv(get_task("gym/Hopper-v5"), None, 2, seed=0, early_end_s=0.5)
    assert gym.early_end is None
    gym.close()
