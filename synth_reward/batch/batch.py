"""A batch: one run folder per task of a suite, and batch.json saying which runs belong to it.

A unit of work is one task's whole run: `synth-reward resume RUN_DIR` in its own process,
which drives the run folder to its end through the agent loop (design, vet, search, final
evaluation and, for a batch, the human and sparse baselines). Every run is created, task
resolved, before any unit starts, so a unit needs nothing but its folder, and so does a Ray
worker on another machine that sees the same filesystem. Whatever a unit finished is in its
run folder; a unit started again (`--resume`, a Ray retry after a lost worker) continues
where the last one stopped, with nothing designed or trained twice (agent/loop.py).

Why whole runs and not finer units (one candidate's training): the search inside a run is
sequential by design (each rung picks who continues from the last rung's scores, each
iteration's designer reads the last iteration's analysis), so a run's candidates cannot be
scheduled independently; across tasks there is no such dependency, and runs parallelise
without any change to the loop. Ray Tune's schedulers (ASHA, HyperBand) were considered for
the search itself and not used: they schedule trials that report metrics from inside one
Python process, while a candidate here trains in a sandboxed child process whose bracket
must resume from the run folder after a kill; the loop keeps its own bracket
(agent/search.py) and the batch schedules runs.
"""

from __future__ import annotations

import datetime as _dt
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from synth_reward.atomic import write_json
from synth_reward.batch.records import BATCH_JSON, KIND, BatchEntry, BatchRecord, ExecutorName
from synth_reward.errors import UsageError

RUN_LOG = "batch_unit.log"
"""Each unit's output (the `resume` process's plain progress lines), in its run folder."""


def _now() -> str:
    return _dt.datetime.now().isoformat(timespec="seconds")


def run_name(task_id: str) -> str:
    """The run folder's name for a task: `humanoid/kneel` -> `humanoid-kneel`."""
    return task_id.replace("/", "-")


class Unit(BaseModel):
    """One task's run, as an executor receives it: everything is in the folder."""

    task_id: str
    run_dir: str


class Outcome(BaseModel):
    """What a unit ended as, read from the run's own run.json after its process exited."""

    task_id: str
    state: str
    reason: str = ""


def unit_argv(unit: Unit) -> list[str]:
    return [sys.executable, "-m", "synth_reward.cli", "resume", unit.run_dir]


_LIVE: dict[int, subprocess.Popen[bytes]] = {}
_LIVE_LOCK = threading.Lock()


def run_unit(unit: Unit) -> Outcome:
    """Drive one run folder to its end in a child process; the same function for every executor.

    The child gets SIGINT if this process dies (Linux's parent-death signal), so a killed
    batch never leaves a run being driven twice; SIGINT makes the loop stop its training
    process (which saves a checkpoint) and mark the run resumable.
    """
    run_dir = Path(unit.run_dir)
    with open(run_dir / RUN_LOG, "ab") as log:
        proc = subprocess.Popen(
            unit_argv(unit), stdout=log, stderr=subprocess.STDOUT, cwd=run_dir, preexec_fn=_die_with_parent
        )
        with _LIVE_LOCK:
            _LIVE[proc.pid] = proc
        try:
            status = proc.wait()
        except KeyboardInterrupt:  # (a Ray task cancelled: interrupt the run, let it save, then go)
            interrupt(proc)
            raise
        finally:
            with _LIVE_LOCK:
                _LIVE.pop(proc.pid, None)
    return outcome(unit, status)


def outcome(unit: Unit, status: int) -> Outcome:
    """The unit's state by its run.json: finished, stopped (resumable) or failed, with the reason."""
    from synth_reward.agent.store import RunStore

    try:
        info = RunStore(unit.run_dir).info()
    except UsageError as exc:
        return Outcome(task_id=unit.task_id, state="failed", reason=str(exc))
    if info.status == "finished" and status == 0:
        return Outcome(task_id=unit.task_id, state="finished", reason=info.message)
    if info.status in ("stopped", "failed"):
        return Outcome(task_id=unit.task_id, state=info.status, reason=info.message)
    tail = _tail(Path(unit.run_dir) / RUN_LOG)
    return Outcome(
        task_id=unit.task_id, state="failed", reason=f"the run's process exited with status {status}: {tail}"
    )


def interrupt(proc: subprocess.Popen[bytes], grace_s: float = 60.0) -> None:
    """SIGINT a unit's process (it stops its training and marks the run resumable); kill it if it hangs."""
    from synth_reward.agent.runner import descendants

    try:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        for pid in [*descendants(proc.pid), proc.pid]:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        proc.wait()
    except OSError:
        pass


def interrupt_all(grace_s: float = 60.0) -> None:
    """Interrupt every unit this process started (Ctrl-C of a local batch)."""
    with _LIVE_LOCK:
        procs = list(_LIVE.values())
    threads = [threading.Thread(target=interrupt, args=(p, grace_s)) for p in procs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _die_with_parent() -> None:
    """In the child, before exec: SIGINT when the batch process dies (prctl PR_SET_PDEATHSIG, Linux).

    SIGINT is reset to its default first: a batch started in the background by a shell inherits
    SIGINT ignored, and so would its units, which then could not be interrupted at all.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGINT)  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _tail(path: Path, lines: int = 3) -> str:
    from synth_reward.agent.runner import tail

    try:
        return tail(path.read_text(errors="replace"), lines)
    except OSError:
        return "(no output)"


class Batch:
    """A batch folder: batch.json and one run folder per task."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    # ---- creating and opening -----------------------------------------------------------
    @classmethod
    def create(
        cls,
        suite: str,
        task_ids: list[str] | None,
        settings: dict[str, Any],
        root: str | Path = "runs",
        *,
        executor: ExecutorName = "local",
        workers: int = 1,
        ray_address: str | None = None,
        cpus_per_run: int = 2,
    ) -> Batch:
        """Check everything, then write the batch folder: each task's run folder (run.json, task.json), then batch.json.

        `settings`: RunSettings fields for every run (without `instruction`; `designer`/`llm` from
        `settings_for`). Bad input (an unknown suite or task, a malformed suite file, a run that
        cannot be resolved) is a UsageError before anything is written.
        """
        from synth_reward.agent.loop import Loop
        from synth_reward.agent.records import RunSettings
        from synth_reward.agent.store import RunStore, check_writable
        from synth_reward.envs.tasks import add_suite_files, load_suite

        loaded = load_suite(suite)  # unknown suite, malformed file: one line naming it
        suite_file = None
        if Path(suite).suffix in {".yaml", ".yml"} or Path(suite).exists():
            suite_file = str(Path(suite).resolve())
            add_suite_files([suite_file])
        ids = [t.id for t in loaded.tasks]
        if task_ids:
            unknown = [t for t in task_ids if t not in ids]
            if unknown:
                raise UsageError(f"suite {loaded.name} has no task {', '.join(unknown)}; its tasks: {', '.join(ids)}")
            ids = [t for t in ids if t in task_ids]
        if not ids:
            raise UsageError(f"suite {loaded.name} has no tasks")
        runs = []
        for task_id in ids:
            run_settings = RunSettings(**{**settings, "instruction": task_id})
            runs.append((task_id, run_settings, Loop.prepare(run_settings)))
        root = check_writable(root)
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        for n in range(1, 1000):
            path = root / (f"batch-{stamp}-{loaded.name}" + (f"-{n}" if n > 1 else ""))
            try:
                path.mkdir()
                break
            except FileExistsError:
                continue
            except OSError as exc:
                raise UsageError(f"cannot write to output folder {root}: {exc.strerror}") from None
        else:
            raise UsageError(f"too many batches named batch-{stamp}-{loaded.name} in {root}")
        entries = []
        for task_id, run_settings, resolved in runs:
            store = RunStore.create(
                path, task_id, run_id=run_name(task_id), settings=run_settings.model_dump(mode="json")
            )
            store.write_json("task.json", resolved)  # the task as data: a unit needs no suite lookup
            entries.append(BatchEntry(task_id=task_id, run_id=store.run_id))
        record = BatchRecord(
            batch_id=path.name,
            suite=loaded.name if suite_file is None else suite_file,
            suite_file=suite_file,
            created=_now(),
            executor=executor,
            workers=workers,
            ray_address=ray_address,
            cpus_per_run=cpus_per_run,
            settings=settings,
            entries=entries,
        )
        batch = cls(path)
        write_json(path / BATCH_JSON, record)  # written last: a folder without it is not a batch
        return batch

    @classmethod
    def open(cls, batch: str | Path, root: str | Path = "runs") -> Batch:
        """An existing batch, by folder path or by batch id under `root`; UsageError in one line otherwise."""
        path = Path(batch).expanduser()
        if not (path / BATCH_JSON).is_file():
            path = Path(root).expanduser() / str(batch)
        if not (path / BATCH_JSON).is_file():
            raise UsageError(f"{str(batch)!r} is not a batch (a batch folder holds {BATCH_JSON}, written by `batch`)")
        opened = cls(path.resolve())
        opened.record()
        return opened

    # ---- the record ---------------------------------------------------------------------
    def record(self) -> BatchRecord:
        file = self.path / BATCH_JSON
        try:
            record = BatchRecord.model_validate_json(file.read_text(encoding="utf-8"))
        except OSError as exc:
            raise UsageError(f"cannot read {file}: {exc.strerror}") from None
        except ValidationError as exc:
            raise UsageError(f"{file} is not a batch record: {exc.errors()[0]['msg']}") from None
        if record.kind != KIND:
            raise UsageError(f"{file} is not a batch record")
        return record

    def update(self, task_id: str, **changes: Any) -> BatchRecord:
        """Change one entry atomically (the executor's threads call this as units start and end)."""
        with self._lock:
            record = self.record()
            record.entries = [e.model_copy(update=changes) if e.task_id == task_id else e for e in record.entries]
            write_json(self.path / BATCH_JSON, record)
        return record

    def run_dir(self, entry: BatchEntry) -> Path:
        return self.path / entry.run_id

    def units(self) -> list[Unit]:
        """The runs still to drive: every one not finished (a finished run is never touched again)."""
        return [
            Unit(task_id=e.task_id, run_dir=str(self.run_dir(e)))
            for e in self.record().entries
            if e.state != "finished"
        ]

    # ---- running --------------------------------------------------------------------------
    def run(self, executor: Executor, on_change: Callable[[], None] = lambda: None) -> BatchRecord:
        """Hand the unfinished units to the executor; record each one's start and outcome as it comes."""
        units = self.units()
        for unit in units:  # a unit that was running when its batch was killed is pending again
            self.update(unit.task_id, state="pending")

        def started(unit: Unit) -> None:
            entry = next(e for e in self.record().entries if e.task_id == unit.task_id)
            self.update(unit.task_id, state="running", started=_now(), ended=None, attempts=entry.attempts + 1)
            on_change()

        try:
            for done in executor.run(units, started):
                self.update(done.task_id, state=done.state, reason=done.reason, ended=_now())
                on_change()
        except KeyboardInterrupt:
            for e in self.record().entries:
                if e.state == "running":
                    self.update(e.task_id, state="stopped", reason="interrupted; continue with `batch --resume`")
            raise
        return self.record()


class Executor:
    """Where units run. `run` starts them (calling `started` for each as it starts) and yields outcomes."""

    name: str = ""

    def run(self, units: list[Unit], started: Callable[[Unit], None]) -> Iterable[Outcome]:
        raise NotImplementedError
