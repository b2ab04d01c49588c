"""The wheel works: built with `python -m build`, installed (not editable) in a fresh virtual environment.

Package data (prompts, suites, morphologies.yaml) must travel in the wheel; an editable install hides a
missing entry in `[tool.setuptools.package-data]`, because it reads the files from the source tree.
The venv sees this machine's site-packages for the heavy dependencies (torch, mujoco) but gets its own
synth_reward from the wheel, and each command runs from a folder outside the source tree; the test checks
that the package it imported is the wheel's.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    # a clean copy of the source: setuptools reuses a build/ folder's old files, which would hide a missing entry
    src = tmp / "src"
    shutil.copytree(
        ROOT,
        src,
        ignore=shutil.ignore_patterns(
            ".git", "build", "dist", "*.egg-info", "runs", ".venv", "__pycache__", ".*_cache"
        ),
    )
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp / "dist"), str(src)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = (tmp / "dist").glob("synth_reward-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for data in (
        "synth_reward/envs/morphologies.yaml",
        "synth_reward/envs/suites/posture.yaml",
        "synth_reward/prompts/system_reward.md",
    ):
        assert data in names, f"{data} missing from the wheel"
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=120)
    subprocess.run(
        [str(venv / "bin/python"), "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return venv


def _run(venv: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(venv / "bin/synth-reward"), *args], capture_output=True, text=True, cwd=cwd, timeout=600)


def test_wheel_imports_its_own_package(wheel_venv: Path, tmp_path: Path) -> None:
    out = subprocess.run(
        [str(wheel_venv / "bin/python"), "-c", "import synth_reward; print(synth_reward.__file__)"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=True,
    ).stdout
    assert str(wheel_venv) in out, out


def test_wheel_envs_check_and_train(wheel_venv: Path, tmp_path: Path) -> None:
    envs = _run(wheel_venv, "envs", cwd=tmp_path)
    assert envs.returncode == 0, envs.stderr
    assert "humanoid" in envs.stdout and "half_cheetah" in envs.stdout
    tasks = _run(wheel_venv, "tasks", cwd=tmp_path)
    assert tasks.returncode == 0 and "humanoid/kneel" in tasks.stdout, tasks.stderr
    reward = tmp_path / "reward.py"
    reward.write_text((ROOT / "examples/rewards/humanoid_kneel.py").read_text())
    check = _run(wheel_venv, "check", str(reward), "--task", "humanoid/kneel", cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
    train = _run(wheel_venv, "train", "--task", "hopper/hop_forward", "--steps", "1024", "--out", "run", cwd=tmp_path)
    assert train.returncode == 0, train.stdout + train.stderr
    assert (tmp_path / "run" / "records.jsonl").exists()
