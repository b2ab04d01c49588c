"""Analyzer: reward reflection (flat, dominant) and failure analysis (a fall) on scripted data."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from synth_reward.envs.morphology import get_morphology
from synth_reward.envs.poses import pose_qpos, pose_state
from synth_reward.envs.tasks import get_task, list_suites, load_suite
from synth_reward.train.analyzer import (
    Analysis,
    analyze_rollouts,
    reflect,
    render_text,
    split_conditions,
)
from synth_reward.train.evaluate import export_npz, load_npz, rollout
from synth_reward.train.records import TrainRecord


def record(i: int, components: dict[str, float], success: float) -> TrainRecord:
    return TrainRecord(
        iteration=i,
        env_steps=1000 * i,
        wall_seconds=i,
        steps_per_second=1000,
        episodes=8,
        return_mean=sum(components.values()),
        length_mean=400,
        success_rate=success,
        components=components,
    )


def scripted_records() -> list[TrainRecord]:
    """`alive` stays flat at 400, `height` grows to dominate the total, `ctrl` is small."""
    return [
        record(i, {"alive": 400.0 + (i % 2), "height": 100.0 * i**2, "ctrl": -5.0 * i}, 0.1 * i) for i in range(1, 6)
    ]


def test_reflection_finds_flat_and_dominant_components():
    r = reflect(scripted_records())
    by_name = {c.name: c for c in r.components}
    assert r.flat == ["alive"] and r.dominant == ["height"]
    assert by_name["height"].values == [100.0, 400.0, 900.0, 1600.0, 2500.0]
    assert (by_name["height"].max, by_name["height"].mean, by_name["height"].min) == (2500.0, 1100.0, 100.0)
    assert by_name["height"].last_share == 2500 / (401 + 2500 + 25)  # alive is 401 at odd points
    assert r.success_rate == [0.1, 0.2, 0.30000000000000004, 0.4, 0.5]


def test_success_check_splits_into_its_conditions():
    names = [name for name, _ in split_conditions(get_task("humanoid/kneel").success_fn())]
    assert names == [
        "state.body('left_shin').height < 0.15",
        "state.body('right_shin').height < 0.15",
        "state.body('torso').up[:, 2] > 0.8",
        "state.body('pelvis').height > 0.3",
    ]


BUILT_IN = [t for suite in list_suites() for t in load_suite(suite).tasks]


@pytest.mark.parametrize("task", BUILT_IN, ids=[t.id for t in BUILT_IN])
def test_condition_labels_name_no_private_helper(task):
    # the labels go into the designer's prompt: `_upright(state)` means nothing there
    parts = split_conditions(task.success_fn())
    for label, _ in parts:
        assert not re.search(r"(?<!\w)_\w", label), label
        assert 0 < len(label) <= 100, label
    # the labels changed, the conditions did not: together they are still the check
    state = pose_state(task.morphology, "standing", num_envs=3, qvel_scale=0.5)
    together = torch.stack([torch.as_tensor(v).expand(3) for v in parts[0][1](state)]).all(dim=0)
    assert torch.equal(together, task.success_fn()(state).to(torch.bool))


def test_condition_labels_spell_helpers_out():
    labels = {t.id: [label for label, _ in split_conditions(t.success_fn())] for t in BUILT_IN}
    assert labels["ant/lie_down"] == ["state.body('torso').height < 0.4", "state.body('torso').up[:, 2] > 0.7"]
    assert labels["ant/forward"] == [
        "x velocity over the last control step of 'torso' > 1.0",
        "state.body('torso').up[:, 2] > 0.0",
    ]
    assert labels["humanoid/walk_forward"][0] == "x velocity over the last control step > 1.0"
    assert "state.body('left_foot').height < 0.1" in labels["humanoid/splits"]  # `left` put back as what it reads


def test_failure_analysis_of_a_fall(tmp_path):
    # a humanoid with zero torque collapses: it falls within the 1.5 s episode and lies on the floor
    task = get_task("humanoid/kneel").model_copy(update={"episode_length": 100})
    out = rollout(task, lambda obs: torch.zeros(obs.batch_size[0], 17), None, 2, max_envs=2)
    data = load_npz(export_npz(tmp_path / "s.npz", out, task))
    f = analyze_rollouts(task, data)
    assert f.episodes == 2 and f.successes == 0 and f.end_reasons == {"time_limit": 2}
    assert f.falls == 2 and 0 < f.fall_time_s < 1.5
    touching = {c.body for c in f.contacts}
    assert {"right_foot", "left_foot"} <= touching and len(touching - {"right_foot", "left_foot"}) >= 1
    assert len(f.conditions) == 4 and max(c.fail_fraction for c in f.conditions) > 0.5
    assert f.best_success_fraction < 0.5 and f.needed_fraction == 0.5
    assert f.action_saturation == 0.0
    text = render_text(
        Analysis(task_id=task.id, run_dir=str(tmp_path), reflection=reflect(scripted_records()), failure=f)
    )
    assert "Falls: 2/2 episodes" in text and "alive: [" in text and "FLAT" in text and "DOMINANT" in text
    assert len(text) < 2500


# ---- falls on scripted trajectories ------------------------------------------------------------------
def scripted(
    targets: list[tuple[dict[str, float], tuple[float, float, float]]], steps: int = 40, hold: int = 40
) -> dict[str, np.ndarray]:
    """Humanoid episodes in the evaluate.py `.npz` layout: from standing, joints and root angles go linearly
    to each target (every frame resting on the floor), then the target is held."""
    morph = get_morphology("humanoid")
    layout = morph.layout()
    episodes = []
    for joints, root in targets:
        frames = [
            pose_qpos(morph, {j: a * v for j, v in joints.items()}, tuple(a * r for r in root), sink=0.005)
            for a in np.linspace(0, 1, steps)
        ]
        episodes.append(frames + frames[-1:] * hold)
    qpos = np.array(episodes)
    e, t = qpos.shape[:2]
    return {
        "qpos": qpos,
        "qvel": np.zeros((e, t, layout.nv)),
        "actions": np.zeros((e, t, layout.num_actions), dtype=np.float32),
        "lengths": np.full(e, t),
        "end_reason": np.array(["time_limit"] * e),
        "dt": morph.dt,
    }


KNEEL_UPRIGHT = ({"right_knee": -90, "left_knee": -90}, (0, 0, 0))
KNEEL_LEANING = ({"right_knee": -90, "left_knee": -90, "right_hip_y": -65, "left_hip_y": -65}, (0, 65, 0))
"""On the knees, the torso leant 65 degrees forward and off the floor (its up axis z 0.42)."""
ON_THE_BACK = ({}, (0, -95, 0))
"""Collapsed backwards: lying on the back, head and torso on the floor."""


def test_kneeling_is_no_fall_and_a_collapse_onto_the_torso_is():
    data = scripted([KNEEL_UPRIGHT, KNEEL_LEANING, ON_THE_BACK])
    kneel = get_task("humanoid/kneel")
    f = analyze_rollouts(kneel, data)
    assert f.successes == 1 and f.best_episode == 0  # the upright kneel is what the task asks for
    assert f.falls == 1 and 0 < f.fall_time_s < 80 * get_morphology("humanoid").dt
    assert f.fall_rule == "torso on the floor while the success check failed"
    assert "Falls: 1/3 episodes" in render_text(Analysis(task_id=kneel.id, run_dir="-", reflection=None, failure=f))
    for one in (KNEEL_UPRIGHT, KNEEL_LEANING):
        assert analyze_rollouts(kneel, scripted([one])).falls == 0
    assert analyze_rollouts(kneel, scripted([ON_THE_BACK])).falls == 1
    # lying on the back is no fall where it is the task
    lie = analyze_rollouts(get_task("humanoid/lie_back"), scripted([ON_THE_BACK]))
    assert lie.successes == 1 and lie.falls == 0


def test_an_episode_ended_by_the_healthy_rule_is_a_fall():
    data = scripted([KNEEL_UPRIGHT, KNEEL_UPRIGHT])
    data["end_reason"] = np.array(["terminated", "time_limit"])
    f = analyze_rollouts(get_task("humanoid/walk_forward"), data)
    assert f.falls == 1 and f.fall_time_s == pytest.approx(80 * get_morphology("humanoid").dt)
    assert f.fall_rule.startswith("episode ended by the healthy rule")
