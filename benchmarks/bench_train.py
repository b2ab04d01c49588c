"""Training throughput, measured in one run: synth-reward's PPO vs SB3's PPO vs the raw physics limit.

On humanoid/kneel with examples/rewards/humanoid_kneel.py, same env count and threads:
  raw       mujoco.rollout over the same model, frame skip and threads (physics only, no Python per step),
            from the initial pose with random actions, for as many steps as the timed training
  raw_same  mujoco.rollout over the very steps the timed training took: each env step that `ours`
            made (its state, warm start included, and its control) replayed as one rollout entry.
            Physics costs more per step on a robot lying on the floor (more contacts) than on one
            that is still falling from its initial pose: measured here, 3.4k against 2.4k
            env-steps/s for humanoid. So this is the raw limit of the physics that training ran.
  env       BatchedEnv stepping with the reward and success check (no learning)
  ours      synth-reward training: rsl_rl PPO over the batched env (rollout + update), env steps per wall second
  sb3       Stable-Baselines3 PPO over the same batched env (SB3VecEnv), configured like ours
            (same steps per update, epochs, minibatch size and network), and with SB3's defaults
            (n_epochs 10, batch_size 64)
  sb3_gym   SB3 PPO with its defaults (n_epochs 10, batch_size 64) over a DummyVecEnv of N Gymnasium
            Humanoid-v5 envs: SB3 as usually run (same model and physics, Gymnasium's reward)
Prints every rate and the ratios ours/sb3 and ours/raw. Each rate is measured in a fresh process
(a measurement run after mujoco.rollout's thread pool in the same process was up to 2x slower).
These machines' speed changes by 2x within seconds, so the whole list is measured in interleaved
rounds (raw, env, ours, sb3..., raw, env, ...): each ratio is taken within a round, and the
printed rates and ratios are medians over rounds.

    python benchmarks/bench_train.py [--envs 64] [--iterations 5] [--threads 2] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mujoco
import numpy as np
import torch
from mujoco import rollout

sys.path.insert(0, str(Path(__file__).parent))
from bench_envs import raw_rate  # noqa: E402

from synth_reward.envs import get_morphology  # noqa: E402
from synth_reward.envs.tasks import get_task  # noqa: E402
from synth_reward.train.config import default_config  # noqa: E402
from synth_reward.train.reward import load_reward_code  # noqa: E402
from synth_reward.train.trainer import Trainer  # noqa: E402

REWARD = Path(__file__).parents[1] / "examples" / "rewards" / "humanoid_kneel.py"


def env_rate(task_id: str, reward, envs: int, steps: int, threads: int) -> float:
    env = get_task(task_id).make_env(envs, reward_fn=reward, seed=0, num_threads=threads)
    actions = torch.rand(steps, envs, env.num_actions) * 0.8 - 0.4
    for a in actions[:5]:
        env.step(a)
    start = time.perf_counter()
    for a in actions:
        env.step(a)
    env.close()
    return envs * steps / (time.perf_counter() - start)


def record_steps(trainer: Trainer) -> list[np.ndarray]:
    """Copy the backend's state rows (control included) just before each physics call (for raw_same)."""
    batch = trainer.env.env.backend._batch  # CpuBackend's MjBatch: rows in mjSTATE_INTEGRATION order
    rows: list[np.ndarray] = []
    step = batch.step

    def recording_step(nstep: int, ids: np.ndarray | None = None) -> int:
        rows.append(batch.state.copy())
        return step(nstep, ids)

    batch.step = recording_step
    return rows


def ours_rate(task_id: str, reward, envs: int, iterations: int, threads: int, replay: Path | None = None) -> float:
    config = default_config(
        "humanoid", num_envs=envs, num_threads=threads, tensorboard=False, total_steps=10**9, num_records=1
    )
    out = Path(tempfile.mkdtemp(prefix="bench_train_"))
    trainer = Trainer(task_id, reward, config, out / "run")
    trainer.config = config.model_copy(update={"total_steps": config.steps_per_iteration})  # warm-up: 1 iteration
    trainer.train()
    trainer.config = config.model_copy(update={"total_steps": config.steps_per_iteration * (iterations + 1)})
    rows = record_steps(trainer) if replay else []  # the copies are timed too, against us
    start = time.perf_counter()
    trainer.train(resume=True)
    rate = iterations * config.steps_per_iteration / (time.perf_counter() - start)
    trainer.close()
    if replay:
        np.save(replay, np.concatenate(rows))
    shutil.rmtree(out, ignore_errors=True)
    return rate


def raw_same_rate(replay: Path, threads: int) -> float:
    """mujoco.rollout over the env steps `ours` recorded: one rollout entry per env step, frame_skip substeps."""
    morph = get_morphology("humanoid")
    model = morph.model()
    rows = np.load(replay)
    integration, full = mujoco.mjtState.mjSTATE_INTEGRATION, mujoco.mjtState.mjSTATE_FULLPHYSICS
    d = mujoco.MjData(model)
    state = np.empty((len(rows), mujoco.mj_stateSize(model, full)))
    warmstart, ctrl = np.empty((len(rows), model.nv)), np.empty((len(rows), model.nu))
    for i, row in enumerate(rows):
        mujoco.mj_setState(model, d, row, integration)
        mujoco.mj_getState(model, d, state[i], full)
        warmstart[i], ctrl[i] = d.qacc_warmstart, d.ctrl
    control = np.repeat(ctrl[:, None], morph.frame_skip, axis=1)
    datas = [mujoco.MjData(model) for _ in range(threads)]
    models = [model] * len(rows)
    with rollout.Rollout(nthread=threads) as r:
        r.rollout(models, datas, state, control, initial_warmstart=warmstart)  # warm-up
        start = time.perf_counter()
        r.rollout(models, datas, state, control, initial_warmstart=warmstart)
        return len(rows) / (time.perf_counter() - start)


def sb3_rate(task_id: str, reward, envs: int, iterations: int, like_ours: bool) -> float:
    from stable_baselines3 import PPO

    from synth_reward.envs.adapters import SB3VecEnv

    config = default_config("humanoid", num_envs=envs)
    venv = SB3VecEnv(get_task(task_id), envs, reward_fn=reward, seed=0)
    n_steps = config.num_steps_per_env
    kwargs = dict(n_steps=n_steps, verbose=0, device="cpu", seed=0)
    if like_ours:
        kwargs |= dict(
            batch_size=n_steps * envs // config.num_mini_batches,
            n_epochs=config.num_learning_epochs,
            policy_kwargs=dict(net_arch=list(config.hidden_dims), activation_fn=torch.nn.ELU),
        )
    else:
        kwargs |= dict(batch_size=64, n_epochs=10)
    model = PPO("MlpPolicy", venv, **kwargs)
    model.learn(n_steps * envs)  # warm-up: one update
    start = time.perf_counter()
    model.learn(n_steps * envs * iterations, reset_num_timesteps=False)
    rate = n_steps * envs * iterations / (time.perf_counter() - start)
    venv.close()
    return rate


def sb3_gym_rate(envs: int, iterations: int) -> float:
    """SB3 PPO as most people run it: SB3's defaults over a DummyVecEnv of Gymnasium Humanoid-v5 envs (one thread)."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    venv = make_vec_env("Humanoid-v5", n_envs=envs, seed=0)
    model = PPO("MlpPolicy", venv, n_steps=24, batch_size=64, n_epochs=10, verbose=0, device="cpu", seed=0)
    model.learn(24 * envs)
    start = time.perf_counter()
    model.learn(24 * envs * iterations, reset_num_timesteps=False)
    rate = 24 * envs * iterations / (time.perf_counter() - start)
    venv.close()
    return rate


MEASURES = {
    "raw": lambda t, r, a: raw_rate("humanoid", a.envs, 24 * a.iterations, a.threads),
    "env": lambda t, r, a: env_rate(t, r, a.envs, 24 * a.iterations, a.threads),
    "ours": lambda t, r, a: ours_rate(t, r, a.envs, a.iterations, a.threads, a.replay),
    "raw_same": lambda t, r, a: raw_same_rate(a.replay, a.threads),
    "sb3_like_ours": lambda t, r, a: sb3_rate(t, r, a.envs, a.iterations, like_ours=True),
    "sb3_defaults": lambda t, r, a: sb3_rate(t, r, a.envs, a.iterations, like_ours=False),
    "sb3_gym_dummyvec": lambda t, r, a: sb3_gym_rate(a.envs, a.iterations),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--envs", type=int, default=64)
    parser.add_argument("--iterations", type=int, default=5, help="PPO iterations (of envs x 24 steps) to time")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", choices=list(MEASURES), help=argparse.SUPPRESS)
    parser.add_argument("--replay", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    task_id = "humanoid/kneel"
    reward = load_reward_code(REWARD.read_text())
    print(
        f"{task_id}: N={args.envs} envs, {args.threads} physics threads, torch threads 1, "
        f"{os.cpu_count()} cores, {args.iterations} PPO iterations of {24 * args.envs} steps, "
        f"{args.rounds} interleaved rounds (medians)",
        flush=True,
    )
    if args.only:  # one measurement, in this fresh process
        print(f"RATE {MEASURES[args.only](task_id, reward, args)}")
        return
    rounds: list[dict[str, float]] = []
    scratch = Path(tempfile.mkdtemp(prefix="bench_train_"))
    for k in range(args.rounds):
        rates = {}
        for name in MEASURES:  # each in its own process: a measurement must not inherit another's threads or workers
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--only",
                    name,
                    "--envs",
                    str(args.envs),
                    "--iterations",
                    str(args.iterations),
                    "--threads",
                    str(args.threads),
                    "--replay",
                    str(scratch / f"steps_{k}.npy"),
                ],  # ours writes it, raw_same reads it
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            rates[name] = float(out.split("RATE ")[-1])
        rounds.append(rates)
    shutil.rmtree(scratch, ignore_errors=True)

    for name in MEASURES:
        per_round = ", ".join(f"{r[name]:,.0f}" for r in rounds)
        print(
            f"{name:>16}: {statistics.median([r[name] for r in rounds]):8,.0f} env-steps/s   (rounds: {per_round})",
            flush=True,
        )
    for label, num, den in [
        ("ours / sb3 (configured like ours): ", "ours", "sb3_like_ours"),
        ("ours / sb3 (SB3 defaults):         ", "ours", "sb3_defaults"),
        ("ours / sb3 (Gymnasium DummyVecEnv):", "ours", "sb3_gym_dummyvec"),
        ("ours / raw physics, same steps:    ", "ours", "raw_same"),
        ("ours / raw physics, initial pose:  ", "ours", "raw"),
        ("env  / raw physics:                ", "env", "raw"),
    ]:
        ratios = [r[num] / r[den] for r in rounds]
        print(f"{label} {statistics.median(ratios):.2f}   (rounds: {', '.join(f'{x:.2f}' for x in ratios)})")


if __name__ == "__main__":
    main()
