"""Shared fixtures. Tests run in a temporary working folder so nothing lands in the repo."""

from __future__ import annotations

import sys

import pytest


@pytest.fixture(autouse=True)
def _in_tmp_cwd(tmp_path, monkeypatch):
    # Gymnasium's half_cheetah.xml makes MuJoCo write MUJOCO_LOG.TXT into the working folder.
    monkeypatch.chdir(tmp_path)


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
