"""Task resolution: sentences to built-in tasks, free-form instructions, bad input."""

from __future__ import annotations

import pytest

from synth_reward.agent.resolve import core_phrase, resolve_task
from synth_reward.envs import all_tasks
from synth_reward.errors import UsageError


@pytest.mark.parametrize(
    "sentence, task_id",
    [
        ("make the humanoid kneel", "humanoid/kneel"),
        ("Make the Humanoid kneel down!", "humanoid/kneel"),
        ("humanoid: get on its knees", "humanoid/kneel"),
        ("humanoid/kneel", "humanoid/kneel"),
        ("make the half-cheetah do a flip", "half_cheetah/flip"),
        ("make the HalfCheetah run backwards", "half_cheetah/run_backward"),
        ("the walker should walk", "walker2d/walk"),
        ("make the ant move forward", "ant/forward"),
        ("make the ant run forward as fast as possible without flipping over", "gym/Ant-v5"),
        ("make the hopper do a backflip", "hopper/back_flip"),
    ],
)
def test_builtin_tasks(sentence, task_id):
    resolved = resolve_task(sentence)
    assert not resolved.free_form and resolved.task_id == task_id
    assert resolved.success_source == "builtin" and resolved.success_text
    assert resolved.to_task().id == task_id


def test_every_builtin_instruction_resolves_to_its_task():
    for task in all_tasks().values():
        assert resolve_task(task.instruction).task_id == task.id
        for alias in task.aliases:
            assert (
                resolve_task(alias, env=task.morphology).task.instruction == task.instruction
                or resolve_task(alias, env=task.morphology).task.success == task.success
            )


def test_free_form_keeps_the_sentence_and_robot():
    resolved = resolve_task("  make the humanoid kneel and raise both arms ")
    assert resolved.free_form and resolved.morphology == "humanoid"
    assert resolved.instruction == "make the humanoid kneel and raise both arms"
    assert resolved.success_source == "to_write" and resolved.success_text is None
    assert resolved.task_id.startswith("free/humanoid-")
    with pytest.raises(UsageError, match="no success check"):
        resolved.to_task()
    frozen = resolved.with_success(
        '"""Both hands above the head."""\ndef success(state):\n    return state.body("torso").height > 0\n',
        source="to_write",
    )
    task = frozen.to_task()
    assert task.success_code and task.morphology == "humanoid" and task.termination == "none"
    assert frozen.success_text == "Both hands above the head."


def test_env_flag_picks_the_robot():
    assert resolve_task("kneel", env="humanoid").task_id == "humanoid/kneel"
    assert resolve_task("dance", env="ant").free_form
    with pytest.raises(UsageError, match="names the humanoid but --env says ant"):
        resolve_task("make the humanoid kneel", env="ant")


def test_success_file(tmp_path):
    path = tmp_path / "success.py"
    path.write_text('def success(state):\n    """Torso low."""\n    return state.body("torso").height < 0.5\n')
    resolved = resolve_task("make the humanoid kneel", success_file=path)
    assert resolved.success_source == "file" and resolved.success_text == "Torso low."
    assert resolved.to_task().success_code is not None
    empty = tmp_path / "empty.py"
    empty.write_text("  \n")
    with pytest.raises(UsageError, match="is empty"):
        resolve_task("make the humanoid kneel", success_file=empty)
    with pytest.raises(UsageError, match="does not exist"):
        resolve_task("make the humanoid kneel", success_file=tmp_path / "missing.py")


@pytest.mark.parametrize(
    "sentence, env, message",
    [
        ("", None, "instruction is empty"),
        ("   \n\t", None, "instruction is empty"),
        ("kneel", None, "names no robot.*humanoid.*ant"),
        ("make the ant and the hopper dance", None, "more than one robot"),
        ("kneel", "octopus", "octopus"),
    ],
)
def test_bad_input_is_one_line_usage_error(sentence, env, message):
    with pytest.raises(UsageError, match=message) as err:
        resolve_task(sentence, env=env)
    assert "\n" not in str(err.value) and err.value.exit_code == 2


def test_core_phrase():
    assert core_phrase("Please, make the half cheetah run!") == "run"


def test_resolved_task_survives_a_json_roundtrip(tmp_path):
    """The loop saves the resolved task in the run folder and loads it on resume."""
    from synth_reward.agent.resolve import ResolvedTask
    from synth_reward.agent.store import RunStore

    store = RunStore.create(tmp_path, "x")
    for resolved in (
        resolve_task("make the humanoid kneel"),
        resolve_task("make the ant dance").with_success("def success(state):\n    return state.step > 0\n"),
    ):
        store.write_json("task.json", resolved)
        back = ResolvedTask.model_validate(store.read_json("task.json"))
        assert back == resolved and back.summary() == resolved.summary()
    assert "built-in task humanoid/kneel; success: Both knees" in resolve_task("make the humanoid kneel").summary()
