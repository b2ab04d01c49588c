"""The installed `synth-reward` command: listings work, bad input gives one line and exit 2."""

from __future__ import annotations

import subprocess
import sys

import pytest


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "synth_reward.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_envs_lists_and_describes() -> None:
    out = run("envs")
    assert out.returncode == 0 and "humanoid" in out.stdout and "half_cheetah" in out.stdout
    out = run("envs", "humanoid")
    assert out.returncode == 0 and "left_knee" in out.stdout and "state.body(name)" in out.stdout


def test_envs_demo_steps() -> None:
    out = run("envs", "--steps", "5")
    assert out.returncode == 0 and "env-steps/s" in out.stdout


def test_tasks_lists_suites() -> None:
    out = run("tasks")
    assert out.returncode == 0 and "humanoid/kneel" in out.stdout and "gym/Hopper-v5" in out.stdout


def _assert_usage_error(out: subprocess.CompletedProcess, *needles: str) -> None:
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr + out.stdout
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, out.stderr
    for needle in needles:
        assert needle in lines[0]


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (("envs", "octopus"), ("unknown morphology 'octopus'", "humanoid")),
        (("tasks", "--suite", "dances"), ("unknown suite 'dances'", "posture")),
    ],
)
def test_unknown_names(args, needles) -> None:
    _assert_usage_error(run(*args), *needles)


def test_malformed_suite_file(tmp_path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("tasks:\n  - {id: a, morphology: ant, instruction: go, success: fly}\n")
    _assert_usage_error(run("tasks", "--suite", str(path)), "unknown built-in success check 'fly'")


def test_mjcf_that_does_not_compile(tmp_path) -> None:
    (tmp_path / "broken.xml").write_text("<mujoco><worldbody><body name='a'><geom type='sphere'/></body>")
    (tmp_path / "robots.yaml").write_text(
        "broken:\n  mjcf: broken.xml\n  frame_skip: 5\n  reset_noise_scale: 0.1\n  root_body: a\n"
    )
    _assert_usage_error(
        run("envs", "broken", "--morphologies", str(tmp_path / "robots.yaml")),
        "broken.xml does not compile",
    )


def test_user_morphology_file_adds_a_robot(tmp_path) -> None:
    (tmp_path / "ball.xml").write_text(
        "<mujoco><worldbody><geom name='floor' type='plane' size='5 5 .1'/>"
        "<body name='ball' pos='0 0 1'><freejoint/><geom type='sphere' size='.1'/></body></worldbody></mujoco>"
    )
    (tmp_path / "robots.yaml").write_text(
        "ball:\n  mjcf: ball.xml\n  frame_skip: 2\n  reset_noise_scale: 0.01\n  root_body: ball\n"
        "  description: a ball\n"
    )
    out = run("envs", "ball", "--morphologies", str(tmp_path / "robots.yaml"))
    assert out.returncode == 0 and "ball" in out.stdout and "Bodies (B = 1)" in out.stdout
