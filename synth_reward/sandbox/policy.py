"""The static policy: an AST allowlist every candidate must pass before anything runs it.

Reads like Gymnasium's env checker: small `check_*` functions, each returning `Finding`s
that name the line, the culprit and what to write instead. The policy is deliberately
narrow (reward code is arithmetic on tensors); whatever it lets through still runs in an
isolated process (`probe`) and, in training, in a namespace that holds only allowed names
(`loader`), so a gap here does not reach the host.
"""

from __future__ import annotations

import ast
import copy
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import cast

from synth_reward.sandbox.allowlist import (
    ALLOWED_ATTRIBUTES,
    ALLOWED_BUILTINS,
    ALLOWED_DECORATORS,
    ALLOWED_MODULE_ATTRIBUTES,
    ALLOWED_MODULES,
    FORBIDDEN_HINTS,
    FORBIDDEN_MODULE_HINTS,
    FRESH_CONSTRUCTORS,
    FRESH_METHODS,
)
from synth_reward.sandbox.records import FUNCTION_NAMES, SIGNATURES, Finding, Kind

MAX_LINES = 400
MAX_NODES = 8000
MAX_FUNCTIONS = 32
MAX_CONSTANT_CHARS = 2000
"""Size bounds: an LLM reward is tens of lines; these stop resource games at parse time."""

_VIEW_METHODS = frozenset(
    """reshape view view_as reshape_as squeeze unsqueeze select narrow t transpose permute expand
    expand_as flatten detach contiguous to float double half int long bool type_as cpu numpy
    diagonal unbind chunk split broadcast_to as_tensor atleast_1d atleast_2d einsum get pop""".split()
)
"""Calls that may return (a view of) their input, so the result is not safe to assign into."""
_MODULE_PREFIXES = (
    frozenset(
        ".".join(name.split(".")[:i])
        for name in ALLOWED_MODULE_ATTRIBUTES | ALLOWED_MODULES
        for i in range(1, name.count(".") + 1)
    )
    | ALLOWED_MODULES
)


@dataclass
class _Context:
    """What the checks share: import aliases, names bound anywhere, function definitions."""

    tree: ast.Module
    kind: Kind
    aliases: dict[str, str] = field(default_factory=dict)
    """Local name -> full dotted module or member name (`np` -> `numpy`, `Tensor` -> `torch.Tensor`)."""
    bound: set[str] = field(default_factory=set)
    functions: dict[str, ast.FunctionDef | ast.Lambda] = field(default_factory=dict)

    def dotted(self, node: ast.expr) -> str | None:
        """Full dotted name of `alias.attr.attr` when its root is an imported module/member."""
        parts: list[str] = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if isinstance(node, ast.Name) and node.id in self.aliases:
            return ".".join([self.aliases[node.id], *reversed(parts)])
        return None


def check_code(tree: ast.Module, kind: Kind) -> list[Finding]:
    """Every policy violation in `tree`, in source order (empty: the code passes)."""
    size = check_size(tree)
    if size:
        return size
    ctx = _Context(tree, kind)
    findings = check_imports(ctx) + check_decorators(ctx)
    ctx.tree = strip_unexecuted(tree)
    _collect_bindings(ctx)
    for check in (
        check_top_level,
        check_signature,
        check_statements,
        check_names,
        check_attributes,
        check_calls,
        check_assignments,
        check_recursion,
    ):
        findings += check(ctx)
    return sorted(findings, key=lambda f: f.line or 0)


class _StripUnexecuted(ast.NodeTransformer):
    """Remove annotations and decorators: the loader never evaluates them, so the policy need not
    check what is inside (`state: State` without an import is fine)."""

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        node.decorator_list, node.returns = [], None
        for a in [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs, node.args.vararg, node.args.kwarg]:
            if a is not None:
                a.annotation = None
        self.generic_visit(node)
        return node

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.AST:
        if node.value is None:
            return ast.copy_location(ast.Pass(), node)
        return ast.copy_location(ast.Assign(targets=[node.target], value=node.value), node)


def strip_unexecuted(tree: ast.Module) -> ast.Module:
    """A copy of `tree` without annotations and decorators (what the loader compiles)."""
    return cast(
        ast.Module, ast.fix_missing_locations(_StripUnexecuted().visit(copy.deepcopy(tree)))
    )  # visit() returns Any


def first_problem(tree: ast.Module, kind: Kind) -> Finding | None:
    """The first violation, its reason extended with a count of the others."""
    findings = check_code(tree, kind)
    if not findings:
        return None
    first = findings[0]
    if len(findings) > 1:
        others = "; ".join(f"line {f.line}: {f.culprit}" for f in findings[1:4])
        more = f" and {len(findings) - 4} more" if len(findings) > 4 else ""
        first = first.model_copy(update={"reason": f"{first.reason} Also fix: {others}{more}."})
    return first


def _policy(node: ast.AST | None, culprit: str, reason: str) -> Finding:
    return Finding(stage="policy", line=getattr(node, "lineno", None), culprit=culprit, reason=reason)


# ---- checks ------------------------------------------------------------------------------


def check_size(tree: ast.Module) -> list[Finding]:
    """Bounded size: lines, AST nodes, functions and literal constants."""
    nodes = list(ast.walk(tree))
    last = max((getattr(n, "end_lineno", 0) or 0 for n in nodes), default=0)
    if last > MAX_LINES or len(nodes) > MAX_NODES:
        return [
            _policy(
                None,
                "code size",
                f"The code has {last} lines and {len(nodes)} syntax nodes; the limit is {MAX_LINES} "
                f"lines and {MAX_NODES} nodes. Write a shorter reward: a few named terms combined.",
            )
        ]
    functions = [n for n in nodes if isinstance(n, (ast.FunctionDef, ast.Lambda))]
    if len(functions) > MAX_FUNCTIONS:
        return [
            _policy(
                functions[MAX_FUNCTIONS],
                "too many functions",
                f"The code defines {len(functions)} functions; at most {MAX_FUNCTIONS} are allowed.",
            )
        ]
    for n in nodes:
        if isinstance(n, ast.Constant) and isinstance(n.value, (str, bytes)) and len(n.value) > MAX_CONSTANT_CHARS:
            return [
                _policy(
                    n,
                    "huge constant",
                    f"A literal of {len(n.value):,} characters; at most {MAX_CONSTANT_CHARS} are allowed. "
                    "Reward code needs no large literals.",
                )
            ]
    return []


def check_imports(ctx: _Context) -> list[Finding]:
    """Only torch, math, numpy and typing; record every alias so attributes resolve statically."""
    findings = []
    for node in ast.walk(ctx.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name not in ALLOWED_MODULES:
                    findings.append(_bad_import(node, alias.name))
                elif alias.asname:
                    ctx.aliases[alias.asname] = alias.name
                else:
                    root = alias.name.split(".")[0]
                    ctx.aliases[root] = root
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if module == "__future__" and [a.name for a in node.names] == ["annotations"]:
                continue
            if node.level or module not in ALLOWED_MODULES:
                findings.append(_bad_import(node, "." * node.level + module))
                continue
            for alias in node.names:
                full = f"{module}.{alias.name}"
                if alias.name == "*":
                    findings.append(
                        _policy(
                            node,
                            "from ... import *",
                            f"`from {module} import *` hides which names the code uses. "
                            f"Write `import {module}` and use `{module}.name`.",
                        )
                    )
                elif full not in ALLOWED_MODULE_ATTRIBUTES and full not in ALLOWED_MODULES:
                    findings.append(
                        _policy(
                            node,
                            f"import of {full}",
                            f"`{full}` is not on the allowlist. Use plain torch operations "
                            f"(`torch.exp`, `torch.clamp`, `torch.linalg.norm`, ...).",
                        )
                    )
                else:
                    ctx.aliases[alias.asname or alias.name] = full
    return findings


def _bad_import(node: ast.AST, module: str) -> Finding:
    root = module.split(".")[0]
    why = FORBIDDEN_MODULE_HINTS.get(root, f"`{module}` is not available to reward code")
    return _policy(
        node,
        f"import {module}",
        f"`import {module}` is not allowed: {why}. Only torch, math, numpy and typing may be "
        f"imported; compute the result from `state` and `action` with torch operations.",
    )


def check_top_level(ctx: _Context) -> list[Finding]:
    """Top level holds imports, functions and constants only: nothing runs when the code loads."""
    findings = []
    constants: set[str] = set()
    for node in ctx.tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef)):
            continue
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            continue  # docstring or a stray string
        if isinstance(node, ast.Pass):
            continue
        target = (
            node.targets[0]
            if isinstance(node, ast.Assign) and len(node.targets) == 1
            else (node.target if isinstance(node, ast.AnnAssign) else None)
        )
        # target is a Name only when node is an Assign or an AnnAssign: both have a `value`
        if isinstance(target, ast.Name) and node.value is not None:  # type: ignore[attr-defined]
            bad = _non_constant(node.value, ctx, constants)  # type: ignore[attr-defined]
            if bad is None:
                constants.add(target.id)
                continue
            findings.append(
                _policy(
                    bad,
                    "top-level computation",
                    f"Line {bad.lineno}: top-level assignments may only define constants "
                    f"(numbers, strings, tuples, `math.pi`), but `{target.id}` is computed with "
                    f"`{ast.unparse(bad)[:60]}`. Compute it inside `{FUNCTION_NAMES[ctx.kind]}`.",
                )
            )
            continue
        if isinstance(node, ast.If) and "__name__" in ast.unparse(node.test):
            findings.append(
                _policy(
                    node,
                    "__main__ block",
                    'Remove the `if __name__ == "__main__":` block: the code is imported, '
                    "never run as a script, and must not execute anything at load time.",
                )
            )
            continue
        findings.append(
            _policy(
                node,
                f"top-level {type(node).__name__.lower()}",
                f"Line {node.lineno}: the top level may only hold imports, function definitions "
                f"and constants, but it has a `{type(node).__name__}` statement "
                f"(`{ast.unparse(node).splitlines()[0][:60]}`). Move it into a function.",
            )
        )
    for fn in (n for n in ast.walk(ctx.tree) if isinstance(n, (ast.FunctionDef, ast.Lambda))):
        for default in fn.args.defaults + [d for d in fn.args.kw_defaults if d is not None]:
            bad = _non_constant(default, ctx, constants)
            if bad is not None:
                findings.append(
                    _policy(
                        bad,
                        "computed default argument",
                        f"Default arguments are evaluated when the code loads and must be "
                        f"constants, but one is `{ast.unparse(bad)[:60]}`. Compute it inside "
                        f"the function.",
                    )
                )
    return findings


def _non_constant(node: ast.expr, ctx: _Context, constants: set[str]) -> ast.expr | None:
    """The first sub-expression that is not a load-time constant (None: all constant)."""
    if isinstance(node, ast.Constant):
        return None
    if isinstance(node, ast.Name):
        return None if node.id in constants or node.id in ctx.aliases else node
    if isinstance(node, ast.Attribute):
        name = ctx.dotted(node)
        return None if name in ALLOWED_MODULE_ATTRIBUTES else node
    if isinstance(node, ast.UnaryOp):
        return _non_constant(node.operand, ctx, constants)
    if isinstance(node, ast.BinOp):
        if isinstance(node.op, (ast.Mult, ast.Pow, ast.LShift)) and not all(
            isinstance(side, ast.Constant) and isinstance(side.value, float | int) and abs(side.value) < 1e4
            for side in (node.left, node.right)
            if isinstance(side, ast.Constant | ast.List | ast.Tuple)
        ):
            return node  # sequence repetition or a huge power: resource games at load time
        return _non_constant(node.left, ctx, constants) or _non_constant(node.right, ctx, constants)
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return next((b for e in node.elts if (b := _non_constant(e, ctx, constants)) is not None), None)
    if isinstance(node, ast.Dict):
        return next(
            (
                b
                for e in [*node.keys, *node.values]
                if e is not None and (b := _non_constant(e, ctx, constants)) is not None
            ),
            None,
        )
    return node


def check_signature(ctx: _Context) -> list[Finding]:
    """The entry point takes the State (and the action for rewards) positionally."""
    name = FUNCTION_NAMES[ctx.kind]
    fn = next(n for n in ctx.tree.body if isinstance(n, ast.FunctionDef) and n.name == name)
    required = 2 if ctx.kind == "reward" else 1
    positional = fn.args.posonlyargs + fn.args.args
    without_default = len(positional) - len(fn.args.defaults)
    if fn.args.vararg is None and len(positional) < required or without_default > required:
        return [
            _policy(
                fn,
                "signature",
                f"`{name}` takes ({', '.join(a.arg for a in positional)}), but it is called as "
                f"`{SIGNATURES[ctx.kind]}`. Give it exactly those parameters.",
            )
        ]
    if any(d is None for d in fn.args.kw_defaults):
        return [
            _policy(
                fn,
                "signature",
                f"`{name}` has required keyword-only parameters; it is called as `{SIGNATURES[ctx.kind]}`.",
            )
        ]
    return []


_STATEMENT_HINTS: dict[type, tuple[str, str]] = {
    ast.While: (
        "while loop",
        "a `while` loop may never end; use vectorized tensor operations or `for i in range(K)` with a small constant K",
    ),
    ast.Try: (
        "try statement",
        "errors must surface in the sandbox, not be hidden; remove the `try` and "
        "guard values with `torch.clamp`/`torch.where`/`torch.nan_to_num`",
    ),
    ast.TryStar: ("try statement", "remove the `try`; guard values with `torch.clamp` or `torch.where`"),
    ast.With: ("with statement", "context managers are not needed; the trainer already disables autograd"),
    ast.AsyncWith: ("async with", "reward code is synchronous; remove it"),
    ast.AsyncFor: ("async for", "reward code is synchronous; use a plain `for` loop"),
    ast.AsyncFunctionDef: ("async def", "reward code is synchronous; use `def`"),
    ast.ClassDef: ("class definition", "classes are not allowed; write plain functions"),
    ast.Global: ("global statement", "reward code must not keep state between calls; use local variables"),
    ast.Nonlocal: ("nonlocal statement", "reward code must not keep state between calls; use local variables"),
    ast.Raise: ("raise statement", "return a reward instead of raising; invalid states should get a low reward"),
    ast.Match: ("match statement", "use `if`/`torch.where`"),
    ast.Yield: ("yield", "return the result instead of yielding it"),
    ast.YieldFrom: ("yield", "return the result instead of yielding it"),
    ast.Await: ("await", "reward code is synchronous; remove it"),
}


def check_statements(ctx: _Context) -> list[Finding]:
    """No while/try/with/class/global/raise/yield; `del` only of local names."""
    findings = []
    for node in ast.walk(ctx.tree):
        hint = _STATEMENT_HINTS.get(type(node))
        if hint is not None:
            # every type in _STATEMENT_HINTS is an ast.stmt or ast.expr, which have a lineno
            findings.append(_policy(node, hint[0], f"Line {node.lineno}: {hint[0]} is not allowed: {hint[1]}."))  # type: ignore[attr-defined]
        elif isinstance(node, ast.Delete) and not all(isinstance(t, ast.Name) for t in node.targets):
            findings.append(
                _policy(
                    node,
                    "del of item or attribute",
                    "`del` may only remove local variables; reward code must not change objects.",
                )
            )
    return findings


def check_decorators(ctx: _Context) -> list[Finding]:
    """Only the decorators LLMs habitually add (`@torch.jit.script`); the loader drops them."""
    findings = []
    for fn in ast.walk(ctx.tree):
        if isinstance(fn, ast.FunctionDef):
            for deco in fn.decorator_list:
                target = deco.func if isinstance(deco, ast.Call) else deco
                if ctx.dotted(target) not in ALLOWED_DECORATORS:
                    findings.append(
                        _policy(
                            deco,
                            "decorator",
                            f"Line {deco.lineno}: decorator `@{ast.unparse(deco)}` is not allowed; "
                            f"only `@torch.jit.script` (ignored) is. Remove it.",
                        )
                    )
    return findings


def _collect_bindings(ctx: _Context) -> None:
    for node in ast.walk(ctx.tree):
        if isinstance(node, (ast.FunctionDef, ast.Lambda)):
            args = node.args
            for a in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
                if a is not None:
                    ctx.bound.add(a.arg)
            if isinstance(node, ast.FunctionDef):
                ctx.bound.add(node.name)
                ctx.functions[node.name] = node
        elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            ctx.bound.add(node.id)
        elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Lambda):
            for t in node.targets:
                if isinstance(t, ast.Name):
                    ctx.functions[t.id] = node.value
    ctx.bound |= set(ctx.aliases)


def check_names(ctx: _Context) -> list[Finding]:
    """Every name read is bound in the code, an import alias, or an allowed builtin; no dunders."""
    findings = []
    for node in ast.walk(ctx.tree):
        names: list[tuple[str, ast.Name | ast.FunctionDef | ast.Lambda]] = []
        if isinstance(node, ast.Name):
            names.append((node.id, node))
        elif isinstance(node, (ast.FunctionDef, ast.Lambda)):
            args = node.args
            names += [
                (a.arg, node)
                for a in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
                if a is not None
            ]
            if isinstance(node, ast.FunctionDef):
                names.append((node.name, node))
        for name, where in names:
            if name.startswith("__"):
                findings.append(
                    _policy(
                        where,
                        f"name {name}",
                        f"Line {where.lineno}: `{name}` is not allowed: double-underscore names "
                        f"reach the interpreter's internals. Use plain names.",
                    )
                )
            elif name in ctx.aliases and isinstance(where, ast.Name) and isinstance(where.ctx, ast.Store):
                findings.append(
                    _policy(
                        where,
                        f"rebinding {name}",
                        f"Line {where.lineno}: `{name}` is the imported `{ctx.aliases[name]}`; "
                        f"do not assign to it. Pick another variable name.",
                    )
                )
            elif (
                isinstance(where, ast.Name)
                and isinstance(where.ctx, ast.Load)
                and name not in ctx.bound
                and name not in ALLOWED_BUILTINS
            ):
                findings.append(_unknown_name(where, name))
    return findings


def _unknown_name(node: ast.expr, name: str) -> Finding:
    if name in FORBIDDEN_HINTS:
        return _policy(node, f"{name}(...)", f"Line {node.lineno}: `{name}` is not allowed: {FORBIDDEN_HINTS[name]}.")
    if name in FORBIDDEN_MODULE_HINTS:
        return _policy(
            node, f"name {name}", f"Line {node.lineno}: `{name}` is not available: {FORBIDDEN_MODULE_HINTS[name]}."
        )
    return _policy(
        node,
        f"unknown name {name}",
        f"Line {node.lineno}: `{name}` is not defined in the code and is not an allowed builtin "
        f"({', '.join(sorted(ALLOWED_BUILTINS))}). Define it, import it from torch/math/numpy/"
        f"typing, or read it from `state`.",
    )


def check_attributes(ctx: _Context) -> list[Finding]:
    """Module members by full dotted name; other attributes by name; nothing starting with `_`."""
    findings = []
    inner: set[int] = set()
    for node in ast.walk(ctx.tree):
        if not isinstance(node, ast.Attribute) or id(node) in inner:
            continue
        chain = node.value
        while isinstance(chain, ast.Attribute):
            inner.add(id(chain))
            chain = chain.value
        findings += _check_attribute_chain(ctx, node)
    return findings


def _check_attribute_chain(ctx: _Context, node: ast.Attribute) -> list[Finding]:
    parts: list[ast.Attribute] = []
    cur: ast.expr = node
    while isinstance(cur, ast.Attribute):
        parts.append(cur)
        cur = cur.value
    parts.reverse()  # innermost first: torch, torch.linalg, torch.linalg.norm
    module = ctx.aliases.get(cur.id) if isinstance(cur, ast.Name) else None
    for part in parts:
        if part.attr.startswith("_"):
            return [
                _policy(
                    part,
                    f"attribute {part.attr}",
                    f"Line {part.lineno}: `.{part.attr}` is not allowed: names starting with `_` are "
                    f"private or reach the interpreter's internals (`__class__`, `__globals__`, "
                    f"`_raw`). Use the public State API (`state.body(name).pos`, `state.joint_pos`, ...).",
                )
            ]
        if module is not None:
            dotted = f"{module}.{part.attr}"
            if dotted in ALLOWED_MODULE_ATTRIBUTES:
                module = None  # a member: later attributes are checked by name
                continue
            if dotted in _MODULE_PREFIXES:
                module = dotted
                continue
            return [_module_attribute(part, dotted)]
        if part.attr not in ALLOWED_ATTRIBUTES:
            return [_attribute(part)]
    return []


def _module_attribute(node: ast.expr, dotted: str) -> Finding:
    name = dotted.rsplit(".", 1)[1]
    if name.endswith("_"):
        why = "it changes a tensor in place; use the out-of-place form"
    elif name in {
        "save",
        "load",
        "hub",
        "from_file",
        "savetxt",
        "loadtxt",
        "fromfile",
        "tofile",
        "savez",
        "memmap",
        "genfromtxt",
    }:
        why = "reward code may not read or write files"
    elif (
        name.startswith(("rand", "normal", "bernoulli", "multinomial", "manual_seed", "seed", "poisson"))
        or ".random" in dotted
    ):
        why = "random numbers make the reward non-deterministic and move the trainer's random state"
    elif name.startswith("set_") or name in {"ops", "classes", "utils", "backends", "cuda", "distributed"}:
        why = "reward code may not change torch's global settings or reach its extension machinery"
    else:
        why = "it is not on the allowlist of pure tensor math"
    return _policy(
        node,
        dotted,
        f"Line {node.lineno}: `{dotted}` is not allowed: {why}. Use pure functions "
        f"such as `torch.exp`, `torch.clamp`, `torch.where`, `torch.linalg.norm`, "
        f"`torch.nn.functional.softplus`.",
    )


def _attribute(node: ast.Attribute) -> Finding:
    name = node.attr
    if name.endswith("_") and name.rstrip("_") in ALLOWED_ATTRIBUTES:
        return _policy(
            node,
            f".{name}()",
            f"Line {node.lineno}: `.{name}()` changes a tensor in place, "
            f"which could change the simulator's state. Write "
            f"`x = x.{name.rstrip('_')}(...)` instead.",
        )
    if name in {"format", "format_map"}:
        return _policy(
            node,
            f".{name}",
            f"Line {node.lineno}: `str.{name}` can read attributes through its "
            f"format string and is not allowed. Use an f-string with plain names.",
        )
    return _policy(
        node,
        f"attribute .{name}",
        f"Line {node.lineno}: `.{name}` is not an allowed attribute. Reward code may read the State "
        f"API (`state.body(name).pos/.up/.lin_vel/...`, `state.joint(name).pos/.vel`, "
        f"`state.com_vel`, `state.dt`, ...) and use out-of-place tensor methods (`.sum`, `.clamp`, "
        f"`.norm`, ...).",
    )


def check_calls(ctx: _Context) -> list[Finding]:
    """No `out=` arguments (they write into an existing tensor)."""
    findings = []
    for node in ast.walk(ctx.tree):
        if isinstance(node, ast.Call):
            for kw in node.keywords:
                if kw.arg == "out":
                    findings.append(
                        _policy(
                            node,
                            "out= argument",
                            f"Line {node.lineno}: `out=` writes into an existing tensor, which "
                            f"could be the simulator's state. Assign the result instead: "
                            f"`y = {ast.unparse(node.func)}(...)`.",
                        )
                    )
    return findings


def check_assignments(ctx: _Context) -> list[Finding]:
    """No attribute assignment; item assignment only into objects the function created itself.

    `x += y` on a plain name is fine: the loader rewrites it as `x = x + y`, so it never
    changes a tensor in place. `x[mask] = v` is fine when every assignment to `x` in that
    function creates a new object (`torch.zeros_like(...)`, arithmetic, `.clone()`, `{}`);
    otherwise `x` might be a view of the state or the action.
    """
    findings = []
    for fn in [n for n in ast.walk(ctx.tree) if isinstance(n, ast.FunctionDef)]:
        bindings: dict[str, list[ast.expr | None]] = {}
        params = {
            a.arg
            for a in [*fn.args.posonlyargs, *fn.args.args, *fn.args.kwonlyargs, fn.args.vararg, fn.args.kwarg]
            if a is not None
        }
        for node in _walk_function(fn):
            if isinstance(node, ast.Assign):
                for t in node.targets:
                    _record(bindings, t, node.value)
            elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
                _record(
                    bindings,
                    node.target,
                    node.value
                    if isinstance(node, ast.AnnAssign)
                    else ast.BinOp(left=node.target, op=node.op, right=node.value),
                )
            elif isinstance(node, (ast.For, ast.comprehension)):
                _record(bindings, node.target, None)
            elif isinstance(node, ast.NamedExpr):
                _record(bindings, node.target, node.value)
        for node in _walk_function(fn):
            targets = (
                node.targets
                if isinstance(node, ast.Assign)
                else ([node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else [])
            )
            for target in targets:
                for t in _flatten(target):
                    if isinstance(t, ast.Attribute):
                        findings.append(
                            _policy(
                                t,
                                "attribute assignment",
                                f"Line {t.lineno}: assigning to `{ast.unparse(t)}` changes an "
                                f"object the code did not create (the state, a tensor, a module). "
                                f"Use a local variable.",
                            )
                        )
                    elif isinstance(t, ast.Subscript):
                        base = t.value
                        while isinstance(base, ast.Subscript):
                            base = base.value
                        name = base.id if isinstance(base, ast.Name) else None
                        if (
                            name is None
                            or name in params
                            or not bindings.get(name)
                            or not all(_fresh(v, ctx) for v in bindings[name])
                        ):
                            findings.append(_item_assignment(t, name, params))
    return findings


def _walk_function(fn: ast.FunctionDef) -> Iterator[ast.AST]:
    """Nodes of `fn`'s body, not descending into nested functions (they have their own scope)."""
    stack: list[ast.AST] = list(fn.body)
    while stack:
        node = stack.pop()
        yield node
        stack.extend(c for c in ast.iter_child_nodes(node) if not isinstance(c, (ast.FunctionDef, ast.Lambda)))


def _flatten(target: ast.expr) -> list[ast.expr]:
    if isinstance(target, (ast.Tuple, ast.List)):
        return [t for e in target.elts for t in _flatten(e)]
    return [target.value] if isinstance(target, ast.Starred) else [target]


def _record(bindings: dict[str, list[ast.expr | None]], target: ast.expr, value: ast.expr | None) -> None:
    if isinstance(target, ast.Name):
        bindings.setdefault(target.id, []).append(value)
    else:
        for t in _flatten(target):
            if isinstance(t, ast.Name):
                bindings.setdefault(t.id, []).append(None)  # unpacked: might be anything


def _fresh(value: ast.expr | None, ctx: _Context) -> bool:
    """True when `value` certainly evaluates to a new object (not a view of an input)."""
    if value is None:
        return False
    if isinstance(
        value,
        (
            ast.Dict,
            ast.List,
            ast.DictComp,
            ast.ListComp,
            ast.Set,
            ast.SetComp,
            ast.BinOp,
            ast.UnaryOp,
            ast.Compare,
            ast.Constant,
        ),
    ):
        return True
    if isinstance(value, ast.IfExp):
        return _fresh(value.body, ctx) and _fresh(value.orelse, ctx)
    if isinstance(value, ast.Call):
        func = value.func
        dotted = ctx.dotted(func)
        if dotted is not None:
            return dotted in FRESH_CONSTRUCTORS or (
                dotted.startswith("torch.") and dotted.rsplit(".", 1)[1] not in _VIEW_METHODS
            )
        if isinstance(func, ast.Name):
            return func.id in FRESH_CONSTRUCTORS
        if isinstance(func, ast.Attribute):
            return (
                func.attr in FRESH_METHODS
                or func.attr not in _VIEW_METHODS
                and func.attr in ALLOWED_ATTRIBUTES
                and func.attr not in {"body", "joint", "items", "keys", "values"}
            )
    return False


def _item_assignment(t: ast.Subscript, name: str | None, params: set[str]) -> Finding:
    what = f"`{name}`" if name else "this object"
    why = (
        "is an input"
        if name in params
        else "may be a view of the state or the action (it was not created "
        "by `torch.zeros_like`, arithmetic or `.clone()` in this function)"
    )
    return _policy(
        t,
        "item assignment",
        f"Line {t.lineno}: `{ast.unparse(t)} = ...` writes into {what}, which {why}; that would "
        f"change the simulator's data in place. Build a new tensor instead: "
        f"`x = torch.where(mask, value, x)`, or copy first with `x = x.clone()`.",
    )


def check_recursion(ctx: _Context) -> list[Finding]:
    """No function may call itself, directly or through others (stack exhaustion, exponential time)."""
    calls: dict[str, set[str]] = {}
    for name, fn in ctx.functions.items():
        calls[name] = {
            n.func.id
            for n in ast.walk(fn)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in ctx.functions
        }
    for start, fn in ctx.functions.items():
        seen: set[str] = set()
        stack = list(calls[start])
        while stack:
            cur = stack.pop()
            if cur == start:
                return [
                    _policy(
                        fn,
                        "recursion",
                        f"Line {fn.lineno}: `{start}` calls itself (directly or through another "
                        f"function); recursion is not allowed. Use vectorized tensor operations or a "
                        f"`for` loop over a small fixed range.",
                    )
                ]
            if cur not in seen:
                seen.add(cur)
                stack.extend(calls.get(cur, ()))
    return []
