"""Batched env throughput against the raw physics limit and Gymnasium, measured in one run.

For each morphology: env-steps/s of
  raw      mujoco.rollout over the same model, frame skip and thread count (no Python per step),
  backend  the CPU backend's step alone (physics, contact forces, gathering mjData fields),
  batched  BatchedEnv.step (backend + State snapshot, observation, episode bookkeeping),
  gym      Gymnasium's own *-v5 env, one env in a loop (as people use it).

These machines are noisy (the speed of a core changes by 2x within seconds), so each
figure is measured in short interleaved rounds: raw, batched, raw, backend, raw, gym (raw
in a separate long-lived process, each env reset first). batched/raw and backend/raw use
the mean of the two raw runs around them; the printed ratio is the median over rounds.
Absolute rates are medians too and only indicative.

    python benchmarks/bench_envs.py [--envs 32] [--steps 200] [--threads 2] [--rounds 7]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator

import gymnasium as gym
import mujoco
import numpy as np
import torch
from mujoco import rollout

from synth_reward.envs import BatchedEnv, get_morphology


def raw_runner(name: str, num_envs: int, steps: int, threads: int) -> Iterator[float]:
    """Rates of mujoco.rollout over `steps` random control steps from the initial pose, one per next()."""
    morph = get_morphology(name)
    model = morph.model()
    datas = [mujoco.MjData(model) for _ in range(threads)]
    state0 = np.zeros((num_envs, mujoco.mj_stateSize(model, mujoco.mjtState.mjSTATE_FULLPHYSICS)))
    d = mujoco.MjData(model)
    mujoco.mj_getState(model, d, state0[0], mujoco.mjtState.mjSTATE_FULLPHYSICS)
    state0[:] = state0[0]
    rng = np.random.default_rng(0)
    control = np.repeat(rng.uniform(-0.4, 0.4, (num_envs, steps, model.nu)), morph.frame_skip, axis=1)
    with rollout.Rollout(nthread=threads) as r:
        r.rollout([model] * num_envs, datas, state0, control)  # warm-up
        while True:
            start = time.perf_counter()
            r.rollout([model] * num_envs, datas, state0, control)
            yield num_envs * steps / (time.perf_counter() - start)


def raw_rate(name: str, num_envs: int, steps: int, threads: int) -> float:
    """One measurement of mujoco.rollout (see raw_runner)."""
    return next(raw_runner(name, num_envs, steps, threads))


class RawProcess:
    """raw_runner in a long-lived child process, measuring when asked.

    A separate process, because rollout's thread pool slowed envs measured in the same process;
    a long-lived one, because starting a process per measurement put seconds between the two
    measurements a ratio compares, and the machine's speed changes within seconds.
    """

    def __init__(self, name: str, num_envs: int, steps: int, threads: int) -> None:
        self._proc = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--raw-server",
                "--morphologies",
                name,
                "--envs",
                str(num_envs),
                "--steps",
                str(steps),
                "--threads",
                str(threads),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def rate(self) -> float:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write("go\n")
        self._proc.stdin.flush()
        return float(self._proc.stdout.readline())

    def close(self) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.close()
        self._proc.wait()


def serve_raw(name: str, num_envs: int, steps: int, threads: int) -> None:
    """The child of RawProcess: one measurement per line on stdin, its rate on stdout."""
    runner = raw_runner(name, num_envs, steps, threads)
    for _ in sys.stdin:
        print(next(runner), flush=True)


def make_env(name: str, num_envs: int, threads: int) -> BatchedEnv:
    env = BatchedEnv(name, num_envs, seed=0, num_threads=threads, episode_length=10**9)
    for a in torch.rand(10, num_envs, env.num_actions) * 0.8 - 0.4:  # warm-up
        env.step(a)
    return env


def env_rate(env: BatchedEnv, steps: int, backend_only: bool = False) -> float:
    actions = torch.rand(steps, env.num_envs, env.num_actions) * 0.8 - 0.4
    step = env.backend.step if backend_only else env.step
    env.reset()  # from the initial pose, as raw's rollouts: a robot lying on the floor has more contacts
    start = time.perf_counter()
    for a in actions:
        step(a)
    return env.num_envs * steps / (time.perf_counter() - start)


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


def cpu_name() -> str:
    """The processor's model name: hosts differ, and so do ratios measured on them."""
    try:
        with open("/proc/cpuinfo") as f:
            fields = dict(line.split(":", 1) for line in f if ":" in line)
    except OSError:
        fields = {}
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    name = fields.get("model name") or platform.processor() or "unknown processor"
    return f"{name}, model {fields['model']}" if "model" in fields else name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--envs", type=int, default=32)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--morphologies", nargs="+", default=["humanoid", "half_cheetah"])
    parser.add_argument("--raw-server", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.raw_server:
        serve_raw(args.morphologies[0], args.envs, args.steps, args.threads)
        return
    print(
        f"N={args.envs} envs, {args.steps} control steps per measurement, {args.threads} threads, "
        f"{os.cpu_count()} cores ({cpu_name()}), {args.rounds} interleaved rounds (medians)"
    )
    header = ["morphology", "raw/s", "backend/s", "batched/s", "gym/s", "backend/raw", "batched/raw", "batched/gym"]
    print(" ".join(f"{h:>11}" for h in header))
    for name in args.morphologies:
        env = make_env(name, args.envs, args.threads)
        rates: dict[str, list[float]] = {k: [] for k in ("raw", "backend", "batched", "gym")}
        ratios: dict[str, list[float]] = {k: [] for k in ("backend", "batched", "gym")}
        raw_process = RawProcess(name, args.envs, args.steps, args.threads)
        for _ in range(args.rounds):  # raw, batched, raw, backend, raw, gym: each ratio against the raws around it
            raw = [raw_process.rate()]
            now = {"batched": env_rate(env, args.steps)}
            raw.append(raw_process.rate())
            now["backend"] = env_rate(env, args.steps, backend_only=True)
            raw.append(raw_process.rate())
            now["gym"] = gym_rate(name, args.steps * 2)
            rates["raw"].append(float(np.mean(raw)))
            for k, v in now.items():
                rates[k].append(v)
            ratios["batched"].append(now["batched"] / np.mean(raw[:2]))
            ratios["backend"].append(now["backend"] / np.mean(raw[1:]))
            ratios["gym"].append(now["batched"] / now["gym"])
        env.close()
        raw_process.close()
        med = {k: float(np.median(v)) for k, v in rates.items()}
        rat = {k: float(np.median(v)) for k, v in ratios.items()}
        row = [f"{med[k]:,.0f}" for k in ("raw", "backend", "batched", "gym")]
        row += [f"{rat[k]:.2f}" for k in ("backend", "batched", "gym")]
        print(f"{name:>11} " + " ".join(f"{v:>11}" for v in row))
        spread = ", ".join(f"{r:.2f}" for r in ratios["batched"])
        print(f"{'':>11} batched/raw per round: {spread}")


if __name__ == "__main__":
    main()
