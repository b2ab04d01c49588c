"""The MuJoCo Warp backend: parity with the CPU backend here, throughput on a GPU.

Parity (the default; runs on Warp's CPU device, no GPU needed): for every morphology, N worlds
from Gymnasium's reset distribution, 100 control steps of the same random controls, max abs
error of qpos, qvel, body positions (xpos) and contact forces (cfrc_ext) of the Warp backend
against the CPU backend running the same converted model (synth_reward/envs/parity.py):

  one-step    Warp loaded with the CPU backend's integration state before every step: the
              float32 error of one control step (what tests/test_warp.py bounds)
  free-run    Warp from the same first state, never re-synchronised: how far 100 steps drift
  conversion  the CPU backend with the original model against the converted one, one step

    python benchmarks/bench_warp.py [--morphology humanoid ...] [--envs 8] [--steps 100] [--cones pyramidal]

(--cones pyramidal: Gymnasium's cones on every morphology, the measurement behind the elliptic
cones of ant and humanoid; synth_reward/envs/warp_model.py.)

Throughput (needs a CUDA GPU): for N = 1,024 to 16,384 worlds, env-steps/s of the raw
mujoco_warp step (frame_skip steps and contact forces in one CUDA graph, no Python per env),
of BatchedEnv.step (State snapshot, reward, success, resets included) and of PPO training
(rollouts and updates, networks on the same GPU), all in the same run:

    python benchmarks/bench_warp.py --device cuda [--morphology humanoid] [--worlds 1024 4096 16384]

With --device cpu --throughput the same code runs on Warp's CPU device (a smoke test of the
script; those rates say nothing about a GPU).
"""

from __future__ import annotations

import argparse
import datetime
import platform
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from synth_reward.envs import get_morphology, list_morphologies
from synth_reward.envs.parity import FIELDS, TOLERANCE, backend_parity

WORLDS = (1024, 2048, 4096, 8192, 16384)


def _commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def parity(names: list[str], envs: int, steps: int, device: str, cones: bool | None) -> None:
    print(
        f"parity, Warp device {device}: {envs} worlds x {steps} control steps, max |Warp - CPU| (same converted model)"
    )
    if cones is not None:
        print(f"friction cones: {'elliptic' if cones else 'pyramidal'} for every morphology (not as shipped)")
    header = f"{'morphology':<13} {'measure':<11}" + "".join(f"{f:>11}" for f in FIELDS)
    print(header)
    for name in names:
        start = time.perf_counter()
        p = backend_parity(name, envs=envs, steps=steps, device=device, elliptic_cones=cones)
        for label, values in (
            ("one-step", p.one_step),
            ("free-run", p.free_run),
            ("conversion", p.conversion),
            ("max |ref|", p.scale),
        ):
            print(f"{name:<13} {label:<11}" + "".join(f"{values[f]:>11.2e}" for f in FIELDS))
        changes = "; ".join(p.changes) or "none"
        verdict = "within" if p.worst() <= TOLERANCE else "BEYOND"
        print(
            f"{'':<13} one-step worst error / max |ref| {p.worst():.1e}: {verdict} the float32 tolerance {TOLERANCE:g}"
        )
        print(f"{'':<13} changes: {changes}; unstable worlds {p.unstable}; {time.perf_counter() - start:.0f} s")


def _raw_rate(name: str, worlds: int, device: str, seconds: float) -> float:
    """env-steps/s of frame_skip mujoco_warp steps + rne_postconstraint, graph-captured on CUDA."""
    import mujoco_warp as mjw
    import warp as wp

    from synth_reward.envs.warp_model import warp_model

    morph = get_morphology(name)
    wm = warp_model(morph)
    with wp.ScopedDevice(device):
        m = mjw.put_model(wm.model)
        d = mjw.make_data(wm.model, nworld=worlds, nconmax=wm.nconmax, njmax=wm.njmax)
        ctrl = wp.to_torch(d.ctrl)
        ctrl.uniform_(-0.5, 0.5)

        def physics() -> None:
            for _ in range(morph.frame_skip):
                mjw.step(m, d)
            mjw.rne_postconstraint(m, d)

        physics()
        graph = None
        if wp.get_device(device).is_cuda:
            with wp.ScopedCapture() as capture:
                physics()
            graph = capture.graph
        wp.synchronize()
        steps, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            for _ in range(10):
                wp.capture_launch(graph) if graph is not None else physics()
            wp.synchronize()
            steps += 10
        return steps * worlds / (time.perf_counter() - start)


def _env_rate(name: str, worlds: int, device: str, seconds: float) -> float:
    """env-steps/s of BatchedEnv.step with the task's human reward and success check, random actions."""
    from synth_reward.envs.tasks import all_tasks

    task = next(t for t in all_tasks().values() if t.id.startswith("gym/") and t.morphology == name)
    env = task.make_env(worlds, reward_fn=task.human_reward_fn(), seed=0, backend="warp", device=device)
    low, high = env.action_low.to(env.device), env.action_high.to(env.device)
    action = low + (high - low) * torch.rand(worlds, env.num_actions, device=env.device)
    env.step(action)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        action = low + (high - low) * torch.rand(worlds, env.num_actions, device=env.device)
        env.step(action)
        steps += 1
    if env.device.type == "cuda":
        torch.cuda.synchronize()
    rate = steps * worlds / (time.perf_counter() - start)
    env.close()
    return rate


def _train_rate(name: str, worlds: int, device: str, iterations: int) -> float:
    """env-steps/s of PPO training (the trainer's own figure) for a few iterations on the task's human reward."""
    from synth_reward.envs.tasks import all_tasks
    from synth_reward.train.config import default_config
    from synth_reward.train.trainer import Trainer

    task = next(t for t in all_tasks().values() if t.id.startswith("gym/") and t.morphology == name)
    config = default_config(
        name, num_envs=worlds, backend="warp", device=device, torch_threads=None, early_end_s=None, total_steps=1
    )
    config = config.model_copy(update={"total_steps": iterations * worlds * config.num_steps_per_env})
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(task, None, config, Path(out))
        try:
            result = trainer.train()
        finally:
            trainer.close()
    return result.steps_per_second


def throughput(names: list[str], worlds: list[int], device: str, seconds: float, iterations: int) -> None:
    gpu = torch.cuda.get_device_name() if device.startswith("cuda") and torch.cuda.is_available() else device
    print(f"throughput on {gpu}: env-steps/s (physics steps/s = env-steps/s x frame_skip)")
    print(f"{'morphology':<13} {'worlds':>7} {'raw mjwarp':>12} {'BatchedEnv':>12} {'training':>12}")
    for name in names:
        for n in worlds:
            raw = _raw_rate(name, n, device, seconds)
            env = _env_rate(name, n, device, seconds)
            train = _train_rate(name, n, device, iterations)
            print(f"{name:<13} {n:>7,} {raw:>12,.0f} {env:>12,.0f} {train:>12,.0f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--morphology", nargs="*", help="default: all (parity), humanoid (throughput)")
    parser.add_argument("--device", default="cpu", help="Warp's device: cpu (parity) or cuda (throughput)")
    parser.add_argument("--throughput", action="store_true", help="throughput even on --device cpu (a smoke test)")
    parser.add_argument(
        "--cones", choices=["shipped", "pyramidal", "elliptic"], default="shipped", help="parity: friction cones"
    )
    parser.add_argument("--envs", type=int, default=8, help="parity: worlds")
    parser.add_argument("--steps", type=int, default=100, help="parity: control steps")
    parser.add_argument("--worlds", type=int, nargs="*", default=list(WORLDS), help="throughput: world counts")
    parser.add_argument("--seconds", type=float, default=5.0, help="throughput: seconds per raw / BatchedEnv rate")
    parser.add_argument("--iterations", type=int, default=5, help="throughput: PPO iterations per training rate")
    args = parser.parse_args()
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(
        f"bench_warp: commit {_commit()}, {stamp}, {platform.processor() or platform.machine()}, torch {torch.__version__}"
    )
    if args.device.startswith("cuda") or args.throughput:
        throughput(args.morphology or ["humanoid"], args.worlds, args.device, args.seconds, args.iterations)
    else:
        cones = None if args.cones == "shipped" else args.cones == "elliptic"
        parity(args.morphology or [m.name for m in list_morphologies()], args.envs, args.steps, args.device, cones)


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
