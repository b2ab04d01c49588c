"""Time to skill: minutes and env steps until a reward's training reaches a success rate, per seed.

For each configuration and seed, trains TASK with the reward file (default: the hand-written kneel reward)
under the morphology's default training settings, stopping at the first record point whose training
success rate reaches --target (default 0.8), or at --max-steps. Then evaluates that checkpoint for
--episodes full-length deterministic episodes from the task's standard reset distribution, judged by the
task's own check. Prints one line per run and a summary (median and spread over seeds) per configuration.

Configurations run one after the other in the same invocation, so they share the machine's state:
  default       the default training settings (early ending on: train/early_end.py)
  full_episodes the same with early_end_s=None (every training episode runs its full length)

    python benchmarks/bench_time_to_skill.py humanoid/kneel --seeds 3
    python benchmarks/bench_time_to_skill.py humanoid/kneel --seeds 1 --configs default full_episodes --max-steps 1000000
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_envs import cpu_name  # noqa: E402

from synth_reward.envs.tasks import get_task  # noqa: E402
from synth_reward.train.config import default_config  # noqa: E402
from synth_reward.train.evaluate import evaluate  # noqa: E402
from synth_reward.train.reward import load_reward_code  # noqa: E402
from synth_reward.train.trainer import train  # noqa: E402

CONFIGS: dict[str, dict[str, Any]] = {"default": {}, "full_episodes": {"early_end_s": None}}
"""TrainConfig overrides of each configuration."""
KNEEL = Path(__file__).parents[1] / "examples/rewards/humanoid_kneel.py"


def run(task_id: str, code: str, config_name: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    task = get_task(task_id)
    out = Path(args.out) / f"{config_name}_seed{seed}"
    shutil.rmtree(out, ignore_errors=True)
    config = default_config(
        task.morphology,
        total_steps=args.max_steps,
        seed=seed,
        stop_success_rate=args.target,
        num_records=args.records,
        tensorboard=False,
        **CONFIGS[config_name],
    )
    start = time.perf_counter()
    result = train(task, load_reward_code(code), config, out, reward_code=code)
    minutes = (time.perf_counter() - start) / 60
    ev = evaluate(out, args.episodes, checkpoint="last", seed=10_000 + seed)
    reached = result.reason.startswith("stopped early") if result.reason else False
    return {
        "config": config_name,
        "seed": seed,
        "reached_target": reached,
        "env_steps": result.env_steps,
        "minutes": round(minutes, 2),
        "steps_per_second": round(result.steps_per_second),
        "eval_episodes": ev.episodes,
        "eval_success_rate": ev.success_rate,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("task", nargs="?", default="humanoid/kneel")
    parser.add_argument("--reward", default=str(KNEEL), help="reward file (compute_reward)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--configs", nargs="+", default=["default"], choices=sorted(CONFIGS))
    parser.add_argument("--target", type=float, default=0.8, help="training success rate that counts as skill")
    parser.add_argument("--max-steps", type=int, default=3_000_000)
    parser.add_argument("--episodes", type=int, default=32)
    parser.add_argument("--records", type=int, default=60, help="record points over --max-steps (the stop check)")
    parser.add_argument("--out", default="/tmp/bench_time_to_skill")
    args = parser.parse_args()
    torch.set_num_threads(1)
    code = Path(args.reward).read_text()
    print(f"processor: {cpu_name()}; task {args.task}; reward {args.reward}; target {args.target}", flush=True)
    rows = []
    for name in args.configs:
        for seed in range(args.seeds):
            row = run(args.task, code, name, seed, args)
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(
        f"\n{'config':<14} {'seeds':>5} {'reached':>7} {'minutes (median, range)':>26} {'env steps (median)':>19}"
        f" {'eval success (each)':>20}"
    )
    for name in args.configs:
        mine = [r for r in rows if r["config"] == name]
        minutes = [r["minutes"] for r in mine]
        print(
            f"{name:<14} {len(mine):>5} {sum(r['reached_target'] for r in mine):>7} "
            f"{statistics.median(minutes):>9.2f} ({min(minutes):.2f}-{max(minutes):.2f})".ljust(58)
            + f"{statistics.median(r['env_steps'] for r in mine):>12,.0f}   "
            + " ".join(f"{r['eval_success_rate']:.2f}" for r in mine)
        )


if __name__ == "__main__":
    main()
