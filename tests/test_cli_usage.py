"""Bad input to the installed `synth-reward` command: one or two lines, exit status 2, no traceback, nothing written.

These run the console script a user runs (a subprocess of the installed entry point), not the Typer app
in-process: typer 0.17+ vendors its own click, and an in-process runner hid that the CLI no longer caught
its usage errors.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from synth_reward import __version__

EXE = shutil.which("synth-reward")
KNEEL = "make the humanoid kneel"
REWARD = str(Path(__file__).parents[1] / "examples/rewards/humanoid_kneel.py")

BAD = [
    # unknown options and commands, missing arguments
    ["--bogus"],
    ["train", "--bogus"],
    [KNEEL, "--bogus"],
    ["eval"],
    ["analyze"],
    ["check"],
    ["resume"],
    ["show"],
    # every numeric option at 0 and negative (where 0 is not a valid value, 0; always a negative)
    [KNEEL, "--samples", "0"],
    [KNEEL, "-k", "-1"],
    [KNEEL, "--iterations", "0"],
    [KNEEL, "-i", "-3"],
    [KNEEL, "--steps", "0"],
    [KNEEL, "--steps", "-5"],
    [KNEEL, "--final-seeds", "-1"],
    [KNEEL, "--final-steps", "0"],
    [KNEEL, "--final-steps", "-1"],
    [KNEEL, "--episodes", "0"],
    [KNEEL, "--episodes", "-2"],
    [KNEEL, "--num-envs", "0"],
    [KNEEL, "--num-envs", "-8"],
    [KNEEL, "--spend-cap", "0"],
    [KNEEL, "--spend-cap", "-1"],
    [KNEEL, "--seed", "-1"],
    [KNEEL, "--steps", "many"],
    [KNEEL, "--search", "bogus"],
    [KNEEL, "--search", ""],
    [KNEEL, "--final-episodes", "0"],
    [KNEEL, "--final-episodes", "-1"],
    ["train", "--task", "humanoid/kneel", "--steps", "0"],
    ["train", "--task", "humanoid/kneel", "--steps", "-1"],
    ["train", "--task", "humanoid/kneel", "--num-envs", "0"],
    ["train", "--task", "humanoid/kneel", "--seed", "-1"],
    ["train", "--task", "humanoid/kneel", "--stop-at", "-0.1"],
    ["train", "--task", "humanoid/kneel", "--stop-at", "2"],
    # physics backends (the gpu extra's absence: tests/test_warp.py; a model feature Warp cannot run: same)
    ["train", "--task", "humanoid/kneel", "--backend", "tpu"],
    ["train", "--task", "humanoid/kneel", "--device", "tpu"],
    ["eval", "RUNS", "--backend", "tpu"],
    [KNEEL, "--backend", "tpu"],
    [KNEEL, "--device", "quantum"],
    *(
        []
        if torch.cuda.is_available()
        else [
            ["train", "--task", "humanoid/kneel", "--device", "cuda"],
            ["train", "--task", "humanoid/kneel", "--backend", "warp", "--device", "cuda"],
            ["eval", "RUNS", "--device", "cuda"],
            [KNEEL, "--backend", "warp", "--device", "cuda"],
        ]
    ),
    ["eval", "RUNS/none", "--episodes", "0"],
    ["eval", "RUNS/none", "--seed", "-1"],
    ["analyze", "RUNS/none", "--episodes", "0"],
    ["check", REWARD, "--env", "humanoid", "--num-envs", "0"],
    ["envs", "--steps", "-1"],
    # bad names and files
    [""],
    ["   "],
    ["x" * 100_000],
    ["make the robot do something"],
    ["envs", "octopus"],
    ["tasks", "--suite", "no_such_suite"],
    ["train", "--task", "humanoid/fly"],
    ["train", "--task", "humanoid/kneel", "--reward", "RUNS/missing.py"],
    ["train", "--task", "humanoid/kneel", "--reward", "RUNS"],
    [KNEEL, "--success", "RUNS/missing.py"],
    ["check", "RUNS/missing.py", "--env", "humanoid"],
    ["check", "RUNS", "--env", "humanoid"],
    ["eval", "RUNS/none"],
    ["analyze", "RUNS/none"],
    ["resume", "no-such-run"],
    ["show", "no-such-run"],
    # batch
    ["batch"],
    ["batch", "no_such_suite"],
    ["batch", "posture", "--tasks", "humanoid/fly"],
    ["batch", "posture", "--workers", "0"],
    ["batch", "posture", "--workers", "-1"],
    ["batch", "posture", "--cpus-per-run", "0"],
    ["batch", "posture", "--steps", "0"],
    ["batch", "posture", "-k", "0"],
    ["batch", "posture", "--executor", "slurm"],
    ["batch", "posture", "--ray-address", "auto"],
    ["batch", "posture", "--executor", "ray", "--ray-address", "127.0.0.1:1"],
    ["batch", "posture", "--executor", "ray", "--ray-address", "not-an-address"],
    ["batch", "posture", "--resume", "RUNS"],
    ["batch", "--resume", "RUNS"],
    ["batch", "--table", "no-such-batch"],
    ["batch", "--resume", "RUNS", "--json"],
    # feedback sessions, the review page, the HTML report
    ["feedback"],
    ["review"],
    ["report"],
    ["feedback", "no-such-run"],
    ["feedback", "no-such-run", "--text", ""],
    ["feedback", "no-such-run", "--text", "   "],
    ["feedback", "no-such-run", "--act", "dance"],
    ["feedback", "no-such-run", "--act", "edit_success", "--success", "RUNS/missing.py"],
    ["review", "no-such-run"],
    ["review", "no-such-run", "--port", "0"],
    ["review", "no-such-run", "--port", "70000"],
    ["report", "no-such-run"],
    ["report", "no-such-run", "--runs", "RUNS"],
]


def _run(args: list[str], tmp: Path) -> subprocess.CompletedProcess[str]:
    assert EXE, "the synth-reward console script is not installed (pip install -e .)"
    args = [a.replace("RUNS", str(tmp / "runs")) for a in args]  # (cwd is tmp: default run folders land there)
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")} | {"SYNTH_REWARD_MODEL": ""}
    return subprocess.run([EXE, *args], capture_output=True, text=True, cwd=tmp, env=env, timeout=120)


@pytest.mark.parametrize("args", BAD, ids=lambda a: " ".join(a)[:60] or "empty")
def test_bad_input_is_one_line_and_exit_2(args: list[str], tmp_path: Path) -> None:
    (tmp_path / "runs").mkdir()
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    proc = _run(args, tmp_path)
    output = (proc.stdout + proc.stderr).strip()
    assert proc.returncode == 2, f"exit {proc.returncode}: {output[-2000:]}"
    assert "Traceback" not in output
    lines = [line for line in output.splitlines() if line.strip()]
    assert 1 <= len(lines) <= 2, output[-2000:]
    assert "error" in lines[-1].lower(), lines
    after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert after == before, "bad input wrote files"


def test_version() -> None:
    assert EXE
    proc = subprocess.run([EXE, "--version"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"synth-reward {__version__}"
