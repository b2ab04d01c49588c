"""The runner: synth-reward's own `train`, `eval` and `analyze` commands in isolated child processes.

A candidate's reward is untrusted code, so everything that runs it (training, evaluation,
analysis, videos) runs in a child process isolated by the sandbox: no network, writes only
to the candidate's folder (synth_reward/sandbox/isolation.py). The child gets the task as
data, `task.json` in that folder, read by `--task-file`; nothing reaches it through the
environment. Every call first looks for the record its command writes and returns it
without running anything when it is there, so a resumed run repeats no work; a training cut
short by a kill continues from its last checkpoint.

The runner returns the trainer's typed records (`TrainResult`, `EvalResult`, `Analysis`),
read back with `model_validate`. The loop, the final evaluation and the review page (#21)
and batch runs (#22) use the same calls.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from synth_reward.atomic import write_json
from synth_reward.envs.tasks import Task
from synth_reward.train.analyzer import Analysis
from synth_reward.train.evaluate import EvalResult
from synth_reward.train.records import ANALYSIS_JSON, CHECKPOINT_DIR, MANIFEST, RESULT, RunManifest, TrainResult

TASK_FILE = "task.json"
"""The task, as data, in every folder a child process works in."""
STOPPED_EARLY = "stopped early"
"""How a TrainResult's reason starts when training stopped at its --stop-at success rate (train/trainer.py)."""
OFFSCREEN_GL = ("egl", "osmesa")
"""MUJOCO_GL values that render without a display (the isolated children have none)."""

Event = Callable[[str, dict[str, Any]], None]
M = TypeVar("M", bound=BaseModel)


def _noop(event: str, data: dict[str, Any]) -> None:
    pass


def _noop_log(kind: str, **data: Any) -> None:
    pass


class Runner:
    """Runs the training-side commands for one task, each in an isolated process writing one folder."""

    def __init__(
        self,
        task: Task,
        *,
        timeout_s: float = 6 * 3600,
        emit: Event = _noop,
        log: Callable[..., None] = _noop_log,
        physics: Sequence[str] = (),
        warp_cache: str | None = None,
    ) -> None:
        """physics: `--backend`/`--device` options given to every train and eval command (the run's settings).
        warp_cache: Warp's kernel cache (WARP_CACHE_PATH), already filled: the isolated processes read it there
        instead of compiling into their own folder (a minute each on Warp's CPU device)."""
        self.task, self.timeout_s, self.emit, self.log = task, timeout_s, emit, log
        self.physics = list(physics)
        self.warp_cache = warp_cache

    # ---- the three commands ----------------------------------------------------------------
    def train(
        self,
        folder: Path,
        out: str = "train",
        *,
        label: str = "",
        reward: Path | None = None,
        sparse: bool = False,
        seed: int = 0,
        steps: int | None = None,
        num_envs: int | None = None,
        vetted: bool = True,
        stop_at: float | None = None,
    ) -> TrainResult:
        """`synth-reward train` into FOLDER/OUT; its TrainResult.

        A finished result is returned as it is, unless it is a completed run short of `steps`: that one
        continues from its checkpoint (a later rung of the search), or one that stopped early at `stop_at`
        (a training success rate). reward None and not sparse: the
        task's human reward. A process that dies without a result gets a failed one written for it, so
        that resume does not repeat it.
        """
        run = folder / out
        done = read_record(run / RESULT, TrainResult)
        if done is not None and (
            done.status == "failed"
            or (
                done.status == "completed"
                and (steps is None or done.env_steps >= steps or done.reason.startswith(STOPPED_EARLY))
            )
        ):
            return done
        argv = self.train_argv(
            folder, out, reward=reward, sparse=sparse, seed=seed, steps=steps, num_envs=num_envs, vetted=vetted
        )
        if stop_at is not None:
            argv += ["--stop-at", str(stop_at)]
        self.emit("stage", {"id": label, "stage": f"training ({out})", "folder": str(run)})
        status, log = self.command(argv, folder, f"{out}.log")
        result = read_record(run / RESULT, TrainResult)
        if result is None or result.status not in ("completed", "failed"):
            result = TrainResult(
                status="failed",
                reason=f"training process exited with status {status}: {tail(log)}",
                run_dir=str(run),
                iterations=0,
                env_steps=0,
                wall_seconds=0.0,
                steps_per_second=0.0,
            )
            write_json(run / RESULT, result)
        return result

    def train_argv(
        self,
        folder: Path,
        out: str = "train",
        *,
        reward: Path | None = None,
        sparse: bool = False,
        seed: int = 0,
        steps: int | None = None,
        num_envs: int | None = None,
        vetted: bool = True,
    ) -> list[str]:
        """The `synth-reward train` command line; it resumes a training that a kill cut short."""
        run = folder / out
        argv = [*_command("train"), "--task-file", str(self._task_file(folder)), "--out", str(run)]
        argv += ["--seed", str(seed)]
        if reward is not None:
            argv += ["--reward", str(reward)]
            if vetted:
                argv.append("--vetted")  # the critic already vetted it: no second probe
        elif sparse:
            argv.append("--sparse")
        if steps:
            argv += ["--steps", str(steps)]
        if num_envs:
            argv += ["--num-envs", str(num_envs)]
        argv += self.physics
        if (run / CHECKPOINT_DIR / "last.pt").exists() and (run / MANIFEST).exists():
            argv.append("--resume")
        return argv

    def analyze(self, folder: Path, out: str = "train", *, episodes: int = 8, label: str = "") -> Analysis | None:
        """`synth-reward analyze` of FOLDER/OUT (it evaluates first); its Analysis, or None when it failed.

        A failure is written to FOLDER/analyze_error_OUT.json with its reason and is not repeated."""
        run, error = folder / out, folder / f"analyze_error_{out}.json"
        saved = read_record(run / ANALYSIS_JSON, Analysis)
        if saved is not None or error.exists():
            return saved
        self._migrate_manifest(run)
        self.emit("stage", {"id": label, "stage": "analyzing"})
        status, log = self.command(self.analyze_argv(run, episodes), folder, f"analyze_{out}.log")
        saved = read_record(run / ANALYSIS_JSON, Analysis)
        if saved is None:
            write_json(error, {"reason": f"analysis exited with status {status}: {tail(log)}"})
        return saved

    def analyze_argv(self, run: Path, episodes: int) -> list[str]:
        """The `analyze` command of a run folder: it evaluates on the run's physics first."""
        return [*_command("analyze"), str(run), "--episodes", str(episodes), *self.physics]

    def evaluate(
        self,
        folder: Path,
        out: str,
        dest: Path,
        *,
        episodes: int,
        seed: int | None = None,
        video: bool = False,
        log_name: str | None = None,
    ) -> tuple[EvalResult | None, str]:
        """`synth-reward eval` of FOLDER/OUT's checkpoint into DEST; (its EvalResult or None, the log's tail)."""
        run = folder / out
        self._migrate_manifest(run)
        argv = [*_command("eval"), str(run), "--episodes", str(episodes), "--out", str(dest)]
        if seed is not None:
            argv += ["--seed", str(seed)]
        if video:
            argv.append("--video")
        argv += self.physics
        status, log = self.command(argv, folder, log_name or f"eval_{dest.name}.log")
        result = read_record(dest / "eval.json", EvalResult)
        return result, f"status {status}: {tail(log)}"

    # ---- the isolated process ----------------------------------------------------------------
    def command(self, argv: list[str], folder: Path, log_name: str) -> tuple[int, str]:
        """Run argv isolated (no network, writes only to `folder`), output to FOLDER/LOG_NAME; (status, log)."""
        from synth_reward.sandbox.isolation import clean_env, isolated_command

        folder.mkdir(parents=True, exist_ok=True)
        cmd, report = isolated_command(argv, [folder])
        # Libraries drop caches into TMPDIR (torch: an empty torchinductor_<user>/ on import);
        # a scratch folder, removed afterwards, keeps them out of the user's run folder.
        scratch = folder / ".tmp"
        scratch.mkdir(exist_ok=True)
        # Videos render off-screen: through the caller's MUJOCO_GL if it is an off-screen one,
        # else EGL, else OSMesa (evaluate.py); the child has no display, so glfw cannot work there.
        gl = {"MUJOCO_GL": os.environ["MUJOCO_GL"]} if os.environ.get("MUJOCO_GL") in OFFSCREEN_GL else {}
        warp = {"WARP_CACHE_PATH": self.warp_cache} if self.warp_cache else {}
        env = clean_env(folder, COLUMNS="100", TMPDIR=str(scratch), **gl, **warp)
        log_path = folder / log_name
        try:  # the scratch folder goes on every way out, Ctrl-C included
            with open(log_path, "w") as log:
                proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=folder)
                deadline = time.monotonic() + self.timeout_s
                try:
                    while proc.poll() is None:
                        if time.monotonic() > deadline:
                            stop(proc, grace_s=30)
                            log.write(f"\nstopped after {self.timeout_s:.0f} s\n")
                            break
                        time.sleep(0.5)
                except KeyboardInterrupt:
                    stop(proc, grace_s=30)  # the trainer saves a checkpoint on SIGTERM
                    raise
            status = proc.wait()
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        self.log("process", argv=argv[3:], status=status, isolation=report.model_dump(mode="json"))
        return status, log_path.read_text(errors="replace")

    # ---- the task as data ----------------------------------------------------------------------
    def _task_file(self, folder: Path) -> Path:
        path = folder / TASK_FILE
        if read_record(path, Task) != self.task:
            write_json(path, self.task)
        return path

    def _migrate_manifest(self, run: Path) -> None:
        """A training folder written before the manifest carried its task (0.2) gets it, so that the child
        evaluating it needs no lookup (a run's free-form task is in no suite)."""
        manifest = read_record(run / MANIFEST, RunManifest)
        if manifest is not None and manifest.task is None and manifest.task_id == self.task.id:
            write_json(run / MANIFEST, manifest.model_copy(update={"task": self.task}))


def _command(name: str) -> list[str]:
    return [sys.executable, "-m", "synth_reward.cli", name]


def read_record(path: Path, model: type[M]) -> M | None:
    """A stage's record read back and validated, or None when it is missing or unreadable (not written yet)."""
    try:
        return model.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, ValidationError):
        return None


def stop(proc: subprocess.Popen[Any], grace_s: float) -> None:
    """SIGTERM the command's processes themselves (bwrap does not forward signals), then kill."""
    for pid in descendants(proc.pid) or [proc.pid]:
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            pass
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def descendants(pid: int) -> list[int]:
    """Host pids of a process's descendants (from /proc), deepest first."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], list(children.get(pid, []))
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out[::-1]


def tail(text: str, lines: int = 3) -> str:
    """The last non-empty lines of a log, joined on one line (at most 600 characters)."""
    kept = [line.strip() for line in text.strip().splitlines() if line.strip()][-lines:]
    return " | ".join(kept)[-600:]


def one_line(text: str) -> str:
    return " ".join(str(text).split())[:600]
