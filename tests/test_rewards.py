"""Gymnasium's rewards rewritten over the State API equal Gymnasium's own, step by step."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from synth_reward.envs import BatchedEnv, get_morphology, list_morphologies
from synth_reward.envs.rewards import gymnasium_reward
from synth_reward.envs.success import termination_rule


@pytest.mark.parametrize("name", [m.name for m in list_morphologies()])
def test_reward_and_termination_match_gymnasium(name: str) -> None:
    morph = get_morphology(name)
    genv = gym.make(morph.gym_id).unwrapped
    genv.reset(seed=5)
    rule = "unhealthy" if morph.healthy else "none"
    env = BatchedEnv(
        name,
        1,
        dtype=torch.float64,
        episode_length=10**6,
        reward_fn=gymnasium_reward(name),
        termination_fn=termination_rule(rule, morph),
    )
    env.set_state(genv.data.qpos[None], genv.data.qvel[None])
    rng = np.random.default_rng(1)
    for _ in range(200):
        action = rng.uniform(-1, 1, env.num_actions)
        _, greward, gterminated, _, ginfo = genv.step(action)
        out = env.step(torch.tensor(action[None]))
        assert float(out.reward[0]) == pytest.approx(greward, abs=1e-9)
        assert float(sum(out.terms.values())[0]) == pytest.approx(float(out.reward[0]), abs=1e-12)
        assert float(out.terms["forward"][0]) == pytest.approx(ginfo["reward_forward"], abs=1e-9)
        assert bool(out.terminated[0]) == gterminated
        if gterminated:
            break


def test_backward_reward_flips_forward_term() -> None:
    fwd, back = gymnasium_reward("half_cheetah", 1.0), gymnasium_reward("half_cheetah", -1.0)
    env = BatchedEnv("half_cheetah", 2, seed=0)
    state = env.step(torch.ones(2, 6)).state
    action = torch.ones(2, 6)
    assert torch.allclose(fwd(state, action)[1]["forward"], -back(state, action)[1]["forward"])
