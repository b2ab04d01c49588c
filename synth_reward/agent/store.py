"""The run store: everything one run produces, under ``runs/<run-id>/``.

A run must survive being killed at any instant and resume with nothing paid for or
trained twice, so every write here is either

- atomic (write a temporary file in the same folder, flush, fsync, ``os.replace``): a
  reader sees the old file or the new one, never half of one; or
- an append of one whole JSON line to a ``.jsonl`` log, fsynced. A line torn by a kill
  is skipped on reading and fenced off (a newline is written first) before the next
  append, so one torn line never corrupts the lines after it.

Layout of a run folder::

    run.json                     RunInfo: id, instruction, status, settings
    events.jsonl                 append-only log of what happened, in order
    llm/prompts/<key>.json       every distinct prompt (message list) sent to the LLM
    llm/replies/<key>-<i>.json   sample i of that prompt: the reply, tokens, cost (the cache)
    llm/calls.jsonl              one line per HTTP attempt: tokens, cost, latency, error
    iter_<ii>/cand_<jj>/         one candidate: code.py, verdict.json, training.json, ...

Other stages put their own files anywhere under the run folder through
`write_json` / `write_text` / `append_jsonl` with a path relative to it.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import threading
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from synth_reward.atomic import to_json, write_text
from synth_reward.errors import UsageError

RunStatus = Literal["running", "finished", "stopped", "failed"]
_SLUG_DROP = {"make", "the", "a", "an", "please", "to", "its", "it"}


class RunInfo(BaseModel):
    """run.json: who this run is. Written at creation, updated as the run's status changes."""

    model_config = ConfigDict(extra="allow")

    run_id: str
    instruction: str
    created: str
    """ISO 8601 time of creation, UTC."""
    status: RunStatus = "running"
    """running: started or killed mid-way (resumable); finished / stopped (spend cap, Ctrl-C) / failed."""
    message: str = ""
    """Why the run stopped or failed, in one line."""
    settings: dict[str, Any] = Field(default_factory=dict)
    """Whatever the caller wants to find again on resume (designer, model, K, iterations...); no secrets."""


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds")


def slugify(text: str, max_len: int = 40) -> str:
    """A short, file-name-safe slug of an instruction ("make the humanoid kneel" -> "humanoid-kneel")."""
    words = [w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in _SLUG_DROP]
    slug = "-".join(words)[:max_len].strip("-")
    return slug or "run"


def new_run_id(instruction: str, now: _dt.datetime | None = None) -> str:
    """Timestamp (local time, sortable) plus a slug of the instruction: 20250101-120000-humanoid-kneel."""
    stamp = (now or _dt.datetime.now()).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{slugify(instruction)}"


def _to_jsonable(obj: Any) -> Any:
    if isinstance(obj, BaseModel):
        return obj.model_dump(mode="json")
    return obj


def _dumps(obj: Any, indent: int | None = 2) -> str:
    return to_json(obj, indent=indent)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every whole JSON object line of a log; a torn or corrupt line (a kill mid-write) is skipped."""
    if not path.exists():
        return []
    out: list[dict[str, Any]] = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            out.append(value)
    return out


def check_writable(root: str | Path) -> Path:
    """Create `root` if needed and prove a file can be written there; UsageError in one line if not.

    Call this before anything is spent or created, so a bad --out leaves nothing half-written.
    """
    root = Path(root).expanduser()
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / f".write-test-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        reason = exc.strerror or exc.__class__.__name__
        raise UsageError(f"cannot write to output folder {root}: {reason}") from None
    return root.resolve()


class CandidateStore:
    """One candidate's folder, ``iter_<ii>/cand_<jj>/``: its code and one JSON record per stage.

    Stage records are named by the stage that wrote them (``verdict``, ``review``,
    ``training``, ``analysis``...). The loop asks `has(stage)` on resume and skips any
    stage whose record is already there, so nothing is vetted or trained twice.
    """

    def __init__(self, store: RunStore, iteration: int, index: int) -> None:
        self.store, self.iteration, self.index = store, iteration, index
        self.rel = f"iter_{iteration:02d}/cand_{index:02d}"
        self.path = store.path / self.rel

    @property
    def id(self) -> str:
        """Stable name of the candidate in logs and reports: i<iteration>c<index>, or `final` for
        iter_00/cand_00, which holds the best reward's final retrainings."""
        return "final" if self.iteration == 0 else f"i{self.iteration}c{self.index}"

    def write_code(self, code: str, name: str = "code.py") -> Path:
        return self.store.write_text(f"{self.rel}/{name}", code)

    def code(self, name: str = "code.py") -> str | None:
        return self.store.read_text(f"{self.rel}/{name}")

    def write(self, stage: str, record: BaseModel | Mapping[str, Any]) -> Path:
        """Write the record of a stage (verdict, training, analysis...) as <stage>.json."""
        return self.store.write_json(f"{self.rel}/{stage}.json", record)

    def read(self, stage: str) -> dict[str, Any] | None:
        return self.store.read_json(f"{self.rel}/{stage}.json")

    def has(self, stage: str) -> bool:
        return (self.path / f"{stage}.json").exists()

    def file(self, name: str) -> Path:
        """Path for a file this candidate owns (a checkpoint, a video); the folder is created."""
        self.path.mkdir(parents=True, exist_ok=True)
        return self.path / name


class RunStore:
    """A run folder. Use `RunStore.create` for a new run and `RunStore.open` to resume one.

    All paths given to the methods are relative to the run folder; all writes are atomic
    or whole-line appends (see the module docstring). Methods are safe to call from
    several threads (the LLM client writes replies from its worker threads).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    # ---- creating and finding runs ---------------------------------------------------
    @classmethod
    def create(
        cls, root: str | Path, instruction: str, run_id: str | None = None, settings: Mapping[str, Any] | None = None
    ) -> RunStore:
        """Make ``root/<run-id>/`` and write run.json. UsageError (one line) if root is not writable."""
        root = check_writable(root)
        base = run_id or new_run_id(instruction)
        if run_id is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", run_id):
            raise UsageError(f"run id {run_id!r} must be letters, digits, '.', '_' or '-'")
        for n in range(1, 1000):
            candidate = base if n == 1 else f"{base}-{n}"
            try:
                (root / candidate).mkdir()
            except FileExistsError:
                if run_id is not None:
                    raise UsageError(
                        f"run {run_id!r} already exists in {root}; use `synth-reward resume {run_id}`"
                    ) from None
                continue
            except OSError as exc:
                raise UsageError(f"cannot write to output folder {root}: {exc.strerror}") from None
            store = cls(root / candidate)
            info = RunInfo(run_id=candidate, instruction=instruction, created=_now(), settings=dict(settings or {}))
            store.write_json("run.json", info)
            store.log("run_created", run_id=candidate, instruction=instruction)
            return store
        raise UsageError(f"too many runs named {base!r} in {root}")

    @classmethod
    def open(cls, run: str | Path, root: str | Path = "runs") -> RunStore:
        """An existing run, by folder path or by run id under `root`. UsageError naming recent runs if not found."""
        path = Path(run).expanduser()
        if not (path / "run.json").is_file():
            path = Path(root).expanduser() / str(run)
        if not (path / "run.json").is_file():
            recent = [r.run_id for r in list_runs(root)][-5:]
            hint = f"; recent runs in {root}: {', '.join(recent)}" if recent else f"; no runs in {root}"
            raise UsageError(f"no run {str(run)!r} (a run folder holds run.json){hint}")
        store = cls(path.resolve())
        store.info()  # fail now, in one line, if run.json is unreadable
        return store

    @property
    def run_id(self) -> str:
        return self.path.name

    # ---- run.json --------------------------------------------------------------------
    def info(self) -> RunInfo:
        data = self.read_json("run.json")
        if data is None:
            raise UsageError(f"{self.path / 'run.json'} is missing or not valid JSON")
        try:
            return RunInfo.model_validate(data)
        except ValueError as exc:
            raise UsageError(f"{self.path / 'run.json'} is not a run record: {str(exc).splitlines()[0]}") from None

    def update_info(self, **changes: Any) -> RunInfo:
        """Change fields of run.json (status, message, settings...) atomically."""
        with self._lock:
            info = self.info().model_copy(update=changes)
            self.write_json("run.json", info)
        return info

    # ---- generic files ---------------------------------------------------------------
    def _abs(self, rel: str | Path) -> Path:
        rel = Path(rel)
        if rel.is_absolute() or ".." in rel.parts:
            raise ValueError(f"store paths are relative to the run folder, got {rel}")
        return self.path / rel

    def write_text(self, rel: str | Path, text: str) -> Path:
        path = self._abs(rel)
        write_text(path, text)
        return path

    def read_text(self, rel: str | Path) -> str | None:
        path = self._abs(rel)
        try:
            return path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None

    def write_json(self, rel: str | Path, obj: BaseModel | Mapping[str, Any] | list[Any]) -> Path:
        return self.write_text(rel, _dumps(obj) + "\n")

    def read_json(self, rel: str | Path) -> Any:
        """The parsed file, or None when it is missing or not valid JSON (atomic writes make the latter rare)."""
        text = self.read_text(rel)
        if text is None:
            return None
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return None

    def exists(self, rel: str | Path) -> bool:
        return self._abs(rel).exists()

    def append_jsonl(self, rel: str | Path, record: BaseModel | Mapping[str, Any]) -> None:
        """Append one record as one line, fsynced; fences off a line torn by an earlier kill."""
        path = self._abs(rel)
        line = _dumps(record, indent=None).replace("\n", " ") + "\n"
        with self._lock:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "a+b") as fh:
                size = fh.seek(0, os.SEEK_END)
                if size:
                    fh.seek(size - 1)
                    if fh.read(1) != b"\n":
                        fh.write(b"\n")
                fh.write(line.encode("utf-8"))
                fh.flush()
                os.fsync(fh.fileno())

    def read_jsonl(self, rel: str | Path) -> list[dict[str, Any]]:
        return read_jsonl(self._abs(rel))

    # ---- event log -------------------------------------------------------------------
    def log(self, event: str, **data: Any) -> None:
        """Append an event to events.jsonl: {"t": ISO time, "event": name, ...data}."""
        self.append_jsonl(
            "events.jsonl", {"t": _now(), "event": event, **{k: _to_jsonable(v) for k, v in data.items()}}
        )

    def events(self, event: str | None = None) -> list[dict[str, Any]]:
        """The event log in order, optionally only events of one name."""
        events = self.read_jsonl("events.jsonl")
        return [e for e in events if event is None or e.get("event") == event]

    # ---- candidates ------------------------------------------------------------------
    def candidate(self, iteration: int, index: int) -> CandidateStore:
        return CandidateStore(self, iteration, index)

    def candidates(self, iteration: int | None = None) -> Iterator[CandidateStore]:
        """Every candidate folder on disk (of one iteration, or all), in order."""
        pattern = f"iter_{iteration:02d}" if iteration is not None else "iter_*"
        for it_dir in sorted(self.path.glob(pattern)):
            m = re.fullmatch(r"iter_(\d+)", it_dir.name)
            if not m or not it_dir.is_dir():
                continue
            for c_dir in sorted(it_dir.glob("cand_*")):
                mc = re.fullmatch(r"cand_(\d+)", c_dir.name)
                if mc and c_dir.is_dir():
                    yield CandidateStore(self, int(m.group(1)), int(mc.group(1)))

    # ---- LLM records (used by agent.llm.LLMClient) ---------------------------------
    def save_prompt(self, key: str, messages: list[dict[str, Any]], meta: Mapping[str, Any] | None = None) -> None:
        rel = f"llm/prompts/{key}.json"
        if not self.exists(rel):
            self.write_json(rel, {"key": key, **(meta or {}), "messages": messages})

    def llm_reply(self, key: str, sample: int) -> dict[str, Any] | None:
        """The stored reply for sample `sample` of prompt `key`, or None (the LLM cache)."""
        data = self.read_json(f"llm/replies/{key}-{sample}.json")
        return data if isinstance(data, dict) else None

    def save_llm_reply(self, key: str, sample: int, record: BaseModel | Mapping[str, Any]) -> None:
        self.write_json(f"llm/replies/{key}-{sample}.json", record)

    def log_llm_call(self, record: BaseModel | Mapping[str, Any]) -> None:
        self.append_jsonl("llm/calls.jsonl", record)

    def llm_calls(self) -> list[dict[str, Any]]:
        return self.read_jsonl("llm/calls.jsonl")


def list_runs(root: str | Path = "runs") -> list[RunInfo]:
    """Every run under `root` with a readable run.json, oldest first."""
    root = Path(root).expanduser()
    if not root.is_dir():
        return []
    runs: list[RunInfo] = []
    for path in root.iterdir():
        if not path.is_dir():
            continue
        try:
            runs.append(RunInfo.model_validate_json((path / "run.json").read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue
    return sorted(runs, key=lambda r: (r.created, r.run_id))
