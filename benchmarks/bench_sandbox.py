"""Sandbox benchmark: time to a verdict per candidate, and the loaded reward's hot-loop overhead.

    python benchmarks/bench_sandbox.py [--morphology humanoid] [--num-envs 64]

Verdict times: the first (cold: starts the isolated worker, imports torch, builds the
probe states), then every corpus candidate warm (each in a fresh fork of the worker),
split by the stage that decided. Hot loop: the same reward compiled as a plain module
function and through `load_reward`, called on real probe states; the ratio should be 1.
"""

from __future__ import annotations

import argparse
import re
import statistics
import time
from pathlib import Path

import torch

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "sandbox_corpus"


def verdict_times(morphology: str, num_envs: int) -> None:
    from synth_reward.sandbox import vet_code
    from synth_reward.sandbox.runner import ProbeRunner

    runner = ProbeRunner()
    first = (CORPUS / "valid" / "eureka_humanoid_run.py").read_text()
    start = time.perf_counter()
    verdict = vet_code(first, morphology, num_envs=num_envs, runner=runner)
    print(
        f"cold verdict (worker start + torch import + probe states): {time.perf_counter() - start:.2f} s "
        f"[{verdict.stage}]"
    )
    by_stage: dict[str, list[float]] = {}
    for path in sorted(CORPUS.glob("*/*.py")):
        header = path.read_text().splitlines()[0]
        morph = re.search(r"morphology: (\w+)", header)
        kind = "success" if "kind: success" in header else "reward"
        start = time.perf_counter()
        verdict = vet_code(
            path.read_text(), morph.group(1) if morph else morphology, kind=kind, num_envs=num_envs, runner=runner
        )
        by_stage.setdefault(verdict.stage, []).append(time.perf_counter() - start)
    runner.close()
    print(f"warm verdicts over {sum(map(len, by_stage.values()))} corpus candidates (N={num_envs}):")
    for stage, times in sorted(by_stage.items()):
        print(
            f"  {stage:>9}: n={len(times):2d}  median {statistics.median(times) * 1e3:8.1f} ms  "
            f"max {max(times) * 1e3:8.1f} ms"
        )


def hot_loop(morphology: str, num_envs: int) -> None:
    from synth_reward.envs.poses import probe_states
    from synth_reward.sandbox import load_reward

    torch.set_num_threads(1)
    source = (CORPUS / "valid" / "eureka_humanoid_run.py").read_text().replace("@torch.jit.script\n", "")
    plain: dict = {}
    exec(compile(source, "plain_module.py", "exec"), plain)  # noqa: S102 (our own corpus file)
    functions = {"plain": plain["compute_reward"], "loaded": load_reward(source)}
    state = probe_states(morphology, num_envs)["rollout"]
    action = torch.zeros(num_envs, 17)
    best = {name: float("inf") for name in functions}
    for _ in range(7):  # interleave so that machine noise hits both alike
        for name, fn in functions.items():
            start = time.perf_counter()
            for _ in range(2000):
                fn(state, action)
            best[name] = min(best[name], (time.perf_counter() - start) / 2000)
    print(
        f"hot loop at N={num_envs}: plain {best['plain'] * 1e6:.1f} us/call, loaded {best['loaded'] * 1e6:.1f} "
        f"us/call, ratio {best['loaded'] / best['plain']:.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--morphology", default="humanoid")
    parser.add_argument("--num-envs", type=int, default=64)
    args = parser.parse_args()
    verdict_times(args.morphology, args.num_envs)
    hot_loop(args.morphology, args.num_envs)


if __name__ == "__main__":
    main()
