"""Batched env throughput against the raw physics limit and Gymnasium, measured in one run.

For each morphology: env-steps/s of
  raw      mujoco.rollout over the same model, frame skip and thread count (no Python per step),
  batched  synth_reward's BatchedEnv (CPU backend: physics + contact forces + State + obs),
  gym      Gymnasium's own *-v5 env, one env in a loop (as people use it),
and prints batched/raw and batched/gym. Absolute rates vary with machine load; the
ratios are measured back to back and are the figures to compare.

    python benchmarks/bench_envs.py [--envs 32] [--steps 200] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import time

import gymnasium as gym
import mujoco
import numpy as np
import torch
from mujoco import rollout

from synth_reward.envs import BatchedEnv, get_morphology


def raw_rate(name: str, num_envs: int, steps: int, threads: int) -> float:
    morph = get_morphology(name)
    model = morph.model()
    datas = [mujoco.MjData(model) for _ in range(threads)]
    state0 = np.zeros((num_envs, mujoco.mj_stateSize(model, mujoco.mjtState.mjSTATE_FULLPHYSICS)))
    d = mujoco.MjData(model)
    mujoco.mj_getState(model, d, state0[0], mujoco.mjtState.mjSTATE_FULLPHYSICS)
    state0[:] = state0[0]
    rng = np.random.default_rng(0)
    control = np.repeat(
        rng.uniform(-0.4, 0.4, (num_envs, steps, model.nu)), morph.frame_skip, axis=1
    )
    with rollout.Rollout(nthread=threads) as r:
        r.rollout([model] * num_envs, datas, state0, control)  # warm-up
        start = time.perf_counter()
        r.rollout([model] * num_envs, datas, state0, control)
        return num_envs * steps / (time.perf_counter() - start)


def batched_rate(name: str, num_envs: int, steps: int, threads: int, parallel: str) -> float:
    env = BatchedEnv(name, num_envs, seed=0, num_threads=threads, episode_length=10**9, parallel=parallel)
    actions = torch.rand(steps, num_envs, env.num_actions) * 0.8 - 0.4
    for a in actions[:10]:
        env.step(a)
    start = time.perf_counter()
    for a in actions:
        env.step(a)
    rate = num_envs * steps / (time.perf_counter() - start)
    env.close()
    return rate


def gym_rate(name: str, steps: int) -> float:
    env = gym.make(get_morphology(name).gym_id)
    env.reset(seed=0)
    actions = np.random.default_rng(0).uniform(-0.4, 0.4, (steps, env.action_space.shape[0]))
    start = time.perf_counter()
    for a in actions:
        _, _, terminated, truncated, _ = env.step(a)
        if terminated or truncated:
            env.reset()
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--envs", type=int, default=32)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--morphologies", nargs="+", default=["humanoid", "half_cheetah"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(
        f"N={args.envs} envs, {args.steps} control steps, {args.threads} threads, {os.cpu_count()} cores"
    )
    print("batched = BatchedEnv with worker processes (default); threads = the same with a thread pool")
    header = ["morphology", "raw/s", "batched/s", "threads/s", "gym/s", "batched/raw", "threads/raw", "batched/gym"]
    print(" ".join(f"{h:>12}" for h in header))
    for name in args.morphologies:
        raw = raw_rate(name, args.envs, args.steps, args.threads)
        batched = batched_rate(name, args.envs, args.steps, args.threads, "process")
        threads = batched_rate(name, args.envs, args.steps, args.threads, "thread")
        raw = (raw + raw_rate(name, args.envs, args.steps, args.threads)) / 2  # bracket the env runs
        single = gym_rate(name, args.steps * 5)
        row = [f"{raw:,.0f}", f"{batched:,.0f}", f"{threads:,.0f}", f"{single:,.0f}",
               f"{batched / raw:.2f}", f"{threads / raw:.2f}", f"{batched / single:.2f}"]
        print(f"{name:>12} " + " ".join(f"{v:>12}" for v in row))

if __name__ == "__main__":
    main()
