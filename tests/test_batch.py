"""`synth-reward batch`: a two-task suite through the local executor (killed, then resumed) and a real local
Ray instance, the same table from both; bad suite files and a missing Ray, as the installed command."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

EXE = shutil.which("synth-reward")

SUITE = """\
name: tiny
description: two small tasks for the batch tests (short episodes)
tasks:
  - id: tiny/cheetah_run
    morphology: half_cheetah
    instruction: make the half cheetah run forward
    success: cheetah_forward
    termination: none
    human_reward: gymnasium
    episode_length: 100
  - id: tiny/ant_lie
    morphology: ant
    instruction: make the ant lie down
    success: ant_lie_down
    termination: none
    episode_length: 100
"""
TINY = ["-k", "1", "-i", "1", "--steps", "1024", "--episodes", "2", "--final-episodes", "2", "--no-video"]
SAME = ["task_id", "state", "success", "human_success", "sparse_success", "human_normalized_score", "env_steps"]


def _cli(*args: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    assert EXE, "the synth-reward console script is not installed (pip install -e .)"
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")} | {"SYNTH_REWARD_MODEL": ""}
    return subprocess.run([EXE, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout)


def _batch_dir(root: Path) -> Path:
    found = [p for p in root.iterdir() if p.name.startswith("batch-")]
    assert len(found) == 1, found
    return found[0]


def _record(batch: Path) -> dict:
    return json.loads((batch / "batch.json").read_text())


@pytest.fixture(scope="module")
def local_batch(tmp_path_factory) -> dict:
    """A local batch (one run at a time) killed once its first run finished, then `batch --resume`d."""
    tmp = tmp_path_factory.mktemp("local")
    (tmp / "tiny.yaml").write_text(SUITE)
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")} | {"SYNTH_REWARD_MODEL": ""}
    proc = subprocess.Popen(
        [EXE or "synth-reward", "batch", "tiny.yaml", "--workers", "1", *TINY, "--out", "runs"],
        cwd=tmp,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline, first = time.monotonic() + 400, None
    while time.monotonic() < deadline and first is None:
        time.sleep(0.5)
        batches = list((tmp / "runs").glob("batch-*/batch.json"))
        if batches:
            done = [e for e in json.loads(batches[0].read_text())["entries"] if e["state"] == "finished"]
            first = done[0] if done else None
    assert first is not None, "the first run never finished"
    os.kill(proc.pid, signal.SIGKILL)  # the batch process dies at once; its unit gets SIGINT (parent-death signal)
    proc.wait()
    batch = _batch_dir(tmp / "runs")
    first_run = batch / first["run_id"]
    stamps = {p: p.stat().st_mtime_ns for p in first_run.rglob("*") if p.is_file()}
    time.sleep(3)  # (the interrupted unit marks its run stopped and exits)
    killed = _record(batch)
    resumed = _cli("batch", "--resume", str(batch), cwd=tmp)
    return {"tmp": tmp, "batch": batch, "first": first_run, "stamps": stamps, "killed": killed, "resumed": resumed}


def test_a_killed_batch_resumes_and_leaves_finished_runs_alone(local_batch) -> None:
    out = local_batch["resumed"]
    assert out.returncode == 0, out.stdout + out.stderr
    record = _record(local_batch["batch"])
    assert [e["state"] for e in record["entries"]] == ["finished", "finished"]
    assert [e["state"] for e in local_batch["killed"]["entries"]].count("finished") == 1
    first = local_batch["first"]
    after = {p: p.stat().st_mtime_ns for p in first.rglob("*") if p.is_file()}
    assert after == local_batch["stamps"], "the resumed batch touched a finished run"
    second = next(e for e in record["entries"] if (local_batch["batch"] / e["run_id"]) != first)
    assert second["attempts"] >= 1
    assert "resuming batch" in out.stdout and "1 unfinished runs" in out.stdout
    for run in record["entries"]:
        summary = json.loads((local_batch["batch"] / run["run_id"] / "summary.json").read_text())
        assert summary["status"] == "finished"
        assert summary["final"]["sparse_success"] is not None  # the sparse baseline trained and was evaluated


def test_the_table_in_three_formats_and_again_with_table(local_batch) -> None:
    batch = local_batch["batch"]
    md = (batch / "table.md").read_text()
    assert "tiny/cheetah_run" in md and "tiny/ant_lie" in md and "tasks reach 80% success" in md
    rows = list(csv.DictReader((batch / "table.csv").open()))
    assert [r["task_id"] for r in rows] == ["tiny/cheetah_run", "tiny/ant_lie"]
    cheetah, ant = rows
    assert cheetah["human_success"] != "" and ant["human_success"] == ""  # only the cheetah task has a human reward
    assert cheetah["human_normalized_score"] != "" and int(cheetah["env_steps"]) > 0
    page = (batch / "table.html").read_text()
    assert "<table>" in page and "data:image/png;base64," in page and "http" not in page.replace("http-equiv", "")
    again = _cli("batch", "--table", str(batch), "--json", cwd=local_batch["tmp"])
    assert again.returncode == 0, again.stderr
    value = json.loads(again.stdout)
    assert [r["task_id"] for r in value["rows"]] == ["tiny/cheetah_run", "tiny/ant_lie"]
    assert value["summary"]["tasks"] == 2 and value["summary"]["finished"] == 2
    plain = _cli("batch", "--table", str(batch), cwd=local_batch["tmp"])
    assert plain.returncode == 0 and plain.stdout.splitlines()[0].split("\t")[0] == "task"


def test_a_ray_batch_gives_the_same_table_as_the_local_one(local_batch, tmp_path) -> None:
    """A real local Ray instance (2 CPUs; each run declares 1), both runs at once."""
    (tmp_path / "tiny.yaml").write_text(SUITE)
    out = _cli(
        "batch", "tiny.yaml", "--executor", "ray", "--workers", "2", "--cpus-per-run", "1", *TINY, "--out", "runs",
        cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    ray_rows = list(csv.DictReader((_batch_dir(tmp_path / "runs") / "table.csv").open()))
    local_rows = list(csv.DictReader((local_batch["batch"] / "table.csv").open()))
    assert [{k: r[k] for k in SAME} for r in ray_rows] == [{k: r[k] for k in SAME} for r in local_rows]
    assert _record(_batch_dir(tmp_path / "runs"))["executor"] == "ray"


def test_a_malformed_suite_file_names_its_line(tmp_path) -> None:
    (tmp_path / "bad.yaml").write_text(SUITE.replace("morphology: ant", "morphology: octopus"))
    out = _cli("batch", "bad.yaml", "--out", "runs", cwd=tmp_path, timeout=120)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "line 11 (task 2)" in out.stderr and "octopus" in out.stderr
    assert not (tmp_path / "runs").exists()


def test_ray_not_installed_says_how_to_install_it(tmp_path) -> None:
    fake = tmp_path / "noray" / "ray"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('no ray here')\n")
    root = Path(__file__).parents[1]
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env["PYTHONPATH"] = os.pathsep.join([str(fake.parent), str(root)])
    out = subprocess.run(
        [sys.executable, "-m", "synth_reward.cli", "batch", "posture", "--executor", "ray", "--out", "runs"],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120,
    )  # fmt: skip
    assert out.returncode == 2, out.stderr
    assert 'pip install "synth-reward[ray]"' in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "runs").exists()
