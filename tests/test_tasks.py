"""Tasks and suites: built-in suites load; bad names and malformed files give one clear line."""

from __future__ import annotations

import pytest
import torch

from synth_reward.envs import all_tasks, get_task, list_suites, load_suite
from synth_reward.errors import UsageError


def test_builtin_suites_cover_the_required_tasks() -> None:
    assert {"posture", "locomotion", "gymnasium"} <= set(list_suites())
    ids = set(all_tasks())
    for required in [
        "humanoid/kneel",
        "humanoid/sit",
        "humanoid/lie_back",
        "humanoid/one_leg",
        "humanoid/arms_up",
        "humanoid/splits",
        "humanoid/crouch",
        "ant/lie_down",
        "ant/raise_leg",
        "humanoid/walk_forward",
        "humanoid/run_backward",
        "ant/forward",
        "hopper/hop_forward",
        "hopper/front_flip",
        "hopper/back_flip",
        "half_cheetah/run_forward",
        "half_cheetah/run_backward",
        "half_cheetah/flip",
        "walker2d/walk",
        "gym/Humanoid-v5",
        "gym/HalfCheetah-v5",
    ]:
        assert required in ids
    for task in load_suite("gymnasium").tasks:
        assert task.human_reward_fn() is not None


def test_task_env_uses_the_task_settings() -> None:
    task = get_task("humanoid/kneel")
    env = task.make_env(2, seed=0)
    assert env.episode_length == 400 and env.termination_fn is None
    out = env.step(torch.zeros(2, env.num_actions))
    assert out.success.dtype == torch.bool


def test_unknown_names_list_choices() -> None:
    with pytest.raises(UsageError, match="humanoid/kneel"):
        get_task("humanoid/dance")
    with pytest.raises(UsageError, match="posture"):
        load_suite("dances")


def test_user_suite_with_success_code(tmp_path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(
        "name: mine\ntasks:\n  - id: hopper/tall\n    morphology: hopper\n    instruction: stand tall\n"
        "    episode_length: 50\n    success_code: |\n      def success(state):\n"
        "          return state.body('torso').height > 1.0\n"
    )
    task = load_suite(str(path)).tasks[0]
    assert task.success_fn()(task.make_env(2).state).tolist() == [True, True]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tasks: [\n", "not valid YAML"),
        ("name: x\n", "'tasks' list"),
        (
            "tasks:\n  - {id: a, morphology: robot, instruction: go, success: ant_forward}\n",
            "unknown morphology 'robot'",
        ),
        (
            "tasks:\n  - {id: a, morphology: ant, instruction: go, success: fly}\n",
            "unknown built-in success check",
        ),
        ("tasks:\n  - {id: a, morphology: ant, instruction: go}\n", "exactly one of success"),
        (
            "tasks:\n  - {id: a, morphology: ant, instruction: go, success: ant_forward, episode_length: 0}\n",
            "episode_length",
        ),
    ],
)
def test_malformed_suite_files(tmp_path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(UsageError, match=message) as info:
        load_suite(str(path))
    assert "\n" not in str(info.value)


def test_user_suites_registered(tmp_path, monkeypatch) -> None:
    from synth_reward.envs import tasks

    monkeypatch.setattr(tasks, "_USER_SUITES", [])
    path = tmp_path / "extra.yaml"
    path.write_text("tasks:\n  - {id: mine/ant-up, morphology: ant, instruction: stand, success: ant_lie_down}\n")
    monkeypatch.setenv("SYNTH_REWARD_SUITES", str(path))
    with pytest.raises(UsageError, match="unknown task"):  # lookups never read the environment
        get_task("mine/ant-up")
    tasks.add_suite_files([path])
    assert get_task("mine/ant-up").morphology == "ant"
    assert "humanoid/kneel" in all_tasks()
    bad = tmp_path / "bad.yaml"
    bad.write_text("tasks: [{id: x}]\n")
    with pytest.raises(UsageError):  # a bad file fails when registered, not at the first lookup
        tasks.add_suite_files([bad])
    assert tasks.user_suite_files() == [path]


def test_user_suites_from_the_environment_on_the_command_line(tmp_path) -> None:
    """SYNTH_REWARD_SUITES is read once by the installed command's entry point."""
    import os
    import subprocess

    path = tmp_path / "extra.yaml"
    path.write_text("tasks:\n  - {id: mine/ant-up, morphology: ant, instruction: stand, success: ant_lie_down}\n")
    env = {**os.environ, "SYNTH_REWARD_SUITES": str(path)}
    out = subprocess.run(["synth-reward", "tasks"], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "mine/ant-up" in out.stdout
