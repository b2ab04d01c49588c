"""Pull the code out of an LLM reply the way real replies come.

Replies wrap code in Markdown fences (with or without a language tag, sometimes
several blocks, sometimes an unclosed one when the reply was cut off), surround it with
prose, use Windows line endings or tabs, and indent a block inside a list item. This
module turns any of that into one parseable module, or a `Finding` that says why not.
Nothing here executes the code.
"""

from __future__ import annotations

import ast
import re
import textwrap

from synth_reward.sandbox.records import FUNCTION_NAMES, SIGNATURES, Finding, Kind

_FENCE_OPEN = re.compile(r"^[ \t]*(`{3,}|~{3,})[ \t]*([\w+#.-]*)[^\n]*$")
_CODE_START = re.compile(r"^(import |from |def |@|[A-Z_][A-Z0-9_]*\s*(:[^=]*)?=)")
_TRANSLATE = str.maketrans({"\u00a0": " ", "\u200b": "", "\ufeff": "", "\u2009": " "})
_MAX_TRIM_LINES = 600
MAX_REPLY_CHARS = 200_000
"""Longer replies are rejected before any parsing (a reward is a few hundred lines at most)."""


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(language tag, body) of every fenced block; an unclosed last fence runs to the end."""
    blocks: list[tuple[str, str]] = []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        match = _FENCE_OPEN.match(lines[i])
        if not match:
            i += 1
            continue
        fence, tag = match.group(1), match.group(2).lower()
        body: list[str] = []
        i += 1
        while i < len(lines) and not re.match(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$", lines[i]):
            body.append(lines[i])
            i += 1
        blocks.append((tag, "\n".join(body)))
        i += 1
    return blocks


def normalize(text: str) -> str:
    """Unix line endings, no byte-order mark or non-breaking spaces, common indent removed."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").translate(_TRANSLATE)
    return textwrap.dedent(text).rstrip() + "\n"


def parse(code: str) -> tuple[ast.Module | None, str, Finding | None]:
    """Parse, retrying with tabs expanded (8, then 4 columns) when indentation is the only problem."""
    first_error: Finding | None = None
    for attempt in (code, _expand_leading_tabs(code, 8), _expand_leading_tabs(code, 4)):
        try:
            return ast.parse(attempt), attempt, None
        except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
            if first_error is None:
                first_error = _syntax_finding(exc)
            if not isinstance(exc, (TabError, IndentationError)) or "\t" not in code:
                break
    return None, code, first_error


def extract(reply: str, kind: Kind) -> tuple[str, ast.Module] | Finding:
    """The code (and its AST) that defines the function `kind` needs, from a reply or a file.

    Picks the last fenced block that defines the function (a reply that revises its first
    attempt puts the fixed one last); with no fences, the whole text, trimmed of the prose
    before the first import/def and after the last line that still parses.
    """
    name = FUNCTION_NAMES[kind]
    if len(reply) > MAX_REPLY_CHARS:
        return Finding(
            stage="extract",
            culprit="reply size",
            reason=f"The reply is {len(reply):,} characters; at most {MAX_REPLY_CHARS:,} are read. "
            f"Send only the code of `{SIGNATURES[kind]}` and its helpers.",
        )
    text = reply.replace("\r\n", "\n").replace("\r", "\n")
    blocks = [normalize(body) for _, body in fenced_blocks(text)]
    defining = [b for b in blocks if _defines(b, name)]
    if defining:
        candidates = [defining[-1]]
    elif blocks:
        candidates = blocks[::-1] + [normalize(text)]
    else:
        candidates = [normalize(text)]
    first_problem: Finding | None = None
    for code in candidates:
        tree, code, problem = parse(code)
        if tree is None:
            trimmed = _trim_prose(code)
            if trimmed is not None and _tree_defines(trimmed[0], name):
                return trimmed[1], trimmed[0]
        elif _tree_defines(tree, name):
            return code, tree
        if first_problem is None:
            first_problem = problem if tree is None else _missing(tree, kind)
    return first_problem or Finding(
        stage="extract",
        culprit="no code",
        reason=f"No Python code was found. Reply with one ```python block that defines `{SIGNATURES[kind]}`.",
    )


def _defines(code: str, name: str) -> bool:
    return re.search(rf"^\s*def\s+{name}\s*\(", code, re.M) is not None


def _tree_defines(tree: ast.Module, name: str) -> bool:
    return any(isinstance(n, ast.FunctionDef) and n.name == name for n in tree.body)


def _missing(tree: ast.Module, kind: Kind) -> Finding:
    found = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    seen = f"it defines {', '.join(f'`{f}`' for f in found)}" if found else "it defines no function"
    return Finding(
        stage="extract",
        culprit="missing function",
        reason=f"The code must define `{SIGNATURES[kind]}` at top level, but {seen}. "
        f"Rename the main function to `{FUNCTION_NAMES[kind]}` or add it.",
    )


def _trim_prose(code: str) -> tuple[ast.Module, str] | None:
    """Drop prose before the first code-looking line and after the last line that still parses."""
    lines = code.split("\n")
    starts = [i for i, line in enumerate(lines) if _CODE_START.match(line)]
    if not starts:
        return None
    lines = lines[starts[0] :][:_MAX_TRIM_LINES]
    for end in range(len(lines), 0, -1):
        if end < len(lines) and lines[end - 1][:1] in (" ", "\t"):
            continue  # never cut inside an indented block
        attempt = "\n".join(lines[:end]).rstrip() + "\n"
        tree, attempt, _ = parse(attempt)
        if tree is not None:
            return tree, attempt
    return None


def _expand_leading_tabs(code: str, size: int) -> str:
    out = []
    for line in code.split("\n"):
        stripped = line.lstrip(" \t")
        out.append(line[: len(line) - len(stripped)].expandtabs(size) + stripped)
    return "\n".join(out)


def _syntax_finding(exc: BaseException) -> Finding:
    if isinstance(exc, SyntaxError):
        where = f"line {exc.lineno}" + (f": `{exc.text.strip()}`" if exc.text and exc.text.strip() else "")
        return Finding(
            stage="syntax",
            line=exc.lineno,
            culprit="syntax error",
            reason=f"The code is not valid Python 3.11 ({exc.msg}, {where}). Fix the syntax; "
            f"send only Python code inside the ```python block.",
        )
    if isinstance(exc, (RecursionError, MemoryError)):
        return Finding(
            stage="syntax",
            culprit="nesting depth",
            reason="The code is nested too deeply to parse. Write flat expressions with intermediate variables.",
        )
    return Finding(
        stage="syntax",
        culprit="invalid source",
        reason=f"The code cannot be parsed ({exc}). Send plain Python source text.",
    )
