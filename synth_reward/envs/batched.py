"""BatchedEnv: N environments of one morphology stepped together over torch tensors.

This is the one interface everything above the physics uses (trainer, adapters,
sandbox probe). A backend (CPU: native mujoco; GPU: MuJoCo Warp) only moves physics
and hands back raw mjData fields; episodes, resets, observations, rewards and success
checks live here, so they behave the same on every backend.

`step` calls the reward, termination and success functions on the post-step state,
*before* finished environments are reset, then resets them (Gymnasium's "next-step"
autoreset is not used: the returned obs of a finished env is already its next
episode's first obs, and `final_obs` holds the last obs of the finished episode).

Episode bookkeeping (step counters, returns, done masks) runs in numpy on the host, and
so do the observation's gather, clip and finiteness check when the snapshot is on the host:
right after the physics, each of those ops costs 20-45 µs in torch and 4-18 µs in numpy
(docs/benchmarks.md, "The observation in numpy"), against about 1.2 ms of physics for a small robot. The counters,
masks and episode statistics that `step` returns are torch on the env's device, made from
fresh arrays that the env never changes afterwards (on the host with `torch.from_numpy`, as
is the observation); the reward, terms and success are the user functions' own tensors. (A
device backend would pay a copy to the host per reward, success and termination tensor
each step; if that matters there, the bookkeeping can move to the device behind the same
interface.)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import numpy as np
import torch

from synth_reward.envs.backend import PackedFields, PhysicsBackend
from synth_reward.envs.morphology import Morphology, get_morphology
from synth_reward.envs.state import PREV_FIELDS, State

RewardFn = Callable[[State, torch.Tensor], tuple[torch.Tensor, dict[str, torch.Tensor]]]
"""compute_reward(state, action) -> (reward (N,), {name: (N,)})"""
CheckFn = Callable[[State], torch.Tensor]
"""success(state) -> bool (N,); also the type of termination rules."""


class StepResult(NamedTuple):
    obs: torch.Tensor
    """(N, obs_dim) observation after the step; for finished envs, the first obs of the next episode."""
    reward: torch.Tensor
    """(N,) the reward function's total (zeros without a reward function)."""
    terminated: torch.Tensor
    """(N,) bool: the episode ended by the termination rule or a physics blow-up."""
    truncated: torch.Tensor
    """(N,) bool: the episode hit its time limit (and did not terminate)."""
    terms: dict[str, torch.Tensor]
    """Named reward components, (N,) each."""
    success: torch.Tensor
    """(N,) bool: the success check on this step (all False without a check)."""
    final_obs: torch.Tensor
    """(N, obs_dim) observation before any reset (for value bootstrapping at truncation)."""
    state: State
    """The post-step state before any reset (what reward and success were computed on).
    Robots without contact forces in their observation compute them on the state's first
    read of them, which must come before the next step (`state.to(state.device)` keeps a copy)."""
    episodes: EpisodeStats | None
    """Statistics of the episodes that ended on this step, or None if none did."""


class EpisodeStats(NamedTuple):
    """Per finished episode (K of them): returns, lengths, success and term sums."""

    env_ids: torch.Tensor
    """(K,) which envs finished."""
    returns: torch.Tensor
    lengths: torch.Tensor
    success_fraction: torch.Tensor
    """(K,) fraction of the episode's steps on which the success check held."""
    terminated: torch.Tensor
    unstable: torch.Tensor
    """(K,) bool: ended by a physics blow-up."""
    term_sums: dict[str, torch.Tensor]


class BatchedEnv:
    """N environments of one morphology. `reward_fn`, `success_fn`, `termination_fn` are optional."""

    def __init__(
        self,
        morphology: str | Morphology,
        num_envs: int,
        *,
        episode_length: int = 1000,
        reward_fn: RewardFn | None = None,
        success_fn: CheckFn | None = None,
        termination_fn: CheckFn | None = None,
        seed: int | None = None,
        backend: str = "cpu",
        num_threads: int | None = None,
        dtype: torch.dtype = torch.float32,
        device: str | None = None,
        warp_conversion: bool = False,
    ) -> None:
        """backend: "cpu" (native MuJoCo) or "warp" (MuJoCo Warp, on Warp's `device`: "cuda" by default, or
        "cpu"); the CPU backend has no device choice. num_threads: the CPU backend's physics threads.
        warp_conversion: the CPU backend runs the model as the Warp backend converts it (envs/warp_model.py),
        the reference of the Warp backend's parity."""
        self.morphology = get_morphology(morphology)
        self.layout = self.morphology.layout()
        self.num_envs = num_envs
        self.episode_length = episode_length
        self.reward_fn, self.success_fn, self.termination_fn = reward_fn, success_fn, termination_fn
        self.dtype = dtype
        model = self.morphology.model()
        self.backend: PhysicsBackend
        if backend == "cpu":
            from synth_reward.envs.cpu import CpuBackend

            # contact forces only on request where the observation does not need them (see cpu.py)
            lazy = "cfrc_ext" not in self.morphology.obs_extras
            if warp_conversion:
                from synth_reward.envs.warp_model import warp_model

                model = warp_model(self.morphology).model
            self.backend = CpuBackend(model, num_envs, self.morphology.frame_skip, num_threads, lazy)
        elif backend == "warp":
            from synth_reward.envs.warp import WarpBackend
            from synth_reward.envs.warp_model import warp_model

            self.backend = WarpBackend(
                warp_model(self.morphology), num_envs, self.morphology.frame_skip, device or "cuda"
            )
        else:
            from synth_reward.errors import UsageError

            raise UsageError(f"unknown backend {backend!r}; choose one of: cpu, warp")
        self.device = self.backend.device
        self.dt = self.morphology.dt
        self.init_qpos = model.qpos0.copy()
        self.init_qvel = np.zeros(model.nv)
        self.num_actions = model.nu
        self.action_low = torch.tensor(model.actuator_ctrlrange[:, 0], dtype=dtype)
        self.action_high = torch.tensor(model.actuator_ctrlrange[:, 1], dtype=dtype)
        self.num_obs = self.morphology.obs_size()
        self.rng = np.random.default_rng(seed)
        self._on_host = self.device.type == "cpu"
        n = num_envs
        # _steps is replaced by a new array on every step and reset, never changed in place:
        # each State holds the one of its own step.
        self._steps = np.zeros(n, dtype=np.int64)
        self._episodes = np.zeros(n, dtype=np.int64)
        self._return = np.zeros(n)
        self._success_steps = np.zeros(n, dtype=np.int64)
        self._term_sums: dict[str, np.ndarray] = {}
        # The current physics as a snapshot in self.dtype (one copy per step, shared by the
        # State, the observation and the next step's prev_* fields), and the prev_* fields.
        self._snap: PackedFields = self.backend.snapshot(dtype)
        self._prev: Mapping[str, torch.Tensor] = self._snap
        self._obs_columns, self._obs_clip = self._observation_columns(self._snap)
        self._obs_columns_host = self._obs_columns.numpy(force=True)
        self._obs_clip_host = None if self._obs_clip is None else tuple(b.numpy(force=True) for b in self._obs_clip)
        self._host_dtype = torch.empty(0, dtype=dtype).numpy().dtype if self._on_host else None
        self.reset()

    # ---- episode counters --------------------------------------------------------------
    @property
    def episode_step(self) -> torch.Tensor:
        """(N,) int64: control steps into each env's current episode (a copy; assign to change them)."""
        return self._tensor(self._steps.copy())

    @episode_step.setter
    def episode_step(self, value: torch.Tensor | int) -> None:
        """Set the counters, one per env or one for all (rsl_rl starts from random episode lengths)."""
        steps = _host(torch.as_tensor(value)).astype(np.int64)
        self._steps = np.broadcast_to(steps, (self.num_envs,)).copy()  # (raises on a wrong length)

    @property
    def episode_count(self) -> torch.Tensor:
        """(N,) int64: episodes each env has finished."""
        return self._tensor(self._episodes.copy())

    def _zeros(self, host_dtype: np.dtype | type | None, dtype: torch.dtype) -> torch.Tensor:
        """(N,) zeros, made by numpy on the host (cheaper there right after the physics)."""
        if self._on_host:
            return torch.from_numpy(np.zeros(self.num_envs, host_dtype))
        return torch.zeros(self.num_envs, dtype=dtype, device=self.device)

    def _tensor(self, a: np.ndarray) -> torch.Tensor:
        """A host array as a tensor on the env's device (on the CPU, sharing its memory)."""
        t = torch.from_numpy(a)
        return t if self._on_host else t.to(self.device)

    # ---- resets ------------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> torch.Tensor:
        """Reset every env (new episode, Gymnasium's reset noise); returns the observation."""
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.reset_envs(torch.ones(self.num_envs, dtype=torch.bool))
        return self.observe()

    def reset_envs(self, mask: torch.Tensor) -> None:
        """Reset the envs where mask (N,) is True; the others are untouched."""
        self._reset(np.flatnonzero(_host(mask)))

    def _reset(self, ids: np.ndarray) -> None:
        """Reset envs `ids` with Gymnasium's reset noise."""
        if len(ids) == 0:
            return
        scale, m = self.morphology.reset_noise_scale, len(ids)
        qpos = self.init_qpos + self.rng.uniform(-scale, scale, size=(m, self.layout.nq))
        if self.morphology.reset_qvel_noise == "normal":
            qvel = self.init_qvel + scale * self.rng.standard_normal((m, self.layout.nv))
        else:
            qvel = self.init_qvel + self.rng.uniform(-scale, scale, size=(m, self.layout.nv))
        self.set_state(qpos, qvel, ids)

    # ---- checkpoints ---------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The envs mid-episode: physics, the current and previous snapshots, episode counters, the reset RNG.

        With it a training run resumed from a checkpoint continues the very episodes it left, and takes
        the same steps an uninterrupted run would have taken."""
        if "cfrc_ext" in self._snap.spec:
            with torch.inference_mode():  # (the snapshot was made in the rollout's inference mode)
                self._snap["cfrc_ext"]  # a lazy field is filled now, from the physics it belongs to
        return {
            "backend": self.backend.state_dict(),
            "snap": self._snap.packed.clone(),
            "prev": {k: self._prev[k].clone() for k in PREV_FIELDS},
            "steps": torch.from_numpy(self._steps.copy()),  # (tensors: checkpoints load with weights_only)
            "episodes": torch.from_numpy(self._episodes.copy()),
            "return": torch.from_numpy(self._return.copy()),
            "success_steps": torch.from_numpy(self._success_steps.copy()),
            "term_sums": {k: torch.from_numpy(v.copy()) for k, v in self._term_sums.items()},
            "rng": self.rng.bit_generator.state,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore `state_dict()` into envs of the same morphology and number."""
        self.backend.load_state_dict(state["backend"])
        packed = state["snap"].to(self.device)
        spec = self._snap.spec
        self._snap = PackedFields(packed, spec, host=packed.numpy() if self._on_host else None)
        self._prev = {k: v.to(self.device) for k, v in state["prev"].items()}
        self._steps = state["steps"].numpy().copy()
        self._episodes = state["episodes"].numpy().copy()
        self._return = state["return"].numpy().copy()
        self._success_steps = state["success_steps"].numpy().copy()
        self._term_sums = {k: v.numpy().copy() for k, v in state["term_sums"].items()}
        self.rng.bit_generator.state = state["rng"]

    def set_state(self, qpos: np.ndarray, qvel: np.ndarray, env_ids: np.ndarray | None = None) -> None:
        """Start new episodes in env_ids (default: all) from exactly these qpos/qvel (no noise)."""
        ids = np.arange(self.num_envs) if env_ids is None else np.asarray(env_ids)
        self.backend.set_state(ids, np.atleast_2d(qpos), np.atleast_2d(qvel))
        t = torch.as_tensor(ids, device=self.device)
        prev, self._snap = self._prev, self.backend.snapshot(self.dtype)
        if len(ids) == self.num_envs:
            self._prev = self._snap
        else:  # a new episode starts with prev = now; the others keep theirs (copied: snapshots are shared)
            self._prev = {k: prev[k].clone() for k in PREV_FIELDS}
            for k, v in self._prev.items():
                v[t] = self._snap[k][t]
        steps = self._steps.copy()  # a new array: the last State holds the old one
        steps[ids] = 0
        self._steps = steps
        self._return[ids] = 0
        self._success_steps[ids] = 0
        for sums in self._term_sums.values():
            sums[ids] = 0

    # ---- reading -----------------------------------------------------------------------
    @property
    def state(self) -> State:
        """A snapshot State of the current physics (every field filled now, so it can be kept)."""
        self._snap.fill_pending()
        return self._state()

    def _state(self) -> State:
        """The State of the current snapshot; pending fields fill on first read, before the next step or reset."""
        return State(self.layout, self._snap, self._tensor(self._steps), self._prev, self.dt, self.dtype, copy=False)

    def _observation_columns(self, snap: PackedFields) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor] | None]:
        """Which packed columns make the observation, in order, and its clip bounds (None: no clip).

        Gymnasium v5's layout: qpos (minus the skipped root coordinates), qvel, then each extra
        with the world body dropped (qfrc_actuator: the free joint's 6 dofs dropped).
        """
        morph = self.morphology
        columns: list[int] = []
        bounds: list[float] = []

        def add(name: str, skip: int, clip: float | None) -> None:
            cols = snap.columns(name)[skip:]
            columns.extend(cols)
            bounds.extend([clip if clip is not None else float("inf")] * len(cols))

        add("qpos", morph.obs_skip_qpos, None)
        add("qvel", 0, morph.obs_qvel_clip)
        skipped = {"cinert": 10, "cvel": 6, "cfrc_ext": 6, "qfrc_actuator": 6}  # world body's row, or root dofs
        for extra in morph.obs_extras:
            add(extra, skipped[extra], morph.obs_cfrc_clip if extra == "cfrc_ext" else None)
        index = torch.tensor(columns, dtype=torch.int64, device=self.device)
        high = torch.tensor(bounds, dtype=self.dtype, device=self.device)
        return index, ((-high, high) if bool(torch.isfinite(high).any()) else None)

    def observe(self) -> torch.Tensor:
        """(N, obs_dim) the proprioceptive observation (Gymnasium v5's, by default): one gather."""
        return self._observe()[0]

    def _observe(self) -> tuple[torch.Tensor, np.ndarray | None]:
        """The observation, and which envs' observation was not finite before the clip (None: all were).

        A NaN or inf anywhere makes the sum of the whole batch non-finite (summed in float64,
        so that no finite values overflow it): one reduction, and the per-env check runs only
        then. On the host these are numpy ops on the snapshot's array, and one torch op at the
        end. (The observation never reads a pending field: contact forces are left pending only
        for robots whose observation has none.)
        """
        host = self._snap.host
        if host is None:
            obs = self._snap.packed.index_select(1, self._obs_columns)
            nonfinite = None
            if not math.isfinite(float(obs.sum(dtype=torch.float64))):
                nonfinite = _host(~torch.isfinite(obs).all(dim=1))
            if self._obs_clip is not None:
                obs = torch.clamp(obs, *self._obs_clip)
            return obs, nonfinite
        obs_host = host.take(self._obs_columns_host, axis=1)
        nonfinite = None
        with np.errstate(invalid="ignore"):  # (inf - inf in the sum: a NaN, as wanted, not a warning)
            if not math.isfinite(obs_host.sum(dtype=np.float64)):
                nonfinite = ~np.isfinite(obs_host).all(axis=1)
        if self._obs_clip is not None:
            np.clip(obs_host, *self._obs_clip_host, out=obs_host)  # type: ignore[misc]  # set with _obs_clip
        return torch.from_numpy(obs_host), nonfinite

    # ---- stepping ----------------------------------------------------------------------
    def step(self, action: torch.Tensor) -> StepResult:
        """Advance every env one control step (frame_skip physics steps) and autoreset finished ones."""
        if action.shape != (self.num_envs, self.num_actions):
            raise ValueError(f"action must have shape ({self.num_envs}, {self.num_actions}), got {tuple(action.shape)}")
        self._prev = self._snap
        self.backend.step(action)
        self._snap = self.backend.snapshot(self.dtype)
        self._steps = self._steps + 1  # a new array, not in place: the last State holds the old one
        state = self._state()
        obs, nonfinite = self._observe()
        if self.reward_fn is not None:
            reward, terms = self.reward_fn(state, action.to(self.dtype))
        else:
            reward, terms = self._zeros(self._host_dtype, self.dtype), {}
        if self.success_fn is not None:
            success = self.success_fn(state).to(torch.bool)
        else:
            success = self._zeros(np.bool_, torch.bool)
        unstable = self.backend.unstable()
        if nonfinite is not None:  # (a backend that does not reset blown-up envs itself, as MuJoCo does)
            unstable |= nonfinite
        terminated = unstable
        if self.termination_fn is not None:
            terminated = terminated | _host(self.termination_fn(state).to(torch.bool))
        at_limit = self._steps >= self.episode_length
        done = terminated | at_limit
        if self.reward_fn is not None:  # (without one the reward is zero: nothing to add)
            self._return += _host(reward)  # in-place adds cast into the float64 / int64 accumulators
            for name, value in terms.items():
                if name not in self._term_sums:
                    self._term_sums[name] = np.zeros(self.num_envs)
                self._term_sums[name] += _host(value)
        if self.success_fn is not None:
            self._success_steps += _host(success)
        if not done.any():  # (then at_limit is all False: it is `truncated`)
            return StepResult(
                obs, reward, self._tensor(terminated), self._tensor(at_limit), terms, success, obs, state, None
            )
        truncated = at_limit & ~terminated
        ids = np.flatnonzero(done)
        lengths = self._steps[ids]
        episodes = EpisodeStats(
            env_ids=self._tensor(ids),
            returns=self._tensor(self._return[ids]),
            lengths=self._tensor(lengths),
            success_fraction=self._tensor(self._success_steps[ids] / lengths),
            terminated=self._tensor(terminated[ids]),
            unstable=self._tensor(unstable[ids]),
            term_sums={k: self._tensor(v[ids]) for k, v in self._term_sums.items()},
        )
        self._episodes[ids] += 1
        self._reset(ids)
        return StepResult(
            self.observe(),
            reward,
            self._tensor(terminated),
            self._tensor(truncated),
            terms,
            success,
            obs,
            state,
            episodes,
        )

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> BatchedEnv:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _host(t: torch.Tensor) -> np.ndarray:
    """A tensor's values as a host numpy array (a view of a CPU tensor's memory, not a copy)."""
    return (t.float() if t.dtype == torch.bfloat16 else t).numpy(force=True)  # (numpy has no bfloat16)
