"""Listings in a pipe: one whole row per line (tab-separated, a header first), never wrapped; --json parses.

Rich wraps a table at 80 columns when stdout is not a terminal, so `synth-reward tasks | grep kneel` used to
find fragments of rows. These run the installed command's entry point as a subprocess with stdout a pipe.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from synth_reward.output import Column, plain_lines, print_records

ROOT = Path(__file__).parents[1]


def cli(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE", "COLUMNS")}
    code = f"from synth_reward.cli import main; import sys; sys.argv=['synth-reward', *{list(args)!r}]; main()"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    return out


def test_tasks_piped_gives_one_line_per_task() -> None:
    lines = cli("tasks").stdout.splitlines()
    header = lines[0].split("\t")
    assert header[:3] == ["suite", "task", "morphology"] and "instruction" in header
    kneel = [line for line in lines if "humanoid/kneel" in line]
    assert len(kneel) == 1
    cells = dict(zip(header, kneel[0].split("\t"), strict=True))
    assert cells["task"] == "humanoid/kneel"
    assert cells["morphology"] == "humanoid"
    assert cells["instruction"] == "make the humanoid kneel"
    assert all(len(line.split("\t")) == len(header) for line in lines)  # every line a whole row
    assert not any(c in "".join(lines) for c in "┃│━")  # no table drawing


def test_long_instructions_are_not_wrapped() -> None:
    tasks = json.loads(cli("tasks", "--json").stdout)
    longest = max(tasks, key=lambda t: len(t["instruction"]))
    assert len(longest["instruction"]) > 40
    lines = cli("tasks").stdout.splitlines()
    assert any(line.endswith("\t" + longest["instruction"]) for line in lines)
    assert len(lines) == len(tasks) + 1


def test_tasks_json() -> None:
    tasks = json.loads(cli("tasks", "--json").stdout)
    assert isinstance(tasks, list)
    kneel = next(t for t in tasks if t["task"] == "humanoid/kneel")
    assert kneel["morphology"] == "humanoid" and kneel["suite"] == "posture"
    assert kneel["instruction"] == "make the humanoid kneel" and isinstance(kneel["steps"], int)
    only = json.loads(cli("tasks", "--suite", "posture", "--json").stdout)
    assert {t["suite"] for t in only} == {"posture"}


def test_envs_piped_and_json() -> None:
    lines = cli("envs").stdout.splitlines()
    assert lines[0].split("\t")[:4] == ["morphology", "bodies", "joints", "actuators"]
    assert any(line.startswith("humanoid\t") for line in lines)
    envs = json.loads(cli("envs", "--json").stdout)
    humanoid = next(e for e in envs if e["morphology"] == "humanoid")
    assert humanoid["bodies"] > 0 and humanoid["joints"] > 0 and humanoid["actuators"] == 17
    assert humanoid["obs"] > 0 and humanoid["dt_s"] > 0


def test_helper_forms() -> None:
    """The one helper: plain cells lose tabs and newlines; a terminal gets a table; JSON is the records."""
    records = [{"name": "a\tb", "text": "line one\nline two", "n": None}]
    assert plain_lines(records, [Column("name"), Column("text", "the text"), Column("n")]) == [
        "name\tthe text\tn",
        "a b\tline one line two\t-",
    ]
    buf = io.StringIO()
    print_records(Console(file=buf, force_terminal=True, width=60), records, ["name", "text"])
    assert "┃" in buf.getvalue() or "│" in buf.getvalue()
    buf = io.StringIO()
    print_records(Console(file=buf, width=60), [{"x": "[bold]y[/]"}], ["x"], json_output=True)
    assert json.loads(buf.getvalue()) == [{"x": "[bold]y[/]"}]


def test_show_json(tmp_path: Path) -> None:
    from synth_reward.agent.store import RunStore

    store = RunStore.create(tmp_path / "runs", "make the humanoid kneel", settings={"samples": 3})
    candidate = store.candidate(1, 0)
    candidate.write("result", {"id": candidate.id, "stage": "trained", "success_rate": 0.5})
    shown = json.loads(cli("show", store.run_id, "--out", str(tmp_path / "runs"), "--json").stdout)
    assert shown["run_id"] == store.run_id and shown["instruction"] == "make the humanoid kneel"
    assert shown["candidates"] == [{"id": candidate.id, "stage": "trained", "success_rate": 0.5}]
    assert shown["report"] is None
