"""The offline template designer: every template compiles, keeps the contract, and ranks its pose first."""

from __future__ import annotations

import pytest
import torch

from synth_reward.agent import offline
from synth_reward.agent.offline import (
    LABEL,
    OfflineDesigner,
    Params,
    adjust,
    params_from_code,
    supported_tasks,
)
from synth_reward.agent.resolve import resolve_task
from synth_reward.envs import all_tasks, get_morphology
from synth_reward.envs.poses import POSES, pose_state
from synth_reward.errors import UsageError

POSE_OF = {
    "humanoid/kneel": "kneeling",
    "humanoid/sit": "sitting",
    "humanoid/lie_back": "lying_back",
    "humanoid/one_leg": "one_leg",
    "humanoid/arms_up": "arms_up",
    "humanoid/splits": "splits",
    "humanoid/crouch": "crouching",
    "ant/lie_down": "lying",
    "ant/raise_leg": "one_leg_up",
}
"""Each posture task and the hand-made pose where its success check holds."""


def _load(code: str):
    namespace: dict = {}
    exec(compile(code, "<offline>", "exec"), namespace)  # our own generated code
    return namespace["compute_reward"]


def _check_contract(fn, state, num_actions):
    action = torch.zeros(state.num_envs, num_actions)
    reward, comps = fn(state, action)
    assert reward.shape == (state.num_envs,) and torch.isfinite(reward).all()
    assert comps and all(v.shape == (state.num_envs,) and torch.isfinite(v).all() for v in comps.values())
    assert torch.allclose(reward, sum(comps.values()))  # the total is the sum of the named terms
    return reward


def test_every_posture_and_locomotion_task_has_a_template():
    suites = {t.id for t in all_tasks().values() if not t.id.startswith("gym/")}
    assert suites <= set(supported_tasks())


@pytest.mark.parametrize("task_id", sorted({t.id for t in supported_tasks().values() if not t.id.startswith("gym/")}))
def test_template_code_keeps_the_contract(task_id):
    task = all_tasks()[task_id]
    morph = get_morphology(task.morphology)
    candidates = OfflineDesigner().propose(task, 3)
    assert len({c.code for c in candidates}) == 3 and all(LABEL in c.code for c in candidates)
    poses = list(POSES.get(task.morphology, {"standing": {}}))
    for cand in candidates:
        assert "import os" not in cand.code and params_from_code(cand.code) == cand.params
        fn = _load(cand.code)
        for pose in poses[:3]:
            _check_contract(
                fn, pose_state(task.morphology, pose, num_envs=4, qvel_scale=0.5), morph.layout().num_actions
            )


@pytest.mark.parametrize("task_id, pose", sorted(POSE_OF.items()))
def test_posture_template_prefers_its_pose(task_id, pose):
    task = all_tasks()[task_id]
    fn = _load(OfflineDesigner().propose(task, 1)[0].code)
    n = get_morphology(task.morphology).layout().num_actions
    target = _check_contract(fn, pose_state(task.morphology, pose, num_envs=2), n)
    assert task.success_fn()(pose_state(task.morphology, pose, num_envs=2)).all()  # the pose is a success
    for other in POSES[task.morphology]:
        if other != pose:
            assert (target > _check_contract(fn, pose_state(task.morphology, other, num_envs=2), n)).all(), other


def test_code_runs_on_probe_states():
    from synth_reward.envs.poses import probe_states

    fn = _load(OfflineDesigner().propose(all_tasks()["humanoid/kneel"], 1)[0].code)
    for name, state in probe_states("humanoid", num_envs=3).items():
        reward = _check_contract(fn, state, 17)
        assert reward.abs().max() < 10, name  # bounded terms


def test_primitives_are_bounded():
    x = torch.linspace(-100, 100, 201)
    for name, fn in offline.PRIMITIVES.items():
        if name == "posture_target":
            y = fn(x[:, None], [0.0], 1.0)
        elif name in {"upright", "effort_penalty"}:
            y = fn(x if name == "upright" else x[:, None], 0.5)
        else:
            y = fn(x, 1.0, 0.5)
        assert ((y >= 0) & (y <= 1)).all(), name


def test_variants_are_deterministic_and_feedback_moves_them():
    task = all_tasks()["humanoid/kneel"]
    a = OfflineDesigner(seed=1).propose(task, 4, iteration=2)
    assert [c.code for c in a] == [c.code for c in OfflineDesigner(seed=1).propose(task, 4, iteration=2)]
    assert a[0].params == offline.default_params(offline.TEMPLATES["humanoid_kneel"])
    analysis = {"components": {"reward/knees_down": {"series": [0.0, 0.01, 0.0]}}, "success_rate": 0.0}
    b = OfflineDesigner(seed=1).propose(task, 2, feedback={"code": a[1].code, "analysis": analysis}, iteration=3)
    assert b[0].params.temperatures["knees_down"] == pytest.approx(a[1].params.temperatures["knees_down"] * 4)
    assert b[0].params.weights["torso_upright"] == pytest.approx(a[1].params.weights["torso_upright"])


def test_adjust_rules():
    template = offline.TEMPLATES["humanoid_kneel"]
    params = offline.default_params(template)
    out = adjust(
        params,
        {
            "components": {
                "knees_down": {"mean": 0.02, "min": 0.0, "max": 0.05},  # flat and low: widen
                "torso_upright": {"series": [0.2, 0.6, 0.9]},  # moving: keep
                "action_cost": {"mean": -1.0},  # dominates 1.02 of task terms: halve
            },
            "condition_failures": {"pelvis_high": 0.8, "knees_on_floor": 0.1},  # the worst one gets weight
            "success_rate": 0.1,
        },
        template,
    )
    p = out.params
    assert p.temperatures["knees_down"] == pytest.approx(0.2)
    assert p.temperatures["torso_upright"] == params.temperatures["torso_upright"]
    assert p.weights["action_cost"] == pytest.approx(-0.05)
    assert p.weights["pelvis_height"] == pytest.approx(1.8)
    assert p.weights["knees_down"] == params.weights["knees_down"]
    assert len(out.changes) == 3 and all(isinstance(c, str) for c in out.changes)
    assert adjust(params, {}, template).params == params
    settled = adjust(params, {"components": {"knees_down": {"mean": 0.0}}, "success_rate": 0.95}, template)
    assert settled.params == params


def test_unknown_instruction_names_what_it_understands():
    designer = OfflineDesigner()
    free = resolve_task("make the humanoid do a cartwheel")
    assert not designer.supports(free)
    with pytest.raises(UsageError, match="no template for 'make the humanoid do a cartwheel'.*humanoid: .*kneel"):
        designer.propose(free, 2)
    assert designer.supports(resolve_task("make the humanoid kneel"))


def test_params_from_foreign_code():
    assert params_from_code("def compute_reward(state, action): ...") is None
    assert params_from_code("not python (") is None
    assert isinstance(params_from_code("WEIGHTS = {'a': 1}\nTEMPERATURES = {'a': 2}"), Params)


def test_every_template_passes_the_sandbox_critic():
    """The loop vets offline candidates like any other; none may be rejected (about 10 s: one probe per check)."""
    from synth_reward.sandbox import vet_reward

    seen: set[str] = set()
    for task in supported_tasks().values():
        if task.success in seen:
            continue
        seen.add(task.success)
        verdict = vet_reward(OfflineDesigner().propose(task, 1)[0].code, task.morphology, num_envs=8)
        assert verdict.accepted, (task.id, verdict)


def test_adjust_reads_the_train_analyzers_shape():
    """The train analyzer reports per-episode sums, its own flat/dominant flags and conditions as source text."""
    template = offline.TEMPLATES["humanoid_kneel"]
    params = offline.default_params(template)
    analysis = {
        "reflection": {
            "length_mean": [400.0, 400.0],
            "success_rate": [0.0, 0.05],
            "components": [
                {
                    "name": "knees_down",
                    "values": [8.0, 8.0],
                    "min": 8.0,
                    "max": 8.0,
                    "mean": 8.0,
                    "flat": True,
                    "dominant": False,
                },  # 8 / (2.0 * 400) = 0.01 per step: flat and low
                {
                    "name": "torso_upright",
                    "values": [390.0, 399.0],
                    "min": 390.0,
                    "max": 399.0,
                    "mean": 394.5,
                    "flat": True,
                    "dominant": True,
                },  # flat but satisfied: left alone
                {
                    "name": "action_cost",
                    "values": [-3.0, -2.0],
                    "min": -3.0,
                    "max": -2.0,
                    "mean": -2.5,
                    "flat": False,
                    "dominant": False,
                },
            ],
        },
        "failure": {
            "episodes": 20,
            "successes": 1,
            "conditions": [
                {"condition": '(state.body("left_shin").height < 0.15)', "fail_fraction": 0.9},
                {"condition": "_upright(state) > 0.8", "fail_fraction": 0.1},
            ],
        },
    }
    out = adjust(params, analysis, template).params
    assert out.temperatures["knees_down"] == pytest.approx(params.temperatures["knees_down"] * 4)
    assert out.temperatures["torso_upright"] == params.temperatures["torso_upright"]
    assert out.weights["knees_down"] == pytest.approx(params.weights["knees_down"] * 1.9)
    assert out.weights["action_cost"] == params.weights["action_cost"]
    assert offline.serves(template.terms[1], "_upright(state) > 0.8")
    walk = offline.TEMPLATES["humanoid_walk_forward"]
    assert [t.name for t in walk.terms if offline.serves(t, "(_forward_speed(state) > 1.0)")] == ["forward_speed"]
