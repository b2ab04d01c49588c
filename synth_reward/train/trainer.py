"""PPO training over a BatchedEnv with rsl_rl 5.5.1's PPO, recording what the policy does.

The loop is rsl_rl's OnPolicyRunner.learn in a fixed order (rollout, returns, update,
record), written out here so that each record point can write the run's JSONL line,
TensorBoard scalars and checkpoints, so that a reward fault stops only this candidate,
and so that the algorithm, networks and storage stay rsl_rl's own (`PPO.construct_algorithm`).

Everything is torch end to end on `config.device`; the CPU backend hands torch views of
MuJoCo's buffers, so the GPU backend plugs in with no change here.

    result = train("humanoid/kneel", reward_fn, default_config("humanoid"), "runs/kneel")
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import io
import math
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from rsl_rl.algorithms import PPO
from rsl_rl.models import MLPModel
from rsl_rl.utils import resolve_class
from tensordict import TensorDict

from synth_reward.atomic import replacing, write_text
from synth_reward.envs.batched import RewardFn
from synth_reward.envs.tasks import Task, get_task
from synth_reward.errors import UsageError
from synth_reward.train.config import TrainConfig
from synth_reward.train.records import (
    CHECKPOINT_DIR,
    MANIFEST,
    RECORDS,
    RESULT,
    REWARD_FILE,
    RunManifest,
    TrainRecord,
    TrainResult,
    read_records,
    write_jsonl,
    write_model,
)
from synth_reward.train.vecenv import (
    END_REASONS,
    EpisodeLog,
    RewardFault,
    RewardNormalizer,
    TrainEnv,
)

CHECKPOINT_FORMAT = "synth-reward-checkpoint/1"


@dataclass(frozen=True)
class Progress:
    """What the trainer reports after every PPO iteration (for a progress bar)."""

    iteration: int
    iterations: int
    env_steps: int
    total_steps: int
    steps_per_second: float
    success_rate: float | None
    return_mean: float | None


ProgressFn = Callable[[Progress], None]


def versions() -> dict[str, str]:
    from importlib.metadata import version

    import mujoco

    import synth_reward

    return {
        "synth_reward": synth_reward.__version__,
        "rsl_rl": version("rsl-rl-lib"),
        "torch": torch.__version__,
        "mujoco": mujoco.__version__,
    }


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """rsl_rl prints its models and observation groups and warns on construction; keep stdout clean."""
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


class Trainer:
    """One training run: env, PPO, run folder. `train()` runs (or resumes) it to the end."""

    def __init__(
        self,
        task: Task | str,
        reward_fn: RewardFn | None,
        config: TrainConfig,
        out_dir: str | Path,
        *,
        reward_code: str | None = None,
        reward_source: str | None = None,
        reward_timeout_s: float = 10.0,
    ) -> None:
        self.task = get_task(task) if isinstance(task, str) else task
        if reward_fn is None and self.task.human_reward is None:
            raise UsageError(f"task {self.task.id!r} has no human reward; give a reward function (--reward FILE)")
        self.config = config
        self.out_dir = Path(out_dir)
        self.reward_code = reward_code
        self.reward_source = reward_source or (
            "code" if reward_code else "function" if reward_fn else f"human:{self.task.human_reward}"
        )
        torch.manual_seed(config.seed)
        if config.torch_threads:
            torch.set_num_threads(config.torch_threads)
        self.env = TrainEnv(
            self.task,
            reward_fn,
            config.num_envs,
            seed=config.seed,
            num_threads=config.num_threads,
            backend=config.backend,
            device=config.device,
            action_scaling=config.action_scaling,
            reward_normalizer=RewardNormalizer(config.num_envs, config.gamma) if config.reward_normalization else None,
            early_end_s=config.early_end_s,
        )
        self.env.guard.timeout_s = reward_timeout_s
        with _quiet():
            self.alg: PPO = PPO.construct_algorithm(
                self.env.get_observations(), self.env, config.rsl_rl_cfg(), config.device
            )
        # rsl_rl builds torch's default (foreach) Adam; the fused kernel is the same update in one pass over the
        # parameters: 1.5 ms -> 0.6 ms per step for humanoid's networks here, 18 ms of an iteration's 20 steps.
        params = [p for group in self.alg.optimizer.param_groups for p in group["params"]]
        self.alg.optimizer = torch.optim.Adam(params, lr=self.alg.learning_rate, fused=True)
        self.iteration = 0
        self.env_steps = 0
        self.wall_seconds = 0.0
        self.best: tuple[float, float] | None = None
        self.best_iteration: int | None = None
        self.records: list[TrainRecord] = []

    # ---- checkpoints ------------------------------------------------------------------------
    @property
    def checkpoint_dir(self) -> Path:
        return self.out_dir / CHECKPOINT_DIR

    def checkpoint(self) -> dict[str, Any]:
        """Everything needed to resume: networks (with the obs normaliser), optimizer, counters, RNGs."""
        return {
            "format": CHECKPOINT_FORMAT,
            "task_id": self.task.id,
            "config": self.config.model_dump(mode="json"),
            "iteration": self.iteration,
            "env_steps": self.env_steps,
            "wall_seconds": self.wall_seconds,
            "best": list(self.best) if self.best is not None else None,
            "best_iteration": self.best_iteration,
            "learning_rate": self.alg.learning_rate,
            "models": self.alg.save(),
            "torch_rng": torch.get_rng_state(),
            "env_rng": self.env.env.rng.bit_generator.state,
            "reward_norm": self.env.reward_normalizer.state_dict() if self.env.reward_normalizer else None,
            "env_state": self.env.state_dict(),
        }

    def save_checkpoint(self, path: str | Path) -> None:
        save_checkpoint(self.checkpoint(), Path(path))

    def load_checkpoint(self, path: str | Path) -> None:
        """Restore networks, optimizer, counters, RNGs and the envs mid-episode: the run continues exactly.

        (A checkpoint from before 0.3 has no env state: its envs start new episodes.)"""
        ckpt = load_checkpoint(Path(path))
        if ckpt["task_id"] != self.task.id:
            raise UsageError(f"checkpoint {path} was trained on task {ckpt['task_id']!r}, not {self.task.id!r}")
        try:
            self.alg.load(ckpt["models"], None, strict=True)
        except (RuntimeError, KeyError, ValueError) as exc:
            raise UsageError(f"checkpoint {path} does not fit this configuration: {str(exc).splitlines()[0]}") from None
        self.alg.learning_rate = float(ckpt["learning_rate"])
        for group in self.alg.optimizer.param_groups:
            group["lr"] = self.alg.learning_rate
        self.iteration, self.env_steps = int(ckpt["iteration"]), int(ckpt["env_steps"])
        self.wall_seconds = float(ckpt["wall_seconds"])
        self.best = tuple(ckpt["best"]) if ckpt["best"] is not None else None
        self.best_iteration = ckpt["best_iteration"]
        if self.env.reward_normalizer is not None and ckpt.get("reward_norm"):
            self.env.reward_normalizer.load_state_dict(ckpt["reward_norm"])
        torch.set_rng_state(ckpt["torch_rng"])
        self.env.env.rng.bit_generator.state = ckpt["env_rng"]
        saved = ckpt.get("env_state")
        if saved is not None and len(saved["obs"]) == self.env.num_envs:
            self.env.load_state_dict(saved)

    # ---- the run folder ---------------------------------------------------------------------
    def _start_folder(self, resume: bool) -> None:
        last = self.checkpoint_dir / "last.pt"
        if resume and last.exists():  # (resume with no checkpoint yet: killed before the first one; start over)
            self.load_checkpoint(last)
            self.records = [r for r in read_records(self.out_dir) if r.iteration <= self.iteration]
            return
        if not resume and ((self.out_dir / MANIFEST).exists() or last.exists()):
            raise UsageError(
                f"{self.out_dir} already holds a training run; pass --resume to continue it or choose another --out"
            )
        self.out_dir.mkdir(parents=True, exist_ok=True)
        sha = hashlib.sha256(self.reward_code.encode()).hexdigest() if self.reward_code else None
        if self.reward_code is not None:
            write_text(self.out_dir / REWARD_FILE, self.reward_code)
        manifest = RunManifest(
            task_id=self.task.id,
            morphology=self.task.morphology,
            task=self.task,
            reward_source=self.reward_source,
            reward_sha256=sha,
            config=self.config,
            created=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            versions=versions(),
        )
        write_model(self.out_dir / MANIFEST, manifest)

    # ---- recording --------------------------------------------------------------------------
    def _record(
        self, log: EpisodeLog, window_steps: int, window_seconds: float, losses: dict[str, float]
    ) -> TrainRecord:
        n = len(log)

        def mean(values: list[float] | list[int] | list[bool]) -> float | None:
            return float(np.mean(values)) if len(values) else None

        record = TrainRecord(
            iteration=self.iteration,
            env_steps=self.env_steps,
            wall_seconds=round(self.wall_seconds, 3),
            steps_per_second=window_steps / max(window_seconds, 1e-9),
            episodes=n,
            return_mean=mean(log.returns),
            length_mean=mean(log.lengths),
            success_rate=mean(log.success),
            success_fraction_mean=mean(log.success_fraction),
            components={k: float(np.mean(v)) for k, v in log.components.items()} if n else {},
            human_return_mean=mean(log.human_returns),
            end_reasons={r: log.end_reason.count(r) / n for r in END_REASONS} if n else {},
            losses={k: float(v) for k, v in losses.items()},
            action_std=float(self.alg.get_policy().output_std.detach().mean()) if self._has_std() else None,
            learning_rate=float(self.alg.learning_rate),
        )
        self.records.append(record)
        write_jsonl(self.out_dir / RECORDS, self.records)
        return record

    def _has_std(self) -> bool:
        dist = self.alg.get_policy().distribution
        return dist is not None and getattr(dist, "_distribution", None) is not None

    def _tensorboard(self, writer: Any, r: TrainRecord) -> None:
        step = r.env_steps
        scalars: dict[str, float | None] = {
            "episode/return": r.return_mean,
            "episode/length": r.length_mean,
            "episode/success_rate": r.success_rate,
            "episode/success_fraction": r.success_fraction_mean,
            "episode/human_return": r.human_return_mean,
            "perf/steps_per_second": r.steps_per_second,
            "policy/action_std": r.action_std,
            "policy/learning_rate": r.learning_rate,
        }
        scalars |= {f"reward/{k}": v for k, v in r.components.items()}
        scalars |= {f"end_reason/{k}": v for k, v in r.end_reasons.items()}
        scalars |= {f"loss/{k}": v for k, v in r.losses.items()}
        for tag, value in scalars.items():
            if value is not None:
                writer.add_scalar(tag, value, step)
        writer.flush()

    def _maybe_best(self, r: TrainRecord) -> None:
        if r.success_rate is None:
            return
        key = (r.success_rate, r.return_mean if r.return_mean is not None else -math.inf)
        if self.best is None or key > self.best:
            self.best, self.best_iteration = key, r.iteration
            self.save_checkpoint(self.checkpoint_dir / "best.pt")

    # ---- the loop ---------------------------------------------------------------------------
    def train(self, *, resume: bool = False, progress: ProgressFn | None = None) -> TrainResult:
        """Train to config.total_steps (or continue a resumed run); never raises for a bad reward."""
        cfg = self.config
        self._start_folder(resume)
        writer = None
        if cfg.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(log_dir=str(self.out_dir / "tb"), purge_step=self.env_steps or None)
        status: Literal["completed", "failed", "interrupted"]
        status, reason = "completed", ""
        obs = self.env.get_observations()
        self.alg.train_mode()
        self.env.drain()
        start = time.perf_counter()
        wall0, steps0 = self.wall_seconds, self.env_steps
        window_start, window_steps, last_save = start, 0, start
        try:
            while self.iteration < cfg.iterations:
                with torch.inference_mode():
                    for _ in range(cfg.num_steps_per_env):
                        actions = self.alg.act(obs)
                        obs, rewards, dones, extras = self.env.step(actions)
                        self.alg.process_env_step(obs, rewards, dones, extras)
                    self.alg.compute_returns(obs)
                losses = self.alg.update()
                if not all(math.isfinite(v) for v in losses.values()):
                    raise RewardFault(
                        f"PPO update produced a non-finite loss at iteration {self.iteration + 1}: "
                        f"{losses} (reward scale too large?)"
                    )
                self.iteration += 1
                self.env_steps += cfg.steps_per_iteration
                window_steps += cfg.steps_per_iteration
                now = time.perf_counter()
                self.wall_seconds = wall0 + now - start
                last_record = self.records[-1] if self.records else None
                if self.iteration % cfg.record_every == 0 or self.iteration == cfg.iterations:
                    last_record = self._record(self.env.drain(), window_steps, now - window_start, losses)
                    if writer is not None:
                        self._tensorboard(writer, last_record)
                    self._maybe_best(last_record)
                    self.save_checkpoint(self.checkpoint_dir / "last.pt")
                    window_start, window_steps, last_save = now, 0, now
                    if (
                        cfg.stop_success_rate is not None
                        and last_record.success_rate is not None
                        and last_record.success_rate >= cfg.stop_success_rate
                    ):
                        reason = (
                            f"stopped early: success rate {last_record.success_rate:.2f} >= {cfg.stop_success_rate}"
                        )
                        break
                elif now - last_save > cfg.checkpoint_seconds:
                    self.save_checkpoint(self.checkpoint_dir / "last.pt")
                    last_save = now
                if progress is not None:
                    rate = (self.env_steps - steps0) / max(now - start, 1e-9)
                    progress(
                        Progress(
                            self.iteration,
                            cfg.iterations,
                            self.env_steps,
                            cfg.iterations * cfg.steps_per_iteration,
                            rate,
                            last_record.success_rate if last_record else None,
                            last_record.return_mean if last_record else None,
                        )
                    )
        except RewardFault as exc:
            status, reason = "failed", exc.reason
        except KeyboardInterrupt:
            status, reason = "interrupted", "interrupted (a checkpoint was saved; resume with --resume)"
            self.wall_seconds = wall0 + time.perf_counter() - start
            self.save_checkpoint(self.checkpoint_dir / "last.pt")
        finally:
            if writer is not None:
                writer.close()
        result = TrainResult(
            status=status,
            reason=reason,
            run_dir=str(self.out_dir),
            iterations=self.iteration,
            env_steps=self.env_steps,
            wall_seconds=round(self.wall_seconds, 3),
            steps_per_second=self.env_steps / max(self.wall_seconds, 1e-9),
            best_success_rate=self.best[0] if self.best else None,
            best_iteration=self.best_iteration,
            last=self.records[-1] if self.records else None,
        )
        write_model(self.out_dir / RESULT, result)
        return result

    def close(self) -> None:
        self.env.close()


def train(
    task: Task | str,
    reward_fn: RewardFn | None,
    config: TrainConfig,
    out_dir: str | Path,
    *,
    reward_code: str | None = None,
    reward_source: str | None = None,
    resume: bool = False,
    progress: ProgressFn | None = None,
) -> TrainResult:
    """Train a policy on `reward_fn` (None: the task's human reward); see Trainer. Returns how it ended."""
    trainer = Trainer(task, reward_fn, config, out_dir, reward_code=reward_code, reward_source=reward_source)
    try:
        return trainer.train(resume=resume, progress=progress)
    finally:
        trainer.close()


# ---- checkpoint files --------------------------------------------------------------------------
def save_checkpoint(ckpt: dict[str, Any], path: Path) -> None:
    """torch.save to a temporary file, then rename: a killed process never leaves half a checkpoint."""
    with replacing(path) as tmp:
        torch.save(ckpt, tmp)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint dict (tensors and plain data only: `weights_only`), or UsageError in one line."""
    if not path.is_file():
        raise UsageError(f"no checkpoint at {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - zip, pickle and EOF errors all mean "not readable"
        raise UsageError(f"checkpoint {path} is corrupt or unreadable ({type(exc).__name__})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise UsageError(f"{path} is not a synth-reward checkpoint (expected format {CHECKPOINT_FORMAT})")
    return ckpt


def build_actor(config: TrainConfig, num_obs: int, num_actions: int) -> MLPModel:
    """The actor network of `config` (rsl_rl's MLPModel with its obs normaliser), untrained."""
    obs = TensorDict({"policy": torch.zeros(1, num_obs)}, batch_size=[1])
    actor_class, actor_cfg = resolve_class(config.rsl_rl_cfg()["actor"])
    with _quiet():
        return actor_class(obs, {"actor": ["policy"]}, "actor", num_actions, **actor_cfg)


def load_actor(ckpt: dict[str, Any], num_obs: int, num_actions: int) -> tuple[MLPModel, TrainConfig]:
    """The trained actor of a checkpoint dict, in eval mode (deterministic output = the Gaussian's mean)."""
    config = TrainConfig.model_validate(ckpt["config"])
    actor = build_actor(config, num_obs, num_actions)
    try:
        actor.load_state_dict(ckpt["models"]["actor_state_dict"])
    except (RuntimeError, KeyError) as exc:
        raise UsageError(f"checkpoint does not match its configuration: {str(exc).splitlines()[0]}") from None
    actor.eval()
    return actor, config
