"""Shared fixtures. Tests run in a temporary working folder so nothing lands in the repo."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# What the command-line entry point sets for a command (synth_reward/cli.py): litellm's bundled price table.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


@pytest.fixture(autouse=True)
def _in_tmp_cwd(tmp_path, monkeypatch):
    # Gymnasium's half_cheetah.xml makes MuJoCo write MUJOCO_LOG.TXT into the working folder.
    monkeypatch.chdir(tmp_path)
    from synth_reward.envs import tasks

    monkeypatch.setattr(tasks, "_USER_SUITES", [])  # suite files a test registers stay with that test


def add_suite(path: Path) -> None:
    """Register a suite file for this test (what SYNTH_REWARD_SUITES does for a command)."""
    from synth_reward.envs.tasks import add_suite_files

    add_suite_files([path])


def run_cli(capsys, *argv: str) -> tuple[int, str]:
    """Run `synth-reward ARGV` in this process; (exit status, stdout + stderr)."""
    from synth_reward import cli

    old = sys.argv
    sys.argv = ["synth-reward", *argv]
    try:
        cli.main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        sys.argv = old
    captured = capsys.readouterr()
    return code, captured.out + captured.err
