"""Loading vetted code: a plain function in a namespace of allowed names only."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from synth_reward.sandbox import Rejected, load_reward, load_success
from synth_reward.sandbox.loader import load_namespace

CORPUS = Path(__file__).parent / "sandbox_corpus"
CODE = """
import torch
import math as m

def compute_reward(state, action):
    r = state.com_vel[:, 0]
    r += 1.0
    r -= 0.5 * torch.exp(-(action ** 2).sum(-1)) * m.pi
    return r, {"r": r}
"""


def test_namespace_holds_only_allowed_names():
    ns = load_namespace(CODE, "reward")
    assert "open" not in ns["__builtins__"] and "getattr" not in ns["__builtins__"]
    with pytest.raises(ImportError):
        ns["__builtins__"]["__import__"]("smtplib")
    assert ns["torch"].exp is torch.exp
    for name in ("save", "load", "hub", "ops", "rand", "manual_seed", "jit"):
        assert not hasattr(ns["torch"], name), name
    assert ns["m"].pi == 3.141592653589793


def test_loaded_function_does_not_mutate_inputs():
    fn = load_reward(CODE)
    state = SimpleNamespace(com_vel=torch.ones(4, 3))
    before = state.com_vel.clone()
    reward, parts = fn(state, torch.zeros(4, 2))
    assert torch.equal(state.com_vel, before)
    assert reward.shape == (4,) and set(parts) == {"r"}


def test_hostile_code_raises_rejected():
    with pytest.raises(Rejected) as info:
        load_reward((CORPUS / "hostile" / "os_system.py").read_text())
    assert info.value.finding.stage == "policy" and info.value.exit_code == 1


def test_valid_corpus_runs_in_process_on_real_states():
    from synth_reward.envs.poses import probe_states

    states = probe_states("humanoid", 4)
    for path in sorted((CORPUS / "valid").glob("*.py")):
        header = path.read_text().splitlines()[0]
        if "morphology: humanoid" not in header:
            continue
        if "kind: success" in header:
            out = load_success(path.read_text())(states["standing"])
            assert out.dtype == torch.bool
        else:
            reward, _ = load_reward(path.read_text())(states["standing"], torch.zeros(4, 17))
            assert reward.shape == (4,)


def test_hot_loop_overhead_is_within_noise():
    source = (CORPUS / "valid" / "eureka_humanoid_run.py").read_text().replace("@torch.jit.script\n", "")
    plain: dict = {}
    exec(compile(source, "plain", "exec"), plain)  # noqa: S102 (our own corpus file)
    loaded = load_reward(source)
    body = SimpleNamespace(lin_vel=torch.randn(64, 3), up=torch.randn(64, 3))
    state = SimpleNamespace(body=lambda name: body)
    action = torch.randn(64, 17)

    fns = {"plain": plain["compute_reward"], "loaded": loaded}
    best = {name: float("inf") for name in fns}
    for _ in range(20):  # interleaved, so that a slow moment of the machine hits both alike
        for name, fn in fns.items():
            start = time.perf_counter()
            for _ in range(100):
                fn(state, action)
            best[name] = min(best[name], time.perf_counter() - start)
    ratio = best["loaded"] / best["plain"]
    assert ratio < 1.25, f"loaded function is {ratio:.2f}x slower than the plain one"
