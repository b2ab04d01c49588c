"""Extraction: code comes out of LLM replies the way real replies are written."""

from __future__ import annotations

from synth_reward.sandbox.extract import extract
from synth_reward.sandbox.records import Finding

BODY = 'def compute_reward(state, action):\n    h = state.body("torso").pos[:, 2]\n    return h, {"height": h}\n'


def _code(reply: str, kind: str = "reward") -> str:
    got = extract(reply, kind)
    assert not isinstance(got, Finding), got
    return got[0]


def test_plain_source():
    assert _code(BODY) == BODY


def test_fenced_with_and_without_tag_and_prose():
    for fence in ("```python", "```py", "```", "~~~python", "```Python3"):
        reply = f"Here is my reward.\n\n{fence}\n{BODY}{fence[:3]}\n\nIt rewards height."
        assert "def compute_reward" in _code(reply)


def test_several_blocks_take_the_one_defining_the_function():
    reply = (
        f"First the state:\n```python\nx = state.body('torso')\n```\nThen:\n```python\n{BODY}```\n```bash\nrun it\n```"
    )
    assert _code(reply) == BODY


def test_revised_block_wins():
    first = BODY.replace("height", "first")
    reply = f"```python\n{first}```\nOn reflection, better:\n```python\n{BODY}```"
    assert '"height"' in _code(reply)


def test_windows_line_endings_tabs_and_indented_block():
    reply = (
        "Reward:\r\n\r\n    ```python\r\n    "
        + BODY.replace("\n", "\r\n    ").replace("    h", "\th").replace("    return", "\treturn")
        + "```\r\n"
    )
    code = _code(reply)
    assert "\r" not in code and code.startswith("def compute_reward")


def test_unclosed_fence_from_a_truncated_reply():
    assert "return h" in _code(f"```python\n{BODY}")


def test_decorator_typing_docstring_helpers():
    reply = (
        "```python\nimport torch\nfrom typing import Tuple, Dict\n\n"
        "def _helper(x: torch.Tensor) -> torch.Tensor:\n    '''Doc.'''\n    return x * 2  # comment\n\n"
        "@torch.jit.script\ndef compute_reward(state, action) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:\n"
        "    h = _helper(state.body('torso').pos[:, 2])\n    return h, {'h': h}\n```"
    )
    assert "@torch.jit.script" in _code(reply)


def test_prose_without_fences_is_trimmed():
    reply = f"Sure! Below is the function.\n{BODY}\nThis should work well."
    assert _code(reply).strip() == BODY.strip()


def test_missing_function_and_syntax_error_findings():
    missing = extract("def reward(state, action):\n    return 1\n", "reward")
    assert isinstance(missing, Finding) and missing.stage == "extract" and "`reward`" in missing.reason
    broken = extract("```python\ndef compute_reward(state, action:\n    return 1\n```", "reward")
    assert isinstance(broken, Finding) and broken.stage == "syntax" and broken.line == 1
    nothing = extract("I cannot help with that.", "reward")
    assert isinstance(nothing, Finding) and nothing.stage in ("extract", "syntax")


def test_success_kind():
    assert "def success" in _code("```python\ndef success(state):\n    return state.time > 1\n```", "success")
