"""`synth-reward check`: exit 0 accepted, 1 rejected, 2 usage errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from synth_reward.cli import app, main

CORPUS = Path(__file__).parent / "sandbox_corpus"
runner = CliRunner()


def test_accepted_prints_components_and_time():
    result = runner.invoke(app, ["check", str(CORPUS / "valid" / "eureka_humanoid_run.py"), "--env", "humanoid"])
    assert result.exit_code == 0, result.output
    assert "velocity_reward" in result.output and "ms at N=64" in result.output


def test_rejected_prints_stage_and_reason():
    result = runner.invoke(app, ["check", str(CORPUS / "hostile" / "os_system.py"), "--env", "humanoid"])
    assert result.exit_code == 1
    assert "rejected at stage policy line 2" in result.output and "import os" in result.output


def test_json_and_task_and_success_kind():
    result = runner.invoke(
        app, ["check", str(CORPUS / "valid" / "success_kneel.py"), "--task", "gym/Humanoid-v5", "--json"]
    )
    assert result.exit_code == 0, result.output
    verdict = json.loads(result.output)
    assert verdict["accepted"] and verdict["kind"] == "success" and verdict["morphology"] == "humanoid"


@pytest.mark.parametrize(
    "args",
    [
        ["--env", "robot"],
        ["--task", "no/such-task"],
        [],
        ["--env", "humanoid", "--kind", "policy"],
    ],
)
def test_usage_errors_exit_2(args, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["synth-reward", "check", str(CORPUS / "valid" / "ant_forward.py"), *args])
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 2


def test_missing_file_exits_2(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "argv", ["synth-reward", "check", str(tmp_path / "none.py"), "--env", "humanoid"])
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 2
