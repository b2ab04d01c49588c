"""Gymnasium and SB3 views: their own env checkers pass, and SB3 PPO trains on a given reward."""

from __future__ import annotations

import numpy as np
import torch
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3 import PPO
from stable_baselines3.common.env_checker import check_env as sb3_check_env
from stable_baselines3.common.vec_env import VecCheckNan

from synth_reward.envs import get_task
from synth_reward.envs.adapters import GymEnv, GymVectorEnv, SB3VecEnv


def upright_reward(state, action):
    """A user's reward of the DESIGN.md contract: stay tall, little effort."""
    height = state.body("torso").height
    effort = action.square().sum(dim=1)
    return height - 0.01 * effort, {"height": height, "effort": -0.01 * effort}


def test_gymnasium_and_sb3_checkers_pass() -> None:
    for task_id in ("gym/HalfCheetah-v5", "humanoid/kneel"):
        env = GymEnv(get_task(task_id), reward_fn=upright_reward if task_id == "humanoid/kneel" else None)
        gym_check_env(env, skip_render_check=True)
        sb3_check_env(env)
        _, reward, *_ = env.step(env.action_space.sample())
        assert isinstance(reward, float)


def test_vector_env_autoreset_reports_final_obs() -> None:
    task = get_task("hopper/front_flip")
    venv = GymVectorEnv(task, 3, reward_fn=upright_reward, seed=0)
    obs, _ = venv.reset(seed=0)
    assert obs.shape == (3, 11) and venv.observation_space.contains(obs.astype(np.float32))
    seen_final = False
    for _ in range(task.episode_length):
        obs, reward, terminated, truncated, info = venv.step(venv.action_space.sample())
        assert reward.shape == (3,) and "height" in info
        if "final_obs" in info:
            seen_final = True
            assert info["_final_obs"].all() and truncated.all()
    assert seen_final


def test_sb3_ppo_trains_on_a_synthesized_reward() -> None:
    venv = VecCheckNan(
        SB3VecEnv(get_task("humanoid/kneel"), 8, reward_fn=upright_reward, seed=0),
        raise_exception=True,
    )
    model = PPO("MlpPolicy", venv, n_steps=256, batch_size=512, n_epochs=2, seed=0, device="cpu")
    model.learn(4096)
    assert model.num_timesteps >= 4096
    obs = venv.reset()
    action, _ = model.predict(obs, deterministic=True)
    assert action.shape == (8, 17) and np.isfinite(action).all()
    assert torch.isfinite(torch.as_tensor(obs)).all()
