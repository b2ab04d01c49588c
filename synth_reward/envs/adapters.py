"""Views of a BatchedEnv for the ecosystem: Gymnasium (single and vector) and Stable-Baselines3.

Any reward function of the DESIGN.md contract trains through these, so a user can run
SB3's PPO or SAC on a synthesized reward. The batched env does the physics and
bookkeeping; these classes only convert tensors to numpy and follow each API's rules
(Gymnasium's same-step autoreset with `final_obs`; SB3's `terminal_observation`).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode, VectorEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnv

from synth_reward.envs.batched import BatchedEnv, RewardFn
from synth_reward.envs.tasks import Task


def _spaces(env: BatchedEnv) -> tuple[gym.spaces.Box, gym.spaces.Box]:
    obs = gym.spaces.Box(-np.inf, np.inf, shape=(env.num_obs,), dtype=np.float32)
    act = gym.spaces.Box(
        env.action_low.numpy().astype(np.float32),
        env.action_high.numpy().astype(np.float32),
        dtype=np.float32,
    )
    return obs, act


def _make(task: Task, num_envs: int, reward_fn: RewardFn | None, seed: int | None) -> BatchedEnv:
    return task.make_env(num_envs, reward_fn=reward_fn or task.human_reward_fn(), seed=seed)


class GymEnv(gym.Env):
    """One environment as a `gymnasium.Env` (what Gymnasium's and SB3's `check_env` accept)."""

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, task: Task, reward_fn: RewardFn | None = None) -> None:
        self.task, self._reward_fn = task, reward_fn
        self.env = _make(task, 1, reward_fn, None)
        self.observation_space, self.action_space = _spaces(self.env)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        if seed is not None:
            self.env.rng = np.random.default_rng(seed)
        elif self.env.rng is None:
            self.env.rng = np.random.default_rng()
        return self.env.reset()[0].numpy(), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        out = self.env.step(torch.as_tensor(np.asarray(action, dtype=np.float32)).reshape(1, -1))
        info = {name: float(v[0]) for name, v in out.terms.items()}
        info["success"] = bool(out.success[0])
        return (
            out.final_obs[0].numpy(),
            float(out.reward[0]),
            bool(out.terminated[0]),
            bool(out.truncated[0]),
            info,
        )

    def close(self) -> None:
        self.env.close()


class GymVectorEnv(VectorEnv):
    """N environments as a `gymnasium.vector.VectorEnv` with same-step autoreset."""

    metadata: dict[str, Any] = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(self, task: Task, num_envs: int, reward_fn: RewardFn | None = None, seed: int | None = None) -> None:
        self.env = _make(task, num_envs, reward_fn, seed)
        self.num_envs = num_envs
        self.single_observation_space, self.single_action_space = _spaces(self.env)
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, num_envs)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, num_envs)

    def reset(
        self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        if isinstance(seed, list):
            seed = seed[0]
        return self.env.reset(seed=seed).numpy(), {}

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        out = self.env.step(torch.as_tensor(np.asarray(actions, dtype=np.float32)))
        done = (out.terminated | out.truncated).numpy()
        infos: dict[str, Any] = {name: v.numpy() for name, v in out.terms.items()}
        infos["success"] = out.success.numpy()
        if done.any():
            infos["final_obs"] = np.where(done[:, None], out.final_obs.numpy(), 0).astype(np.float32)
            infos["_final_obs"] = done
        return (
            out.obs.numpy(),
            out.reward.numpy().astype(np.float64),
            out.terminated.numpy(),
            out.truncated.numpy(),
            infos,
        )

    def close_extras(self, **kwargs: Any) -> None:
        self.env.close()


class SB3VecEnv(VecEnv):
    """N environments as a Stable-Baselines3 `VecEnv` (for SB3's PPO, SAC, ...)."""

    def __init__(self, task: Task, num_envs: int, reward_fn: RewardFn | None = None, seed: int | None = None) -> None:
        self.env = _make(task, num_envs, reward_fn, seed)
        obs_space, act_space = _spaces(self.env)
        self.render_mode = None
        super().__init__(num_envs, obs_space, act_space)
        self._actions: np.ndarray | None = None

    def reset(self) -> np.ndarray:
        seed = self._seeds[0] if self._seeds and self._seeds[0] is not None else None
        self._reset_seeds()
        return self.env.reset(seed=seed).numpy()

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions, dtype=np.float32)

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        assert self._actions is not None, "step_async must be called before step_wait"
        out = self.env.step(torch.as_tensor(self._actions))
        done = (out.terminated | out.truncated).numpy()
        infos: list[dict[str, Any]] = [{"success": bool(s)} for s in out.success.numpy()]
        for i in np.flatnonzero(done):
            infos[i]["terminal_observation"] = out.final_obs[i].numpy()
            infos[i]["TimeLimit.truncated"] = bool(out.truncated[i])
        if out.episodes is not None:
            for k, i in enumerate(out.episodes.env_ids.tolist()):
                infos[i]["episode"] = {
                    "r": float(out.episodes.returns[k]),
                    "l": int(out.episodes.lengths[k]),
                }
        return out.obs.numpy(), out.reward.numpy().astype(np.float32), done, infos

    def close(self) -> None:
        self.env.close()

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        return [getattr(self, attr_name)] * len(self._get_indices(indices))  # type: ignore[arg-type]  # a list or range

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        setattr(self, attr_name, value)

    def env_method(self, method_name: str, *args: Any, indices: Any = None, **kwargs: Any) -> list[Any]:
        raise NotImplementedError("a batched env has no per-environment methods")

    def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
        return [False] * len(self._get_indices(indices))  # type: ignore[arg-type]  # a list or range
