"""The static policy: an allowlist with actionable findings."""

from __future__ import annotations

import ast
import importlib

import pytest
import torch

from synth_reward.sandbox.allowlist import ALLOWED_MODULE_ATTRIBUTES
from synth_reward.sandbox.policy import check_code, first_problem


def _problems(body: str, prelude: str = "import torch\n", kind: str = "reward") -> list:
    fn = "compute_reward(state, action)" if kind == "reward" else "success(state)"
    code = f"{prelude}\ndef {fn}:\n" + "\n".join("    " + line for line in body.strip().splitlines())
    return check_code(ast.parse(code), kind)


def _ok(body: str, prelude: str = "import torch\n") -> None:
    assert _problems(body, prelude) == []


def test_every_allowed_module_attribute_exists():
    for name in ALLOWED_MODULE_ATTRIBUTES:
        module, _, attr = name.rpartition(".")
        assert hasattr(importlib.import_module(module), attr), name


def test_nothing_dangerous_is_allowed():
    for name in (
        "torch.save",
        "torch.load",
        "torch.hub",
        "torch.ops",
        "torch.rand",
        "torch.manual_seed",
        "numpy.save",
        "numpy.load",
        "numpy.fromfile",
        "torch.set_num_threads",
        "torch.from_file",
    ):
        assert name not in ALLOWED_MODULE_ATTRIBUTES


def test_aliases_resolve_to_full_names():
    _ok(
        "x = np.sqrt(2.0) + F.softplus(state.time) + la.norm(state.com_vel, dim=-1)\nreturn x, {}",
        "import numpy as np\nimport torch.nn.functional as F\nimport torch.linalg as la\n",
    )
    (finding,) = _problems("np.save('f', state.qpos)\nreturn state.time, {}", "import numpy as np\n")
    assert finding.culprit == "numpy.save" and "files" in finding.reason


@pytest.mark.parametrize(
    ("body", "culprit"),
    [
        ("x = state.qpos.numpy()\nx[0] = 1\nreturn state.time, {}", "item assignment"),
        ("x = torch.einsum('ij->ij', state.qpos)\nx[0] = 1\nreturn state.time, {}", "item assignment"),
        ("state.time = 1\nreturn state.time, {}", "attribute assignment"),
        ("y = state.time.add_(1)\nreturn y, {}", ".add_()"),
        ("torch.jit.script(len)\nreturn state.time, {}", "torch.jit"),
        ("x = [s for s in ().__class__.__mro__]\nreturn state.time, {}", "attribute __class__"),
        ("x = f'{state.time.__class__}'\nreturn state.time, {}", "attribute __class__"),
        ("x = type(state)\nreturn state.time, {}", "type(...)"),
        ("x = lambda: 0\nreturn state.time, {}\ndel state.time", "del of item or attribute"),
    ],
)
def test_rejections(body, culprit):
    assert culprit in [f.culprit for f in _problems(body)]


def test_accepted_idioms():
    _ok("r = torch.zeros_like(state.time)\nr[state.time > 1] = 1.0\nc = {}\nc['r'] = r\nreturn r, c")
    _ok("r = state.com_vel[:, 0]\nr += 1.0\nr = r * 2\nreturn r, {'r': r}")
    _ok("r = state.time.clone()\nr[0] = 0.0\nprint(r)\n_, idx = torch.max(state.qpos, dim=1)\nreturn r, {}")
    _ok("total = sum([state.body(n).height for n in ('torso', 'pelvis')])\nreturn total, {}")
    _ok("x: torch.Tensor = state.time\nreturn x, dict(x=x)")


def test_annotations_are_never_evaluated_so_not_checked():
    code = "def compute_reward(state: State, action: Tensor) -> Tuple[Tensor, Dict]:\n    return state.time, {}\n"
    assert check_code(ast.parse(code), "reward") == []


def test_top_level_only_constants():
    (f,) = check_code(
        ast.parse("import torch\nX = torch.ones(3)\ndef compute_reward(state, action):\n    return state.time, {}\n"),
        "reward",
    )
    assert f.culprit == "top-level computation" and f.line == 2
    assert (
        check_code(
            ast.parse(
                "import math\nX = (1.0, -2, math.pi / 2)\nY = {'a': X}\n"
                "def compute_reward(state, action, k=X):\n    return state.time, {}\n"
            ),
            "reward",
        )
        == []
    )
    (f,) = check_code(
        ast.parse("S = 'a' * 10**9\ndef compute_reward(state, action):\n    return state.time, {}\n"), "reward"
    )
    assert f.culprit == "top-level computation"


def test_signature_and_recursion():
    (f,) = check_code(ast.parse("def compute_reward(state):\n    return state.time, {}\n"), "reward")
    assert f.culprit == "signature"
    code = "def a(x):\n    return b(x)\ndef b(x):\n    return a(x)\ndef compute_reward(state, action):\n    return a(1), {}\n"
    assert "recursion" in [f.culprit for f in check_code(ast.parse(code), "reward")]


def test_first_problem_mentions_the_others():
    finding = first_problem(
        ast.parse("import os\nimport sys\ndef compute_reward(state, action):\n    while True:\n        pass\n"),
        "reward",
    )
    assert finding is not None and finding.line == 1 and "Also fix: line 2" in finding.reason


def test_allowed_tensor_methods_exist():
    t = torch.zeros(2, 2)
    for name in ("clamp", "norm", "sum", "masked_fill", "new_zeros", "type_as"):
        assert hasattr(t, name)
