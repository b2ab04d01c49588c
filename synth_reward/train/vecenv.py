"""The rsl_rl VecEnv over a BatchedEnv: reward injection and per-episode accounting.

Reward injection: the vetted `compute_reward(state, action)` is called exactly once per
step, on the batched post-step State, by the BatchedEnv. `RewardGuard` wraps it so
that an exception, a wrong shape or a non-finite value (in the total or any named
component) raises `RewardFault` with a reason a person can act on, instead of feeding
NaN into PPO. The total trains the policy; every named component is summed per
episode by the BatchedEnv and handed to the trainer, with the task's success fraction,
the episode's end reason and, where the task has one, the human reward's return.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from rsl_rl.env import VecEnv
from tensordict import TensorDict

from synth_reward.envs.batched import BatchedEnv, RewardFn, StepResult
from synth_reward.envs.morphology import get_morphology
from synth_reward.envs.state import State
from synth_reward.envs.tasks import Task
from synth_reward.errors import SynthRewardError
from synth_reward.train.early_end import EarlyEnd

END_REASONS = ("time_limit", "terminated", "unstable")
"""Why an episode ended: its time limit, the task's termination rule (a fall), a physics blow-up."""


class RewardFault(SynthRewardError):
    """The reward function raised, returned a wrong shape, or returned a non-finite value."""

    exit_code = 1

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@contextlib.contextmanager
def call_deadline(seconds: float | None) -> Iterator[None]:
    """Raise RewardFault if the body runs longer than `seconds` (main thread on POSIX only; else no limit)."""
    if not seconds or threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGALRM"):
        yield
        return

    def on_alarm(signum: int, frame: object) -> None:
        raise RewardFault(f"reward call took longer than {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class RewardGuard:
    """Calls a reward function on the batched State and checks what comes back.

    Also computes the task's human reward on the same State (when it has one and it is
    not the training reward itself) and keeps its running per-env episode sum.
    """

    def __init__(self, reward_fn: RewardFn, human_fn: RewardFn | None, num_envs: int) -> None:
        self.reward_fn, self.human_fn = reward_fn, human_fn
        self.calls = 0
        self.timeout_s: float | None = None
        """wall seconds one reward call may take before it is stopped (main thread, POSIX)."""
        self.human_sum = torch.zeros(num_envs, dtype=torch.float64)

    def __call__(self, state: State, action: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        self.calls += 1
        n = state.num_envs
        try:
            with call_deadline(self.timeout_s):
                out = self.reward_fn(state, action)
        except RewardFault:
            raise
        except Exception as exc:  # noqa: BLE001 - any error in generated code stops this candidate
            raise RewardFault(f"reward raised {type(exc).__name__} at step {self.calls}: {exc}") from exc
        if not (isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], dict)):
            raise RewardFault(
                f"reward must return (reward[N], {{name: tensor[N]}}), got {type(out).__name__} at step {self.calls}"
            )
        reward, terms = out
        if not isinstance(reward, torch.Tensor) or reward.shape != (n,):
            shape = tuple(reward.shape) if isinstance(reward, torch.Tensor) else type(reward).__name__
            raise RewardFault(f"reward total must be a tensor of shape ({n},), got {shape} at step {self.calls}")
        for name, value in terms.items():
            if not isinstance(value, torch.Tensor) or value.shape != (n,):
                raise RewardFault(f"reward component {name!r} must be a tensor of shape ({n},) at step {self.calls}")
        # One reduction finds any NaN or inf (a sum with one is non-finite); the precise checks
        # below run only then. Checking each tensor element-wise costs more than many rewards.
        try:
            finite = bool(torch.isfinite(torch.stack([reward, *terms.values()]).sum(dim=1)).all())
        except (RuntimeError, TypeError):  # mixed devices or dtypes: check one by one
            finite = False
        if not finite:
            self._check_finite(reward, terms)
        if self.human_fn is not None:
            human, _ = self.human_fn(state, action)
            self.human_sum += human.detach().to("cpu", torch.float64)
        return reward, terms

    def _check_finite(self, reward: torch.Tensor, terms: dict[str, torch.Tensor]) -> None:
        """Raise RewardFault naming what is NaN or infinite (a finite sum that overflowed passes)."""
        n = reward.shape[0]
        bad = ~torch.isfinite(reward)
        if bool(bad.any()):
            culprits = [k for k, v in terms.items() if not bool(torch.isfinite(v).all())]
            what = "NaN" if bool(torch.isnan(reward).any()) else "infinite"
            hint = f" (non-finite components: {', '.join(culprits)})" if culprits else ""
            raise RewardFault(f"reward total is {what} in {int(bad.sum())} of {n} envs at step {self.calls}{hint}")
        for name, value in terms.items():
            if not bool(torch.isfinite(value).all()):
                raise RewardFault(f"reward component {name!r} is not finite at step {self.calls}")


def zero_reward(state: State, action: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Reward 0 with no components (rollouts of a task that has no human reward)."""
    return torch.zeros(state.num_envs, device=state.device), {}


@dataclass
class EpisodeLog:
    """Finished episodes since the last `drain()`, as flat lists (one entry per episode)."""

    returns: list[float] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    success_fraction: list[float] = field(default_factory=list)
    success: list[bool] = field(default_factory=list)
    end_reason: list[str] = field(default_factory=list)
    human_returns: list[float] = field(default_factory=list)
    components: dict[str, list[float]] = field(default_factory=dict)
    """Per component: the episode's sum of that component."""

    def __len__(self) -> int:
        return len(self.returns)


class RewardNormalizer:
    """Scales rewards by the running std of the discounted return, as SB3's VecNormalize does.

    rsl_rl has none; with returns in the hundreds (half cheetah's) its critic, moving by
    gradient-norm-clipped steps, lags the returns. On half_cheetah at 100k steps it raised
    the return from 2,160 to 2,811 (docs/benchmarks.md, "Learning quality"). Only what PPO sees is scaled:
    episode returns and components are recorded unscaled.
    """

    def __init__(self, num_envs: int, gamma: float, clip: float = 10.0, epsilon: float = 1e-8) -> None:
        self.gamma, self.clip, self.epsilon = gamma, clip, epsilon
        self.ret = torch.zeros(num_envs, dtype=torch.float64)
        self.mean, self.var, self.count = 0.0, 1.0, 1e-4  # as SB3's RunningMeanStd

    def __call__(self, reward: torch.Tensor, dones: torch.Tensor) -> torch.Tensor:
        self.ret = self.ret * self.gamma + reward.to("cpu", torch.float64)
        b_mean, b_var, b_count = float(self.ret.mean()), float(self.ret.var(unbiased=False)), self.ret.numel()
        delta, total = b_mean - self.mean, self.count + b_count  # Chan et al.'s parallel variance update
        self.mean += delta * b_count / total
        self.var = (self.var * self.count + b_var * b_count + delta**2 * self.count * b_count / total) / total
        self.count = total
        self.ret[dones.cpu()] = 0.0
        scaled = reward / math.sqrt(self.var + self.epsilon)
        return scaled.clamp(-self.clip, self.clip)

    def state_dict(self) -> dict[str, float]:
        return {"mean": self.mean, "var": self.var, "count": self.count}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.mean, self.var, self.count = float(state["mean"]), float(state["var"]), float(state["count"])


class TrainEnv(VecEnv):  # type: ignore[misc]  # rsl_rl has no type information
    """rsl_rl 5.5's VecEnv over a task's BatchedEnv with an injected, guarded reward.

    Policy actions are mapped to the actuators' ctrl range (when `action_scaling`) and
    clipped; the reward and the recorded actions see the clipped ctrl values.
    """

    def __init__(
        self,
        task: Task,
        reward_fn: RewardFn | None,
        num_envs: int,
        *,
        seed: int | None = None,
        num_threads: int | None = None,
        backend: str = "cpu",
        device: str = "cpu",
        action_scaling: bool = True,
        track_human: bool = True,
        reward_normalizer: RewardNormalizer | None = None,
        early_end_s: float | None = None,
    ) -> None:
        human = task.human_reward_fn() if track_human else None
        self.task = task
        if reward_fn is None:  # train on the task's human reward (or, without one, a zero reward)
            self.guard = RewardGuard(human or zero_reward, None, num_envs)
        else:
            self.guard = RewardGuard(reward_fn, human, num_envs)
        self.has_human = human is not None
        self.early_end: EarlyEnd | None = None
        if early_end_s is not None and reward_fn is not None:
            # training on a designed reward only (train/early_end.py); the task's own human reward keeps its
            # Gymnasium MDP unchanged, so the learning-quality comparison with SB3 is the one it always was
            dt = get_morphology(task.morphology).dt
            self.early_end = EarlyEnd(task, num_envs, early_end_s, dt, base=task.termination_fn())
        self.env: BatchedEnv = task.make_env(
            num_envs,
            reward_fn=self.guard,
            seed=seed,
            backend=backend,
            num_threads=num_threads,
            termination_fn=self.early_end,
            device=device if backend == "warp" else None,  # (Warp's device is the networks')
        )
        self.num_envs = num_envs
        self.num_actions = self.env.num_actions
        self.max_episode_length = task.episode_length
        self.device = torch.device(device)
        self.cfg: dict[str, object] = {"task": task.id}
        low, high = self.env.action_low, self.env.action_high
        self._mid = ((high + low) / 2).to(self.env.device)
        self._half = ((high - low) / 2).to(self.env.device)
        self._low, self._high = low.to(self.env.device), high.to(self.env.device)
        self.action_scaling = action_scaling
        self.reward_normalizer = reward_normalizer
        self.log = EpisodeLog()
        self.last: StepResult | None = None
        self._obs = self.env.reset(seed)

    # rsl_rl reads and may write this (random initial episode lengths); ours is the env's own counter
    @property
    def episode_length_buf(self) -> torch.Tensor:
        return self.env.episode_step

    @episode_length_buf.setter
    def episode_length_buf(self, value: torch.Tensor) -> None:
        self.env.episode_step = value

    def to_ctrl(self, actions: torch.Tensor) -> torch.Tensor:
        """(N, A) policy actions -> (N, A) clipped actuator controls."""
        a = actions.to(self.env.device, self.env.dtype)
        if self.action_scaling:
            a = self._mid + a * self._half
        return torch.maximum(torch.minimum(a, self._high), self._low)

    def get_observations(self) -> TensorDict:
        return TensorDict({"policy": self._obs.to(self.device)}, batch_size=[self.num_envs], device=self.device)

    def step(self, actions: torch.Tensor) -> tuple[TensorDict, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        out = self.env.step(self.to_ctrl(actions))
        self.last = out
        self._obs = out.obs
        if out.episodes is not None:
            self._record(out)
        done = out.terminated | out.truncated
        reward = out.reward if self.reward_normalizer is None else self.reward_normalizer(out.reward, done)
        extras = {"time_outs": out.truncated.to(self.device)}
        return self.get_observations(), reward.to(self.device, torch.float32), done.to(self.device), extras

    def _record(self, out: StepResult) -> None:
        ep = out.episodes
        assert ep is not None
        ids = ep.env_ids.cpu()
        log = self.log
        log.returns += ep.returns.tolist()
        log.lengths += ep.lengths.tolist()
        fraction = ep.success_fraction
        if self.early_end is not None:  # ended early: the remaining steps count as failed (train/early_end.py)
            early = self.early_end.ended_now[ids]
            full = ep.success_fraction * ep.lengths.to(fraction.dtype) / self.task.episode_length
            fraction = torch.where(early.to(fraction.device), full, fraction)
        log.success_fraction += fraction.tolist()
        log.success += self.task.episode_success(fraction).tolist()
        for unstable, terminated in zip(ep.unstable.tolist(), ep.terminated.tolist(), strict=True):
            log.end_reason.append("unstable" if unstable else "terminated" if terminated else "time_limit")
        for name, sums in ep.term_sums.items():
            log.components.setdefault(name, []).extend(sums.tolist())
        if self.has_human:
            if self.guard.human_fn is None:  # the training reward is the human reward
                log.human_returns += ep.returns.tolist()
            else:
                log.human_returns += self.guard.human_sum[ids].tolist()
                self.guard.human_sum[ids] = 0

    def state_dict(self) -> dict[str, Any]:
        """The envs mid-episode and every per-env sum beside them (human return, early ending, the reward
        normaliser's discounted return, episodes not yet recorded): a resumed run continues these episodes."""
        return {
            "env": self.env.state_dict(),
            "obs": self._obs.clone(),
            "reward_calls": self.guard.calls,
            "human_sum": self.guard.human_sum.clone(),
            "early_end": self.early_end.state_dict() if self.early_end is not None else None,
            "normalizer_ret": self.reward_normalizer.ret.clone() if self.reward_normalizer is not None else None,
            "log": dataclasses.asdict(self.log),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.env.load_state_dict(state["env"])
        self._obs = state["obs"].clone()
        self.guard.calls = int(state["reward_calls"])
        self.guard.human_sum = state["human_sum"].clone()
        if self.early_end is not None and state["early_end"] is not None:
            self.early_end.load_state_dict(state["early_end"])
        if self.reward_normalizer is not None and state["normalizer_ret"] is not None:
            self.reward_normalizer.ret = state["normalizer_ret"].clone()
        self.log = EpisodeLog(**state["log"])

    def drain(self) -> EpisodeLog:
        """The episodes finished since the last drain; starts a new log."""
        log, self.log = self.log, EpisodeLog()
        return log

    def close(self) -> None:
        self.env.close()
