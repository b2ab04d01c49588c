"""Learning quality, measured: return after a fixed budget next to SB3's PPO, and the kneel run.

gym:   on each Gymnasium task (Gymnasium's own reward), train synth-reward's PPO (rsl_rl,
       the task's default config) and SB3's PPO with rl-baselines3-zoo's hyperparameters
       (hyperparams/ppo.yml, with VecNormalize as the zoo does) for the same env-step budget
       and seed, then evaluate both deterministically for E episodes; prints both returns.
kneel: train humanoid/kneel with examples/rewards/humanoid_kneel.py, evaluate the best
       checkpoint for E episodes, print the success rate (the task's check, at least half
       of the steps), the env steps and the minutes it took on this machine.

    python benchmarks/bench_learning.py gym --steps 200000 [--tasks gym/HalfCheetah-v5 gym/Hopper-v5]
    python benchmarks/bench_learning.py kneel --steps 3000000 [--stop-at 0.9]
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from synth_reward.envs.tasks import get_task
from synth_reward.train.config import default_config
from synth_reward.train.evaluate import evaluate
from synth_reward.train.reward import load_reward_code
from synth_reward.train.trainer import train

ZOO = {
    # rl-baselines3-zoo hyperparams/ppo.yml (HalfCheetah-v3/v4, Hopper-v3/v4): normalize: true, n_envs: 1
    "half_cheetah": dict(
        n_steps=512,
        batch_size=64,
        gamma=0.98,
        learning_rate=2.0633e-05,
        ent_coef=0.000401762,
        clip_range=0.1,
        n_epochs=20,
        gae_lambda=0.92,
        max_grad_norm=0.8,
        vf_coef=0.58096,
        policy_kwargs=dict(
            log_std_init=-2, ortho_init=False, activation_fn=torch.nn.ReLU, net_arch=dict(pi=[256, 256], vf=[256, 256])
        ),
    ),
    "hopper": dict(
        n_steps=512,
        batch_size=32,
        gamma=0.999,
        learning_rate=9.80828e-05,
        ent_coef=0.00229519,
        clip_range=0.2,
        n_epochs=5,
        gae_lambda=0.99,
        max_grad_norm=0.7,
        vf_coef=0.835671,
        policy_kwargs=dict(
            log_std_init=-2, ortho_init=False, activation_fn=torch.nn.ReLU, net_arch=dict(pi=[256, 256], vf=[256, 256])
        ),
    ),
}


def run_ours(task_id: str, steps: int, seed: int, episodes: int, out: Path) -> dict:
    task = get_task(task_id)
    run_dir = out / f"ours_{task.morphology}_{seed}"
    shutil.rmtree(run_dir, ignore_errors=True)
    config = default_config(task.morphology, total_steps=steps, seed=seed, tensorboard=False)
    start = time.perf_counter()
    result = train(task, None, config, run_dir)
    minutes = (time.perf_counter() - start) / 60
    ev = evaluate(run_dir, episodes, checkpoint="last", seed=10_000 + seed)
    return {
        "algo": "synth-reward PPO (rsl_rl)",
        "task": task_id,
        "steps": result.env_steps,
        "seed": seed,
        "train_minutes": round(minutes, 2),
        "status": result.status,
        "return_mean": ev.human_return_mean,
        "return_std": float(np.std([e.human_return for e in ev.per_episode])),
    }


def run_sb3(task_id: str, steps: int, seed: int, episodes: int) -> dict:
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecNormalize

    from synth_reward.envs.adapters import SB3VecEnv

    task = get_task(task_id)
    hp = ZOO[task.morphology]
    venv = VecNormalize(SB3VecEnv(task, 1, seed=seed), gamma=hp["gamma"])
    model = PPO("MlpPolicy", venv, seed=seed, device="cpu", verbose=0, **hp)
    start = time.perf_counter()
    model.learn(total_timesteps=steps)
    minutes = (time.perf_counter() - start) / 60
    eval_env = VecNormalize(SB3VecEnv(task, 1, seed=10_000 + seed), training=False, norm_reward=False)
    eval_env.obs_rms = venv.obs_rms
    returns = []
    obs = eval_env.reset()
    total = 0.0
    while len(returns) < episodes:
        action, _ = model.predict(obs, deterministic=True)
        obs, reward, done, infos = eval_env.step(action)
        total += float(eval_env.get_original_reward()[0])
        if done[0]:
            returns.append(total)
            total = 0.0
    return {
        "algo": "SB3 PPO (rl-zoo hyperparameters)",
        "task": task_id,
        "steps": steps,
        "seed": seed,
        "train_minutes": round(minutes, 2),
        "return_mean": float(np.mean(returns)),
        "return_std": float(np.std(returns)),
    }


def gym_main(args: argparse.Namespace) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for task_id in args.tasks:
        for runner in ("ours", "sb3"):
            row = (
                run_ours(task_id, args.steps, args.seed, args.episodes, out)
                if runner == "ours"
                else run_sb3(task_id, args.steps, args.seed, args.episodes)
            )
            rows.append(row)
            print(json.dumps(row), flush=True)
            (out / "results.json").write_text(json.dumps(rows, indent=2))
    print(f"\n{'task':<20} {'algo':<34} {'steps':>8} {'return':>16} {'minutes':>8}")
    for r in rows:
        print(
            f"{r['task']:<20} {r['algo']:<34} {r['steps']:>8} {r['return_mean']:>9.1f} ± {r['return_std']:<5.0f}"
            f" {r['train_minutes']:>8.2f}"
        )


def kneel_main(args: argparse.Namespace) -> None:
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    code = Path(args.reward).read_text()
    task = get_task("humanoid/kneel")
    overrides = dict(item.split("=", 1) for item in args.set)
    config = default_config(
        "humanoid",
        total_steps=args.steps,
        seed=args.seed,
        stop_success_rate=args.stop_at,
        num_records=args.records,
        **{k: json.loads(v) for k, v in overrides.items()},
    )
    print(f"config: {config.model_dump(exclude_defaults=True)}", flush=True)
    start = time.perf_counter()

    def progress(p) -> None:  # noqa: ANN001
        if p.iteration % config.record_every == 0:
            print(
                f"  {p.env_steps:>9} steps {(time.perf_counter() - start) / 60:6.1f} min "
                f"{p.steps_per_second:7.0f} steps/s success {p.success_rate} return {p.return_mean}",
                flush=True,
            )

    result = train(task, load_reward_code(code), config, out, reward_code=code, progress=progress)
    minutes = (time.perf_counter() - start) / 60
    ev = evaluate(out, args.episodes, checkpoint="best", seed=10_000 + args.seed)
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines() if line.strip()]
    first = next((r for r in records if (r["success_rate"] or 0) >= 0.8), None)
    summary = {
        "task": task.id,
        "status": result.status,
        "reason": result.reason,
        "env_steps": result.env_steps,
        "train_minutes": round(minutes, 2),
        "steps_per_second": round(result.steps_per_second),
        "eval_checkpoint_steps": ev.env_steps,
        "eval_episodes": ev.episodes,
        "eval_success_rate": ev.success_rate,
        "first_record_with_train_success_0.8": None
        if first is None
        else {"env_steps": first["env_steps"], "minutes": round(first["wall_seconds"] / 60, 2)},
    }
    (out / "bench_kneel.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="which", required=True)
    g = sub.add_parser("gym")
    g.add_argument("--tasks", nargs="+", default=["gym/HalfCheetah-v5", "gym/Hopper-v5"])
    g.add_argument("--steps", type=int, default=200_000)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--episodes", type=int, default=10)
    g.add_argument("--out", default="/tmp/bench_learning")
    k = sub.add_parser("kneel")
    k.add_argument("--steps", type=int, default=3_000_000)
    k.add_argument("--seed", type=int, default=0)
    k.add_argument("--episodes", type=int, default=32)
    k.add_argument("--records", type=int, default=30)
    k.add_argument("--stop-at", type=float, default=None, help="stop once training success reaches this")
    k.add_argument("--reward", default=str(Path(__file__).parents[1] / "examples/rewards/humanoid_kneel.py"))
    k.add_argument("--out", default="/tmp/bench_kneel")
    k.add_argument(
        "--set", nargs="*", default=[], metavar="KEY=JSON", help="TrainConfig overrides, e.g. reward_normalization=true"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    (gym_main if args.which == "gym" else kneel_main)(args)


if __name__ == "__main__":
    main()
