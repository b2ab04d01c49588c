"""What a small torch or numpy op costs right after a physics call, against a tight loop.

BatchedEnv.step runs a dozen small ops on 32-row arrays after each physics call. On the
2-core VM this project is measured on, an op there costs several times what a tight loop
says, and a torch op several times a numpy op; this script measures both, so that the
choice of numpy for the step's bookkeeping (envs/batched.py) can be checked on any machine.

Table 1: each op alone, after one half_cheetah physics call (N = 32, 2 threads) and the
same two numpy ops, against the op repeated in a tight loop (medians).
Table 2: the same 12 mixed ops after different kinds of work of about a millisecond.

    python benchmarks/op_cost.py [--repeats 60] [--rounds 6]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch

from synth_reward.envs import BatchedEnv

N = 32


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=60, help="physics calls per op and round")
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    torch.set_num_threads(1)
    env = BatchedEnv("half_cheetah", N, seed=0, num_threads=2, episode_length=10**9)
    backend = env.backend
    action = torch.zeros(N, env.num_actions)

    def physics() -> None:
        backend.step(action)

    a = np.random.rand(N, 400).astype(np.float32)
    x = torch.from_numpy(a.copy())
    cols = np.arange(17)
    tcols = torch.from_numpy(cols)
    v = np.random.rand(N)
    mask = np.zeros(N, dtype=bool)
    t = torch.rand(N)
    ops: dict[str, Callable[[], object]] = {
        "torch.zeros(32)": lambda: torch.zeros(N),
        "torch.from_numpy(a)": lambda: torch.from_numpy(v),
        "x.index_select(1, cols)": lambda: x.index_select(1, tcols),
        "float(x.sum())": lambda: float(x.sum()),
        "t.numpy()": lambda: t.numpy(),
        "np.take(a, cols, axis=1)": lambda: np.take(a, cols, axis=1),
        "float(a.sum())": lambda: float(a.sum()),
        "np.zeros(32)": lambda: np.zeros(N),
        "v + 1": lambda: v + 1,
        "v >= 5": lambda: v >= 5,
        "mask | mask": lambda: mask | mask,
        "mask.any()": lambda: mask.any(),
        "mask.copy()": lambda: mask.copy(),
    }
    after: dict[str, list[int]] = {k: [] for k in ops}
    for _ in range(args.rounds):
        for name, op in ops.items():
            for _ in range(args.repeats):
                physics()
                mask.any()
                v + 1  # the same two numpy ops before each measured op
                start = time.perf_counter_ns()
                op()
                after[name].append(time.perf_counter_ns() - start)
    print(f"Table 1: one op after a half_cheetah physics call (N = {N}, 2 threads) vs a tight loop, µs (medians)")
    print(f"{'op':>26} {'after physics':>14} {'tight loop':>11}")
    for name, op in ops.items():
        tight = []
        for _ in range(args.repeats * args.rounds):
            start = time.perf_counter_ns()
            op()
            tight.append(time.perf_counter_ns() - start)
        print(f"{name:>26} {np.median(after[name]) / 1e3:14.1f} {np.median(tight) / 1e3:11.1f}")

    def twelve_ops() -> None:
        s = x.sum()
        x.index_select(1, tcols)
        torch.zeros(N)
        w = v + 1
        m = w > 3
        m.any()
        torch.from_numpy(w)
        float(s)
        np.less(v, w)
        y = x * 2
        y.sum(1)
        np.flatnonzero(m)

    def spin() -> None:
        start = time.perf_counter()
        while time.perf_counter() - start < 0.0012:
            pass

    single = BatchedEnv("half_cheetah", N, seed=0, num_threads=1, episode_length=10**9)
    before: dict[str, Callable[[], object]] = {
        "nothing (tight loop)": lambda: None,
        "physics, 2 threads": physics,
        "physics, 1 thread": lambda: single.backend.step(action),
        "Python busy loop, 1.2 ms": spin,
        "sleep, 1.2 ms": lambda: time.sleep(0.0012),
    }
    times: dict[str, list[int]] = {k: [] for k in before}
    for _ in range(args.rounds):
        for name, work in before.items():
            for _ in range(args.repeats * 3):
                work()
                start = time.perf_counter_ns()
                twelve_ops()
                times[name].append(time.perf_counter_ns() - start)
    print("\nTable 2: 12 small torch and numpy ops after other work, µs (medians)")
    for name in before:
        print(f"{name:>26} {np.median(times[name]) / 1e3:8.1f}")
    env.close()
    single.close()


if __name__ == "__main__":
    main()
