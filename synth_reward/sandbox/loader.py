"""Turn vetted code into a plain function the hot loop can call with no per-call overhead.

The checked AST is compiled (never `exec` of the raw text) into a namespace that holds
only what the policy allows: `__builtins__` is a small dict without `__import__`, `open`
or `getattr`, and each import alias is bound to a view of its module that carries only
the allowlisted members (`torch` here has `exp` and `linalg.norm`, not `save` or `ops`).
Imports, decorators and annotations are removed before compiling, so loading runs nothing
but the definitions; `x += y` on a plain name becomes `x = x + y`, so it can never change
a tensor the function did not create.

What comes back is the function object itself: calling it costs exactly what calling
the same code from a normal module costs (a global lookup of `torch` and an attribute
lookup, both dict hits).
"""

from __future__ import annotations

import ast
import builtins
import functools
import importlib
import sys
from types import SimpleNamespace
from typing import Any, cast

from synth_reward.envs.batched import CheckFn, RewardFn
from synth_reward.sandbox.allowlist import (
    ALLOWED_BUILTINS,
    ALLOWED_MODULE_ATTRIBUTES,
    ALLOWED_MODULES,
)
from synth_reward.sandbox.extract import extract
from synth_reward.sandbox.policy import _Context, check_imports, first_problem, strip_unexecuted
from synth_reward.sandbox.records import FUNCTION_NAMES, Finding, Kind, Rejected

CODE_FILENAME = "<synth-reward candidate>"
"""Filename given to compiled candidates; tracebacks through it point at candidate lines."""

SuccessFn = CheckFn


def _no_print(*args: object, **kwargs: object) -> None:
    """`print` in generated code does nothing: the hot loop must not write to stdout."""


def _loaded_modules_only(
    name: str, globals_: Any = None, locals_: Any = None, fromlist: Any = (), level: int = 0
) -> Any:
    """`__import__` for C code called from generated code (torch's argument parser imports `torch`).

    Generated code cannot name it (the policy rejects dunder names); it returns modules that
    are already loaded and imports nothing new, so it has no side effects.
    """
    if level == 0 and name in sys.modules:
        return builtins.__import__(name, globals_, locals_, fromlist, level)
    raise ImportError(f"generated code cannot import {name!r}")


def safe_builtins() -> dict[str, Any]:
    """The builtins of generated code: the allowlist, a no-op print, a side-effect-free __import__."""
    names = {n: getattr(builtins, n) for n in ALLOWED_BUILTINS if n != "print"}
    return {**names, "print": _no_print, "__import__": _loaded_modules_only}


@functools.cache
def module_view(dotted: str) -> SimpleNamespace:
    """A namespace with only the allowlisted members of module `dotted` (sub-modules as views)."""
    module = importlib.import_module(dotted)
    members: dict[str, Any] = {}
    prefix = dotted + "."
    for full in ALLOWED_MODULE_ATTRIBUTES | ALLOWED_MODULES:
        if not full.startswith(prefix):
            continue
        name = full[len(prefix) :].split(".")[0]
        if name in members:
            continue
        sub = prefix + name
        if sub in ALLOWED_MODULES:
            members[name] = module_view(sub)
        elif sub in ALLOWED_MODULE_ATTRIBUTES:
            members[name] = getattr(module, name)
        else:  # an intermediate package (torch.nn) that is not itself importable by name
            members[name] = module_view(sub)
    return SimpleNamespace(**members)


def _resolve(dotted: str) -> Any:
    if dotted in ALLOWED_MODULES:
        return module_view(dotted)
    module, _, name = dotted.rpartition(".")
    return getattr(module_view(module), name)


class _Rewrite(ast.NodeTransformer):
    """Drop imports (aliases are bound to module views instead); make `name op= value` out of place."""

    def visit_Import(self, node: ast.Import | ast.ImportFrom) -> ast.AST:
        return ast.copy_location(ast.Pass(), node)

    visit_ImportFrom = visit_Import  # noqa: N815 (ast visitor naming)

    def visit_AugAssign(self, node: ast.AugAssign) -> ast.AST:
        if not isinstance(node.target, ast.Name):
            return node
        load = ast.Name(id=node.target.id, ctx=ast.Load())
        value = ast.BinOp(left=load, op=node.op, right=node.value)
        return ast.copy_location(ast.Assign(targets=[node.target], value=value), node)


def vetted_tree(code: str, kind: Kind) -> tuple[str, ast.Module]:
    """Extract and check `code` (a reply or source); raise `Rejected` with the first problem."""
    got = extract(code, kind)
    if isinstance(got, Finding):
        raise Rejected(got)
    source, tree = got
    problem = first_problem(tree, kind)
    if problem is not None:
        raise Rejected(problem)
    return source, tree


def load_namespace(code: str, kind: Kind) -> dict[str, Any]:
    """Compile vetted code into a namespace holding only allowed names; return the namespace.

    Raises `Rejected` when the code fails extraction or the static policy. Runs only the
    definitions (and constant assignments), which the policy guarantees cannot do anything.
    """
    _, tree = vetted_tree(code, kind)
    ctx = _Context(tree, kind)
    check_imports(ctx)
    namespace: dict[str, Any] = {"__builtins__": safe_builtins(), "__name__": "synth_reward_candidate"}
    for alias, dotted in ctx.aliases.items():
        namespace[alias] = _resolve(dotted)
    tree = ast.fix_missing_locations(_Rewrite().visit(strip_unexecuted(tree)))
    exec(compile(tree, CODE_FILENAME, "exec", dont_inherit=True), namespace)  # noqa: S102 (vetted AST)
    return namespace


def load_reward(code: str) -> RewardFn:
    """`compute_reward(state, action)` from vetted code (a reply or source), ready for the hot loop.

    Call `synth_reward.sandbox.vet_reward` first: this re-applies the static policy (cheap)
    but does not run the probe.
    """
    return cast(RewardFn, load_namespace(code, "reward")[FUNCTION_NAMES["reward"]])


def load_success(code: str) -> SuccessFn:
    """`success(state)` from vetted code; see `load_reward`."""
    return cast(SuccessFn, load_namespace(code, "success")[FUNCTION_NAMES["success"]])
