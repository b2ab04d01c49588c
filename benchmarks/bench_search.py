"""Compute where it pays: the default search (successive halving, winner's own policy) against Eureka's protocol.

For each task, runs the main command twice with the offline designer, one after the other:
  halving  the defaults: successive halving over each iteration's K candidates, the winner's own policy
           evaluated on fresh episodes;
  eureka   every candidate trains the full --steps (`--search full`), then the best reward is retrained
           on a fresh seed for --steps (`--final-seeds 1 --final-steps STEPS`) and that policy is evaluated.
Prints, per task and protocol, the env steps all training took (from each run's records), the minutes, and
the final success rate, then the ratio of env steps (halving / eureka; the goal is at most 0.5) where the
halving run's success is at least the Eureka run's.

Every (task, protocol) run has its own folder, OUT/PROTOCOL/TASK: run the same command again after a stop
(Ctrl-C, a reboot, the end of a working day) and finished runs are read back, an unfinished one is continued
with `synth-reward resume` (nothing trained twice), so the five-task comparison (hours on 2 cores) can be
gathered in several sittings. The minutes are those of the invocations that ended (a killed one's are lost;
the row says `resumed`).

    python benchmarks/bench_search.py --tasks humanoid/kneel --iterations 1
    python benchmarks/bench_search.py            # the five tasks of the time-to-skill issue, I = 2, 1.2 M
    python benchmarks/bench_search.py --tasks humanoid/arms_up --protocols eureka   # one side of one task
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from bench_envs import cpu_name  # noqa: E402

TASKS = ["humanoid/kneel", "humanoid/sit", "humanoid/arms_up", "ant/raise_leg", "hopper/front_flip"]
INSTRUCTIONS = {
    "humanoid/kneel": "make the humanoid kneel",
    "humanoid/sit": "make the humanoid sit on the floor",
    "humanoid/arms_up": "make the humanoid raise both arms",
    "ant/raise_leg": "make the ant raise one leg",
    "hopper/front_flip": "make the hopper do a front flip",
}


def env_steps(run: Path) -> int:
    """Env steps every training of the run took: the last record of each records.jsonl."""
    total = 0
    for records in run.rglob("records.jsonl"):
        lines = [line for line in records.read_text().splitlines() if line.strip()]
        if lines:
            total += int(json.loads(lines[-1])["env_steps"])
    return total


def one(task: str, protocol: str, args: argparse.Namespace) -> dict[str, Any]:
    out = Path(args.out) / protocol / task.replace("/", "-")
    extra = ["--search", "full", "--final-seeds", "1", "--final-steps", str(args.steps)] if protocol == "eureka" else []
    runs = sorted(p for p in out.glob("*") if (p / "run.json").is_file()) if out.exists() else []
    book = out / "bench.json"
    spent = json.loads(book.read_text())["minutes"] if book.is_file() else 0.0
    resumed = bool(runs) and not (runs[-1] / "summary.json").is_file()
    if runs and not resumed:
        run = runs[-1]
    else:
        if resumed:
            argv = [sys.executable, "-m", "synth_reward.cli", "resume", str(runs[-1])]
        else:
            argv = [sys.executable, "-m", "synth_reward.cli", INSTRUCTIONS[task], "--steps", str(args.steps)]
            argv += ["-k", str(args.samples), "-i", str(args.iterations), "--no-video", "--out", str(out), *extra]
        start = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, text=True)
        spent += (time.perf_counter() - start) / 60
        out.mkdir(parents=True, exist_ok=True)
        book.write_text(json.dumps({"minutes": spent}))
        if proc.returncode != 0:
            return {"task": task, "protocol": protocol, "error": proc.stderr.strip()[-500:]}
        (run,) = [p for p in out.glob("*") if (p / "run.json").is_file()]
    summary = json.loads((run / "summary.json").read_text())
    final = summary.get("final") or {}
    return {
        "task": task,
        "protocol": protocol,
        "env_steps": env_steps(run),
        "minutes": round(spent, 2),
        "resumed": resumed,
        "success": final.get("success_mean"),
        "final_mode": final.get("mode"),
        "run": str(run),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=TASKS, choices=TASKS)
    parser.add_argument("--steps", type=int, default=1_200_000)  # the main command's default
    parser.add_argument("--samples", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=2)
    parser.add_argument("--out", default="runs/bench_search")
    parser.add_argument(
        "--protocols",
        nargs="+",
        default=["halving", "eureka"],
        choices=["halving", "eureka"],
        help="run only these sides of each task (default: both; the ratio needs both)",
    )
    args = parser.parse_args()
    print(f"processor: {cpu_name()}; K={args.samples} I={args.iterations} steps={args.steps}", flush=True)
    rows = []
    for task in args.tasks:
        for protocol in args.protocols:
            row = one(task, protocol, args)
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(
        f"\n{'task':<20} {'halving steps':>14} {'eureka steps':>13} {'ratio':>6} {'success h / e':>14}"
        f" {'minutes h / e':>14}"
    )
    for task in args.tasks:
        h, e = (
            next((r for r in rows if r["task"] == task and r["protocol"] == p), None) for p in ("halving", "eureka")
        )
        if h is None or e is None:
            side = h or e
            print(
                f"{task:<20} {side['protocol']} only: {side.get('env_steps', 0):,} steps, success {side.get('success')}"
            )
            continue
        if "error" in h or "error" in e:
            print(f"{task:<20} error: {h.get('error') or e.get('error')}")
            continue
        print(
            f"{task:<20} {h['env_steps']:>14,} {e['env_steps']:>13,} {h['env_steps'] / e['env_steps']:>6.2f} "
            f"{h['success']:>6.0%} / {e['success']:<5.0%} {h['minutes']:>6.1f} / {e['minutes']:<6.1f}"
        )


if __name__ == "__main__":
    main()
