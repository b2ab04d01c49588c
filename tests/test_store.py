"""The run store: atomic files, a log that survives a torn line, candidates, listing, bad folders."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from synth_reward.agent.store import RunStore, check_writable, list_runs, new_run_id, slugify
from synth_reward.errors import UsageError


def test_run_id_is_timestamp_and_slug():
    when = dt.datetime(2025, 1, 2, 3, 4, 5)
    assert new_run_id("Make the humanoid kneel!", when) == "20250102-030405-humanoid-kneel"
    assert slugify("   ") == "run"
    assert len(slugify("x" * 500)) <= 40


def test_create_writes_run_json_and_event(tmp_path):
    store = RunStore.create(tmp_path / "runs", "make the humanoid kneel", settings={"k": 4})
    info = store.info()
    assert info.instruction == "make the humanoid kneel" and info.status == "running" and info.settings == {"k": 4}
    assert store.events()[0]["event"] == "run_created"
    store.update_info(status="finished", message="done")
    assert RunStore.open(store.path).info().status == "finished"
    # the same id twice gets a suffix; an explicit id that exists is an error
    again = RunStore.create(tmp_path / "runs", "x", run_id=None)
    assert again.path != store.path
    with pytest.raises(UsageError, match="already exists"):
        RunStore.create(tmp_path / "runs", "x", run_id=store.run_id)


def test_same_second_ids_do_not_collide(tmp_path):
    a = RunStore.create(tmp_path, "make the ant lie down")
    b = RunStore.create(tmp_path, "make the ant lie down")
    assert a.run_id != b.run_id and b.run_id.startswith(a.run_id)


def test_open_by_id_and_unknown_run(tmp_path):
    store = RunStore.create(tmp_path, "make the humanoid sit")
    assert RunStore.open(store.run_id, root=tmp_path).path == store.path
    with pytest.raises(UsageError, match="no run 'nope'.*recent runs"):
        RunStore.open("nope", root=tmp_path)


def test_atomic_json_roundtrip_and_no_tmp_left(tmp_path):
    store = RunStore.create(tmp_path, "x")
    store.write_json("a/b.json", {"x": [1, 2], "nan": float("nan")})
    assert store.read_json("a/b.json")["x"] == [1, 2]
    assert store.read_json("missing.json") is None
    assert not list(store.path.rglob("*.tmp"))
    with pytest.raises(ValueError):
        store.write_text("../escape.txt", "no")


def test_jsonl_survives_a_torn_line(tmp_path):
    store = RunStore.create(tmp_path, "x")
    store.log("one", n=1)
    with open(store.path / "events.jsonl", "a") as fh:  # a kill in the middle of a write
        fh.write('{"t": "2025", "event": "tor')
    store.log("two", n=2)
    names = [e["event"] for e in store.events()]
    assert names == ["run_created", "one", "two"]
    assert store.events("two")[0]["n"] == 2


def test_candidate_folders(tmp_path):
    store = RunStore.create(tmp_path, "x")
    cand = store.candidate(1, 3)
    assert cand.id == "i1c3" and not cand.has("verdict")
    cand.write_code("def compute_reward(state, action): ...\n")
    cand.write("verdict", {"accepted": True})
    store.candidate(2, 0).write_code("pass\n")
    assert cand.has("verdict") and cand.read("verdict") == {"accepted": True}
    assert cand.code().startswith("def compute_reward")
    assert [c.id for c in store.candidates()] == ["i1c3", "i2c0"]
    assert [c.id for c in store.candidates(2)] == ["i2c0"]
    assert cand.file("policy.pt").parent == cand.path


def test_llm_records(tmp_path):
    store = RunStore.create(tmp_path, "x")
    store.save_prompt("k1", [{"role": "user", "content": "hi"}])
    store.save_llm_reply("k1", 0, {"text": "hello"})
    store.log_llm_call({"cost_usd": 0.5})
    assert store.llm_reply("k1", 0) == {"text": "hello"} and store.llm_reply("k1", 1) is None
    assert store.llm_calls() == [{"cost_usd": 0.5}]
    assert json.loads((store.path / "llm/prompts/k1.json").read_text())["messages"][0]["content"] == "hi"


def test_list_runs_skips_junk(tmp_path):
    RunStore.create(tmp_path, "first")
    (tmp_path / "not-a-run").mkdir()
    (tmp_path / "file.txt").write_text("x")
    assert [r.instruction for r in list_runs(tmp_path)] == ["first"]
    assert list_runs(tmp_path / "missing") == []


def test_unwritable_output_folder_is_one_line_usage_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("I am a file")
    with pytest.raises(UsageError, match="cannot write to output folder") as err:
        RunStore.create(blocker / "runs", "make the humanoid kneel")
    assert "\n" not in str(err.value) and err.value.exit_code == 2
    with pytest.raises(UsageError):
        check_writable(blocker)
    assert blocker.read_text() == "I am a file"
