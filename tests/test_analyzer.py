"""Analyzer: reward reflection (flat, dominant) and failure analysis (a fall) on scripted data."""

from __future__ import annotations

import torch

from synth_reward.envs.tasks import get_task
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
    return TrainRecord(iteration=i, env_steps=1000 * i, wall_seconds=i, steps_per_second=1000, episodes=8,
                       return_mean=sum(components.values()), length_mean=400, success_rate=success,
                       components=components)


def scripted_records() -> list[TrainRecord]:
    """`alive` stays flat at 400, `height` grows to dominate the total, `ctrl` is small."""
    return [record(i, {"alive": 400.0 + (i % 2), "height": 100.0 * i ** 2, "ctrl": -5.0 * i}, 0.1 * i)
            for i in range(1, 6)]


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
    assert names == ["state.body('left_shin').height < 0.15", "state.body('right_shin').height < 0.15",
                     "_upright(state) > 0.8", "state.body('pelvis').height > 0.3"]


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
    text = render_text(Analysis(task_id=task.id, run_dir=str(tmp_path), reflection=reflect(scripted_records()),
                                failure=f))
    assert "Falls: 2/2 episodes" in text and "alive: [" in text and "FLAT" in text and "DOMINANT" in text
    assert len(text) < 2500
