"""Prompt templates: every one renders, says what it must, and the message lists are Markovian."""

from __future__ import annotations

import re

import pytest

from synth_reward.agent import prompts
from synth_reward.agent.prompts import (
    Best,
    Feedback,
    Note,
    designer_messages,
    feedback_prompt,
    parse_review,
    render,
    review_messages,
    success_messages,
    system_prompt,
    task_prompt,
)
from synth_reward.agent.resolve import resolve_task

PLACEHOLDER = re.compile(r"\$\{?[A-Za-z_]\w*")


@pytest.fixture(scope="module")
def kneel():
    return resolve_task("make the humanoid kneel")


@pytest.mark.parametrize("name", prompts.TEMPLATE_NAMES)
def test_every_template_renders(name):
    names = {
        m.group("named") or m.group("braced")
        for m in prompts.template(name).pattern.finditer(prompts.template(name).template)
        if m.group("named") or m.group("braced")
    }
    text = render(name, **{n: f"<{n}>" for n in names})
    assert text.strip() and not PLACEHOLDER.search(text)
    if names:  # a missing value is an error, never a silent "$name" in a prompt
        with pytest.raises(KeyError):
            render(name, **{n: "x" for n in sorted(names)[1:]})


def test_system_prompt_states_the_contract():
    text = system_prompt("reward")
    for must in (
        "compute_reward(state, action)",
        "(N,)",
        "components",
        "`torch`",
        "`math`",
        "side effects",
        "by name",
        "temperature",
        "bounded",
    ):
        assert must in text, must
    assert "`os`" not in text
    assert "def success(state)" in system_prompt("success")
    with pytest.raises(ValueError):
        system_prompt("other")


def test_task_prompt_has_instruction_state_and_success(kneel):
    text = task_prompt(kneel)
    assert "make the humanoid kneel" in text
    assert "left_shin" in text and "state.body(name)" in text  # the generated State description
    assert kneel.task.success_text in text and "half of its steps" in text
    assert "400 control steps (6 s)" in text


def test_free_form_task_prompt_shows_the_frozen_check():
    code = '"""Hands above the head."""\ndef success(state):\n    return state.body("torso").height > 1\n'
    resolved = resolve_task(
        "make the humanoid wave",
    ).with_success(code)
    text = task_prompt(resolved, state_description="<state>")
    assert "Hands above the head." in text and 'state.body("torso").height > 1' in text and "<state>" in text
    assert "No success check" in task_prompt(resolve_task("make the humanoid wave"), state_description="-")


def test_designer_messages_are_markovian(kneel):
    first = designer_messages(kneel, state_description="<state>")
    assert [m["role"] for m in first] == ["system", "user"]
    feedback = Feedback(
        success_rate=0.25,
        reflection="knees_down: max 0.3 mean 0.1 min 0.0",
        failure_analysis="pelvis too low in 70% of steps",
        rejections=[
            Note(candidate="i1c2", reason="imports os"),
            Note(candidate="i1c5", reason="imports os"),
            Note(candidate="i1c6", reason="x" * 5000),
        ],
        training_errors=[Note(candidate="i1c3", reason="NaN in reward at step 10")],
        review_objections=["rewards the pelvis for going down, which makes it sit"],
        human='it sits back on its "heels"',
    )
    later = designer_messages(
        kneel,
        best=Best(candidate="i1c1", code="def compute_reward(state, action):\n    pass"),
        feedback=feedback,
        iteration=2,
        state_description="<state>",
    )
    assert [m["role"] for m in later] == ["system", "user", "assistant", "user"]
    assert later[:2] == first and "```python\ndef compute_reward" in later[2]["content"]
    fb = later[3]["content"]
    for must in (
        "Iteration 2",
        "i1c1",
        "25%",
        "knees_down: max 0.3",
        "pelvis too low",
        "- i1c2, i1c5: imports os",
        "NaN in reward",
        "makes it sit",
        "it sits back on its 'heels'",
    ):
        assert must in fb, must
    assert "x" * (prompts.MAX_REASON_CHARS + 1) not in fb


def test_feedback_without_a_best_candidate(kneel):
    msgs = designer_messages(
        kneel,
        feedback=Feedback(rejections=[Note(candidate="i1c0", reason="no code")]),
        iteration=2,
        state_description="-",
    )
    assert [m["role"] for m in msgs] == ["system", "user", "user"]
    assert "no reward has been trained" in msgs[2]["content"] and "no code" in msgs[2]["content"]
    assert "no further feedback" in feedback_prompt(3, Feedback(), Best(candidate="c", code="x"))


def test_success_and_review_messages(kneel):
    free = resolve_task("make the ant dance")
    msgs = success_messages(free, state_description="<state>")
    assert "def success(state)" in msgs[0]["content"] and "make the ant dance" in msgs[1]["content"]
    review = review_messages(kneel, "def compute_reward(state, action): ...")
    assert "VERDICT: ACCEPT" in review[0]["content"] and "def compute_reward" in review[1]["content"]
    assert kneel.task.success_text in review[1]["content"]


def test_parse_review():
    assert parse_review("Looks fine.\nVERDICT: ACCEPT").accepted
    got = parse_review("**Verdict:** OBJECT\n- the knee term has the wrong sign\n2. no term keeps the torso up\n")
    assert not got.accepted and got.objections == ["the knee term has the wrong sign", "no term keeps the torso up"]
    assert parse_review("VERDICT: OBJECT it will just sit").objections == ["it will just sit"]
    unparsed = parse_review("I think it is ok")
    assert unparsed.accepted and not unparsed.parsed
