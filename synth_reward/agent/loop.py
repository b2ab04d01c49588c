"""The agent loop: design → vet → (review) → train → analyze → select, for I iterations.

One `Loop` drives one run folder (agent/store.py). Every stage of every candidate writes
its record before the next stage starts, and every stage first looks for its record, so
`synth-reward resume RUN` continues a killed run with nothing designed, paid for or
trained twice (a training cut in the middle resumes from its last checkpoint).

Candidates train in their own process, isolated by the sandbox (no network, writes only
to the candidate's folder), through the same `synth-reward train` / `analyze` commands a
person uses; a candidate that fails anywhere is recorded with its reason and the loop
goes on. Fitness is the task's success rate on evaluation rollouts, never the reward the
designer wrote; ties go to progress toward success (mean fraction of successful steps).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field

from synth_reward.agent.llm import LLMClient, LLMError, LLMSettings, SpendCapReached, llm_available
from synth_reward.agent.offline import LABEL as OFFLINE_LABEL
from synth_reward.agent.offline import OfflineDesigner
from synth_reward.agent.prompts import (
    Best,
    Feedback,
    Note,
    designer_messages,
    parse_review,
    review_messages,
    success_messages,
)
from synth_reward.agent.resolve import ResolvedTask, resolve_task
from synth_reward.agent.search import Bracket, Protocol, Score, close_rung, new_bracket
from synth_reward.agent.store import CandidateStore, RunStore
from synth_reward.envs import describe_state
from synth_reward.errors import SynthRewardError, UsageError
from synth_reward.train.records import CHECKPOINT_DIR, MANIFEST

Designer = Literal["llm", "offline"]
_OFFSCREEN_GL = ("egl", "osmesa")
"""MUJOCO_GL values that render without a display (the isolated children have none)."""


class RunSettings(BaseModel):
    """Everything that defines a run; stored in run.json so that `resume` needs nothing else."""

    instruction: str
    env: str | None = None
    """Morphology, when the instruction does not name one."""
    success_file: str | None = None
    """A success check written by the person (for a free-form instruction)."""
    samples: int = Field(3, ge=1)
    """K: reward candidates per iteration (Eureka used 16)."""
    iterations: int = Field(2, ge=1)
    """I: design-train-analyze rounds (Eureka used 5)."""
    steps: int | None = Field(600_000, ge=1)
    """Env steps the search's winner trains (with successive halving the others train a half, a quarter...)."""
    search: Protocol = "halving"
    """halving: successive halving over each iteration's candidates (agent/search.py); full: every candidate
    trains `steps` (Eureka's protocol)."""
    final_seeds: int = Field(0, ge=0)
    """Retrain the best reward on this many fresh seeds at the end (Eureka's protocol; doubles the cost).
    0: the result is the winner's own policy, evaluated on fresh seeds."""
    final_episodes: int = Field(32, ge=1)
    """Evaluation episodes of the final policy (fresh seeds)."""
    final_steps: int | None = Field(None, ge=1)
    """Env steps of each final retraining (default: twice `steps`)."""
    eval_episodes: int = Field(8, ge=1)
    """Evaluation episodes per trained policy."""
    num_envs: int | None = Field(None, ge=1)
    review: bool = False
    """Ask the LLM to review each vetted reward against the task (Auto MC-Reward's critic)."""
    video: bool = True
    """Render MP4s of the best policy at the end."""
    human_normalized: bool = True
    """Where the task has a human reward, also train it and a sparse baseline for the human normalized score."""
    seed: int = 0
    designer: Designer = "offline"
    llm: dict[str, Any] = Field(default_factory=dict)
    """LLMSettings without secrets (designer == "llm")."""
    candidate_timeout_s: float = 6 * 3600
    """Wall-clock limit of one candidate's training process."""


class CandidateResult(BaseModel):
    """What the loop knows about one candidate: where it got to and how well it did."""

    id: str
    iteration: int
    index: int
    stage: str
    """rejected, review_objected, train_failed, eliminated (successive halving), analyze_failed or analyzed."""
    reason: str = ""
    success_rate: float | None = None
    progress: float | None = None
    """Mean fraction of evaluation steps on which the success check held (tie-breaker)."""
    components: list[str] = Field(default_factory=list)
    env_steps: int | None = None
    train_seconds: float | None = None


class FinalResult(BaseModel):
    """The final evaluation: the winner's own policy on fresh episodes (default), or the best reward retrained."""

    mode: Literal["own_policy", "retrained"] = "retrained"
    episodes: int | None = None
    """evaluation episodes (own_policy: of the winner's checkpoint, on seeds no training or selection used)."""
    seeds: list[int]
    success_rates: list[float]
    success_mean: float
    success_std: float
    human_normalized_score: float | None = None
    human_success: float | None = None
    sparse_success: float | None = None
    human_return: float | None = None
    """Mean evaluation return, under the task's human reward, of the policy trained on the human reward."""
    sparse_return: float | None = None
    """The same for the sparse baseline (trained on the success check alone)."""
    method_return: float | None = None
    """The same for the retrained best reward (mean over seeds)."""
    videos: list[str] = Field(default_factory=list)
    video_error: str | None = None
    """Why no video was rendered (the video process's status and last log lines), when none was."""


class RunSummary(BaseModel):
    run_id: str
    run_dir: str
    task_id: str
    instruction: str
    designer: str
    status: str
    message: str = ""
    candidates: list[CandidateResult]
    best: str | None = None
    best_success_rate: float | None = None
    best_reward_file: str | None = None
    final: FinalResult | None = None
    llm_cost_usd: float = 0.0
    llm_calls: int = 0
    """HTTP requests sent to the LLM (retries included; replies served from the store are not requests)."""
    llm_tokens: int = 0
    wall_seconds: float = 0.0


Event = Callable[[str, dict[str, Any]], None]


def _noop(event: str, data: dict[str, Any]) -> None:
    pass


def settings_for(
    instruction: str,
    model: str | None = None,
    api_base: str | None = None,
    spend_cap_usd: float | None = None,
    **fields: Any,
) -> tuple[RunSettings, LLMSettings | None, str]:
    """Resolve which designer a new run uses. Returns (settings, llm settings or None, a one-line note).

    No model configured: the offline template designer, said in one line. A model given
    explicitly whose key is missing: UsageError (exit 2), never a silent fallback.
    """
    llm = LLMSettings.from_env(model=model, api_base=api_base, spend_cap_usd=spend_cap_usd)
    ok, reason = llm_available(llm)
    if ok:
        return (
            RunSettings(instruction=instruction, designer="llm", llm=llm.public(), **fields),
            llm,
            f"designer: LLM {llm.model}" + (f" at {llm.api_base}" if llm.api_base else ""),
        )
    if model is not None:
        raise UsageError(f"cannot use model {model!r}: {reason}")
    note = f"{reason}; using the {OFFLINE_LABEL}"
    return RunSettings(instruction=instruction, designer="offline", **fields), None, note


class Loop:
    """Runs (or resumes) one run folder to the end. `on_event` feeds the live view."""

    def __init__(
        self,
        store: RunStore,
        settings: RunSettings,
        llm: LLMSettings | None = None,
        on_event: Event = _noop,
        resolved: ResolvedTask | None = None,
    ) -> None:
        self.store, self.settings, self.on_event = store, settings, on_event
        self._prepared = resolved
        self.client: LLMClient | None = None
        if settings.designer == "llm":
            llm = llm or LLMSettings.model_validate(settings.llm)
            self.client = LLMClient(llm, store, seed=settings.seed)
        self.offline = OfflineDesigner(seed=settings.seed)
        self.results: dict[str, CandidateResult] = {}
        self.resolved: ResolvedTask | None = None
        self.start = time.monotonic()

    # ---- the run -------------------------------------------------------------------------
    def run(self) -> RunSummary:
        store = self.store
        store.update_info(status="running", message="")
        self.stop_kind = ""
        try:
            self.resolved = self._resolve()
            self._emit("task", task=self.resolved.task_id, success=self.resolved.success_text)
            best: CandidateResult | None = None
            feedback: Feedback | None = None
            for iteration in range(1, self.settings.iterations + 1):
                self._emit("iteration", iteration=iteration, of=self.settings.iterations)
                self._iteration(iteration, best, feedback)
                best = self._best()
                feedback = self._feedback(iteration, best)
                store.log("iteration_done", iteration=iteration, best=best.id if best else None)
            summary = self._finish(best)
            store.update_info(status="finished", message=summary.message)
        except SpendCapReached as exc:
            self.stop_kind = "spend_cap"
            store.update_info(status="stopped", message=str(exc))
            summary = self._summary("stopped", str(exc), self._best())
        except LLMError as exc:
            self.stop_kind = "llm_error"
            store.update_info(status="stopped", message=f"LLM error: {exc}")
            summary = self._summary("stopped", f"LLM error: {exc}", self._best())
        except KeyboardInterrupt:
            store.update_info(status="stopped", message="interrupted; continue with `synth-reward resume`")
            raise
        except SynthRewardError as exc:
            store.update_info(status="failed", message=str(exc))
            raise
        store.write_json("summary.json", summary)
        store.write_text("report.md", render_report(summary, self.resolved))
        return summary

    def _emit(self, event: str, **data: Any) -> None:
        if self.client is not None:
            data.setdefault("llm_usd", self.client.usage.cost_usd)
        self.on_event(event, data)

    # ---- task and success check --------------------------------------------------------------
    @staticmethod
    def prepare(settings: RunSettings) -> ResolvedTask:
        """Resolve the task and vet a person's success file: all bad input is found before a run folder exists."""
        resolved = resolve_task(settings.instruction, env=settings.env, success_file=settings.success_file)
        if resolved.success_source == "file":
            from synth_reward.sandbox import vet_success

            verdict = vet_success(resolved.success_code or "", resolved.morphology)
            if not verdict.accepted:
                raise UsageError(
                    f"success file {resolved.success_file} was rejected at stage {verdict.stage}: "
                    f"{_one_line(verdict.reason)}"
                )
            resolved = resolved.with_success(verdict.code, "file")
        elif resolved.success_source == "to_write" and settings.designer != "llm":
            from synth_reward.agent.offline import understood

            raise UsageError(
                f"the {OFFLINE_LABEL} cannot write a success check for {resolved.instruction!r}; "
                f"pass one with --success FILE, configure an LLM (--model), or ask for one of: "
                f"{understood()}"
            )
        return resolved

    def _resolve(self) -> ResolvedTask:
        store = self.store
        saved = store.read_json("task.json")
        if saved is not None:
            return ResolvedTask.model_validate(saved)
        resolved = self._prepared or self.prepare(self.settings)
        if resolved.success_source == "to_write" and resolved.success_code is None:
            resolved = self._success_check(resolved)
        elif resolved.success_code is not None:
            store.write_text("success.py", resolved.success_code)
        task = resolved.to_task()
        store.write_text(
            "task_suite.yaml",
            yaml.safe_dump(
                {"name": "run", "tasks": [task.model_dump(mode="json", exclude_defaults=True)]}, sort_keys=False
            ),
        )
        store.write_json("task.json", resolved)  # the stage's commit record: written last
        store.log("task", task_id=resolved.task_id, free_form=resolved.free_form)
        return resolved

    def _success_check(self, resolved: ResolvedTask) -> ResolvedTask:
        """Have the LLM write the success check of a free-form instruction; vetted, then frozen for the run."""
        from synth_reward.sandbox import vet_success

        assert self.client is not None  # prepare() refused a free-form instruction without an LLM
        reasons: list[str]
        reasons, code = [], None
        for attempt in range(3):
            messages = success_messages(resolved)
            if reasons:
                messages.append({"role": "user", "content": "Your previous check was rejected: " + reasons[-1]})
            reply = self.client.complete(messages, n=1)[0]
            verdict = vet_success(reply.text or "", resolved.morphology)
            self.store.write_json(f"success_attempt_{attempt + 1}.json", verdict)
            if verdict.accepted:
                code = verdict.code
                break
            reasons.append(verdict.feedback())
        if code is None:
            raise SynthRewardError(
                "the designer wrote no acceptable success check in 3 tries: "
                + " | ".join(r.splitlines()[0] for r in reasons)
            )
        self.store.write_text("success.py", code)
        self._emit("success_check", code=code)
        return resolved.with_success(code, resolved.success_source)

    # ---- one iteration -----------------------------------------------------------------------
    def _iteration(self, iteration: int, best: CandidateResult | None, feedback: Feedback | None) -> None:
        """Design K candidates, vet each, then search among the vetted ones (agent/search.py)."""
        codes = self._design(iteration, best, feedback)
        vetted: list[CandidateStore] = []
        for index, code in enumerate(codes):
            cand = self.store.candidate(iteration, index)
            if cand.code("reply.txt") is None:
                cand.write_code(code, "reply.txt")
            failure = self._vet(cand, iteration, index)
            if failure is not None:
                self._record(cand, failure)
            else:
                vetted.append(cand)
        if vetted:
            self._search(iteration, vetted)

    def _record(self, cand: CandidateStore, result: CandidateResult) -> None:
        self.results[cand.id] = result
        cand.write("result", result)
        self._emit("candidate", **result.model_dump())

    def _search(self, iteration: int, cands: list[CandidateStore]) -> None:
        """Train the vetted candidates rung by rung; the bracket is saved after every candidate's rung."""
        s = self.settings
        by_id = {c.id: c for c in cands}
        path = f"iter_{iteration:02d}/bracket.json"
        saved = self.store.read_json(path)
        bracket = (
            Bracket.model_validate(saved)
            if saved is not None
            else new_bracket(list(by_id), s.steps or 0, s.search)
            if s.steps
            else new_bracket(list(by_id), 1, "full")
        )
        for r, rung in enumerate(bracket.rungs):
            if rung.survivors is not None:
                continue
            for cid in rung.candidates:
                if cid not in rung.scores:
                    steps = rung.budget if s.steps else None
                    rung.scores[cid] = self._train_score(by_id[cid], steps, rung=r, rungs=len(bracket.rungs))
                    self.store.write_json(path, bracket)
            close_rung(bracket, r)
            self.store.write_json(path, bracket)
        for cid, (r, score) in bracket.eliminated().items():
            cand = by_id[cid]
            common: dict[str, Any] = {"id": cid, "iteration": iteration, "index": cand.index}
            common["components"] = list((cand.read("verdict") or {}).get("components") or [])
            if score.failed:
                self._record(cand, CandidateResult(**common, stage="train_failed", reason=score.failed))
            else:
                self._record(
                    cand,
                    CandidateResult(
                        **common,
                        stage="eliminated",
                        success_rate=None,
                        progress=score.progress,
                        env_steps=score.env_steps,
                        reason=f"stopped after rung {r + 1} of {len(bracket.rungs)} ({score.env_steps:,} env steps): "
                        f"training success {score.success_rate or 0:.0%}, progress {score.progress or 0:.2f}, "
                        "below the candidates that continued",
                    ),
                )
        finalists = [c for c in bracket.rungs[-1].candidates if not bracket.rungs[-1].scores[c].failed]
        for cid in finalists:
            self._record(by_id[cid], self._analyzed(by_id[cid], iteration))

    def _train_score(self, cand: CandidateStore, steps: int | None, rung: int, rungs: int) -> Score:
        """Train (or continue) a candidate to `steps` and score it on its latest training record."""
        if rungs > 1:
            self._emit("stage", id=cand.id, stage=f"rung {rung + 1}/{rungs}: training to {steps:,} steps")
        train = self._train(cand, steps=steps)
        if train.get("status") != "completed":
            return Score(failed=_one_line(train.get("reason") or "training failed"))
        record = _last_record(cand.file("train"))
        return Score(
            success_rate=record.get("success_rate"),
            progress=record.get("success_fraction_mean"),
            env_steps=int(train.get("env_steps") or 0),
        )

    def _design(self, iteration: int, best: CandidateResult | None, feedback: Feedback | None) -> list[str]:
        """K replies (LLM) or K template rewards (offline); replies are cached in the store."""
        k, resolved = self.settings.samples, self._resolved
        saved = [self.store.candidate(iteration, j).code("reply.txt") for j in range(k)]
        if all(text is not None for text in saved):
            return [t for t in saved if t is not None]
        best_code = self._code(best) if best else None
        self._emit("designing", iteration=iteration, samples=k, designer=self.settings.designer)
        if self.client is None:
            analysis = self._analysis(best) if best else None
            fb = {"code": best_code, "analysis": analysis} if best_code else None
            return [c.code for c in self.offline.propose(resolved, k, feedback=fb, iteration=iteration)]
        messages = designer_messages(
            resolved,
            best=Best(candidate=best.id, code=best_code) if best and best_code else None,
            feedback=feedback,
            iteration=iteration,
            state_description=describe_state(resolved.morphology),
        )
        replies = self.client.complete(messages, n=k)
        return [r.text if r.ok else f"# the LLM call failed: {r.error}\n" for r in replies]

    def _vet(self, cand: CandidateStore, iteration: int, index: int) -> CandidateResult | None:
        """The critic (and the optional LLM review): None when the candidate may train, else its result."""
        base: dict[str, Any] = {"id": cand.id, "iteration": iteration, "index": index}
        verdict = cand.read("verdict")
        if verdict is None:
            from synth_reward.sandbox import vet_reward

            self._emit("stage", id=cand.id, stage="vetting")
            v = vet_reward(cand.code("reply.txt") or "", self._resolved.morphology, num_envs=self._num_envs)
            if v.accepted:
                cand.write_code(v.code, "reward.py")
            cand.write("verdict", v)  # the verdict is the stage's commit record: written last
            verdict = v.model_dump(mode="json")
        if not verdict["accepted"]:
            reason = f"rejected at {verdict['stage']}: {_one_line(verdict['reason'])}"
            return CandidateResult(**base, stage="rejected", reason=reason)
        components = list(verdict.get("components") or [])
        if self.settings.review and self.client is not None:
            review = cand.read("review")
            if review is None:
                self._emit("stage", id=cand.id, stage="review")
                reply = self.client.complete(review_messages(self._resolved, cand.code("reward.py") or ""), n=1)[0]
                r = parse_review(reply.text or "")
                cand.write("review", r)
                review = r.model_dump(mode="json")
            if not review["accepted"]:
                return CandidateResult(
                    **base, stage="review_objected", components=components, reason="; ".join(review["objections"])
                )
        return None

    def _analyzed(self, cand: CandidateStore, iteration: int) -> CandidateResult:
        """Evaluate and analyze a candidate that trained its whole budget."""
        base: dict[str, Any] = {"id": cand.id, "iteration": iteration, "index": cand.index}
        components = list((cand.read("verdict") or {}).get("components") or [])
        train = _read_json(cand.file("train") / "result.json") or {}
        if self._analyze(cand) is None:
            error = cand.read("analyze_error_train") or {}
            return CandidateResult(
                **base,
                stage="analyze_failed",
                components=components,
                reason=_one_line(error.get("reason", "evaluation failed")),
            )
        rate, progress = _eval_scores(cand.file("train"))
        return CandidateResult(
            **base,
            stage="analyzed",
            components=components,
            success_rate=rate,
            progress=progress,
            env_steps=train.get("env_steps"),
            train_seconds=train.get("wall_seconds"),
        )

    # ---- training and analysis in isolated processes -----------------------------------------
    def _train(
        self,
        cand: CandidateStore,
        *,
        out: str = "train",
        seed: int | None = None,
        steps: int | None = None,
        reward: bool = True,
        vetted: bool = True,
    ) -> dict[str, Any]:
        """`synth-reward train` on the candidate's reward in an isolated process; its result.json."""
        folder = cand.file(out)
        done = _read_json(folder / "result.json")
        if done is not None and (
            done.get("status") == "failed"
            or (done.get("status") == "completed" and (steps is None or (done.get("env_steps") or 0) >= steps))
        ):
            return done  # (a completed run short of `steps` continues from its checkpoint: a later rung)
        argv = self._train_argv(
            folder, cand.file("reward.py") if reward else None, seed=seed, steps=steps, vetted=vetted
        )
        self._emit("stage", id=cand.id, stage=f"training ({out})", folder=str(folder))
        code, log = self._isolated(argv, cand.file(""), f"{out}.log", watch=folder)
        result = _read_json(folder / "result.json")
        if result is None or result.get("status") not in ("completed", "failed"):
            result = {"status": "failed", "reason": f"training process exited with status {code}: {_tail(log)}"}
            _write_json(folder / "result.json", result)  # a failure is a result too: resume does not repeat it
        return result

    def _train_argv(
        self,
        folder: Path,
        reward: Path | None,
        *,
        seed: int | None = None,
        steps: int | None = None,
        vetted: bool = True,
    ) -> list[str]:
        """The `synth-reward train` command line; it resumes a training that a kill cut short."""
        s = self.settings
        argv = [
            sys.executable,
            "-m",
            "synth_reward.cli",
            "train",
            "--task",
            self._resolved.task_id,
            "--out",
            str(folder),
            "--seed",
            str(s.seed if seed is None else seed),
        ]
        if reward is not None:
            argv += ["--reward", str(reward)]
            if vetted:
                argv.append("--vetted")  # the loop's critic already vetted it: no second probe
        if steps or s.steps:
            argv += ["--steps", str(steps or s.steps)]
        if s.num_envs:
            argv += ["--num-envs", str(s.num_envs)]
        if (folder / CHECKPOINT_DIR / "last.pt").exists() and (folder / MANIFEST).exists():
            argv.append("--resume")
        return argv

    def _analyze(self, cand: CandidateStore, out: str = "train") -> dict[str, Any] | None:
        folder = cand.file(out)
        saved = _read_json(folder / "analysis.json")
        if saved is not None or cand.has(f"analyze_error_{out}"):
            return saved
        argv = [
            sys.executable,
            "-m",
            "synth_reward.cli",
            "analyze",
            str(folder),
            "--episodes",
            str(self.settings.eval_episodes),
        ]
        self._emit("stage", id=cand.id, stage="analyzing")
        code, log = self._isolated(argv, cand.file(""), f"analyze_{out}.log")
        saved = _read_json(folder / "analysis.json")
        if saved is None:
            cand.write(f"analyze_error_{out}", {"reason": f"analysis exited with status {code}: {_tail(log)}"})
        return saved

    def _isolated(self, argv: list[str], folder: Path, log_name: str, watch: Path | None = None) -> tuple[int, str]:
        """Run argv isolated (no network, writes only to `folder`), output to a log file; (status, log text)."""
        from synth_reward.sandbox.isolation import clean_env, isolated_command

        folder.mkdir(parents=True, exist_ok=True)
        suite = folder / "task_suite.yaml"
        if not suite.exists():
            suite.write_text(self.store.read_text("task_suite.yaml") or "")
        cmd, report = isolated_command(argv, [folder])
        # Libraries drop caches into TMPDIR (torch: an empty torchinductor_<user>/ on import);
        # a scratch folder, removed afterwards, keeps them out of the user's run folder.
        scratch = folder / ".tmp"
        scratch.mkdir(exist_ok=True)
        # Videos render off-screen: through the caller's MUJOCO_GL if it is an off-screen one,
        # else EGL, else OSMesa (evaluate.py); the child has no display, so glfw cannot work there.
        gl = {"MUJOCO_GL": os.environ["MUJOCO_GL"]} if os.environ.get("MUJOCO_GL") in _OFFSCREEN_GL else {}
        env = clean_env(folder, SYNTH_REWARD_SUITES=str(suite), COLUMNS="100", TMPDIR=str(scratch), **gl)
        log_path = folder / log_name
        try:  # the scratch folder goes on every way out, Ctrl-C included
            with open(log_path, "w") as log:
                proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=folder)
                deadline = time.monotonic() + self.settings.candidate_timeout_s
                try:
                    while proc.poll() is None:
                        if time.monotonic() > deadline:
                            _stop(proc, grace_s=30)
                            log.write(f"\nstopped after {self.settings.candidate_timeout_s:.0f} s\n")
                            break
                        if watch is not None:
                            self._emit("train_progress", records=_count_lines(watch / "records.jsonl"))
                        time.sleep(0.5)
                except KeyboardInterrupt:
                    _stop(proc, grace_s=30)  # the trainer saves a checkpoint on SIGTERM
                    raise
            status = proc.wait()
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        self.store.log("process", argv=argv[3:], status=status, isolation=report.model_dump(mode="json"))
        return status, log_path.read_text(errors="replace")

    # ---- selection and feedback ----------------------------------------------------------------
    def _best(self) -> CandidateResult | None:
        trained = [r for r in self.results.values() if r.stage == "analyzed" and r.success_rate is not None]
        if not trained:
            return None
        return max(trained, key=lambda r: (r.success_rate or 0.0, r.progress or 0.0, -r.iteration, -r.index))

    def _feedback(self, iteration: int, best: CandidateResult | None) -> Feedback:
        mine = [r for r in self.results.values() if r.iteration == iteration]
        fb = Feedback(
            rejections=[Note(candidate=r.id, reason=r.reason) for r in mine if r.stage == "rejected"],
            training_errors=[
                Note(candidate=r.id, reason=r.reason) for r in mine if r.stage in ("train_failed", "analyze_failed")
            ],
            review_objections=[f"{r.id}: {r.reason}" for r in mine if r.stage == "review_objected"],
        )
        if best is not None:
            fb.success_rate = best.success_rate
            fb.result = (
                f"Best so far: {best.id}, success rate {best.success_rate:.0%} over "
                f"{self.settings.eval_episodes} evaluation episodes "
                f"(mean successful-step fraction {best.progress or 0:.2f})."
            )
            fb.reflection, fb.failure_analysis = _split_analysis(self._cand(best).file("train") / "analysis.txt")
        return fb

    # ---- the end -----------------------------------------------------------------------------
    def _finish(self, best: CandidateResult | None) -> RunSummary:
        if best is None:
            return self._summary("finished", "no candidate trained successfully; see the candidates' reasons", None)
        code = self._code(best) or ""
        header = (
            f'"""Reward for: {self._resolved.instruction}\n\nsynth-reward run {self.store.run_id}, candidate '
            f"{best.id} ({self.settings.designer} designer), success rate {best.success_rate:.0%} on "
            f"{self.settings.eval_episodes} evaluation episodes of task {self._resolved.task_id}.\n"
            f'Contract: compute_reward(state, action) -> (reward (N,), {{name: (N,)}}).\n"""\n\n'
        )
        self.store.write_text("best_reward.py", header + code.strip() + "\n")
        final = self._final(best) if self.settings.final_seeds > 0 else self._final_own(best)
        message = f"best {best.id}: success rate {best.success_rate:.0%}"
        if final.mode == "retrained":
            message += f"; retrained on {len(final.seeds)} seeds: {final.success_mean:.0%} ± {final.success_std:.0%}"
        else:
            message += f"; its policy on {final.episodes} fresh episodes: {final.success_mean:.0%}"
        return self._summary("finished", message, best, final)

    def _final_own(self, best: CandidateResult) -> FinalResult:
        """Evaluate the winner's own trained policy on fresh episodes (seeds 20,000+), then render its videos."""
        s, cand = self.settings, self._cand(best)
        saved = cand.read("final")
        if saved is not None:
            result = FinalResult.model_validate(saved)
        else:
            seed = 20_000 + s.seed
            folder = cand.file("final_eval")
            self._emit("stage", id=cand.id, stage=f"final evaluation ({s.final_episodes} fresh episodes)")
            argv = [
                sys.executable,
                "-m",
                "synth_reward.cli",
                "eval",
                str(cand.file("train")),
                "--episodes",
                str(s.final_episodes),
                "--seed",
                str(seed),
                "--out",
                str(folder),
            ]
            code, log = self._isolated(argv, cand.file(""), "final_eval.log")
            scores = _read_json(folder / "eval.json")
            if scores is None:
                raise SynthRewardError(f"the final evaluation exited with status {code}: {_tail(log)}")
            rate = float(scores.get("success_rate") or 0.0)
            result = FinalResult(
                mode="own_policy",
                episodes=s.final_episodes,
                seeds=[seed],
                success_rates=[rate],
                success_mean=rate,
                success_std=0.0,
            )
            cand.write("final", result)
        if s.video and not result.videos:
            result.videos, result.video_error = self._videos(cand, "train")
            cand.write("final", result)
        return result

    def _final(self, best: CandidateResult) -> FinalResult:
        """Retrain the best reward on fresh seeds, evaluate each, render videos, and the HNS where possible."""
        s, cand = self.settings, self._cand(best)
        final = self.store.candidate(0, 0)  # iter_00/cand_00: the final retrainings
        saved = final.read("final")
        if saved is not None:
            result = FinalResult.model_validate(saved)
        else:
            final.write_code(cand.code("reward.py") or "", "reward.py")
            seeds = [s.seed + 1000 + k for k in range(s.final_seeds)]
            rates = []
            for seed in seeds:
                self._emit("final", seed=seed)
                if (
                    self._train(final, out=f"seed_{seed}", seed=seed, steps=self._final_steps).get("status")
                    == "completed"
                ):
                    self._analyze(final, out=f"seed_{seed}")
                rates.append(_eval_scores(final.file(f"seed_{seed}"))[0] or 0.0)
            result = FinalResult(
                seeds=seeds, success_rates=rates, success_mean=sum(rates) / len(rates), success_std=_std(rates)
            )
            if s.human_normalized and self._resolved.to_task().human_reward is not None:
                result = self._human_normalized(final, result, self._final_steps)
            final.write("final", result)  # the numbers are final before any video is rendered
        if s.video and not result.videos:
            best_seed = result.seeds[max(range(len(result.seeds)), key=lambda k: result.success_rates[k])]
            result.videos, result.video_error = self._videos(final, f"seed_{best_seed}")
            final.write("final", result)
        return result

    def _videos(self, cand: CandidateStore, out: str) -> tuple[list[str], str | None]:
        """Render videos of run `out` into CAND/video_<out>/ (its own eval/ holds the scores and the analysis).

        Returns the videos, and why there are none when there are none (the run goes on without them).
        """
        folder = cand.file(f"video_{out}")
        argv = [
            sys.executable,
            "-m",
            "synth_reward.cli",
            "eval",
            str(cand.file(out)),
            "--episodes",
            "2",
            "--video",
            "--out",
            str(folder),
        ]
        self._emit("stage", id="final", stage="rendering videos")
        code, log = self._isolated(argv, cand.file(""), f"video_{out}.log")
        videos = sorted(str(p.relative_to(self.store.path)) for p in folder.rglob("*.mp4"))
        if videos:
            return videos, None
        log_file = cand.file(f"video_{out}.log").relative_to(self.store.path)
        self._emit("stage", id="final", stage=f"no video (see {log_file})")
        return [], f"rendering exited with status {code}: {_tail(log)} (log: {log_file})"

    def _human_normalized(self, final: CandidateStore, result: FinalResult, steps: int | None) -> FinalResult:
        """(method - sparse) / |human - sparse| on returns of the task's human reward (Eureka's HNS).

        The human baseline trains on the task's human-written reward; the sparse baseline on
        the success check alone (1 on a successful step, else 0). All three policies are
        scored by the human reward's episode return on their evaluation rollouts.
        """
        seed = self.settings.seed + 1000
        if self._train(final, out="human", seed=seed, steps=steps, reward=False).get("status") == "completed":
            self._analyze(final, out="human")
        sparse_cand = self.store.candidate(0, 1)  # iter_00/cand_01: the sparse baseline
        sparse_cand.write_code(_sparse_reward_code(self._resolved), "reward.py")
        if self._train(sparse_cand, out="sparse", seed=seed, steps=steps, vetted=False).get("status") == "completed":
            self._analyze(sparse_cand, out="sparse")
        result.human_return = _mean_human_return(final.file("human"))
        result.sparse_return = _mean_human_return(sparse_cand.file("sparse"))
        result.method_return = _nanmean([_mean_human_return(final.file(f"seed_{s}")) for s in result.seeds])
        result.human_success = _eval_scores(final.file("human"))[0]
        result.sparse_success = _eval_scores(sparse_cand.file("sparse"))[0]
        h, sp, m = result.human_return, result.sparse_return, result.method_return
        if None not in (h, sp, m) and abs(h - sp) > 1e-9:  # type: ignore[operator]
            result.human_normalized_score = (m - sp) / abs(h - sp)  # type: ignore[operator]
        return result

    def _summary(
        self, status: str, message: str, best: CandidateResult | None, final: FinalResult | None = None
    ) -> RunSummary:
        usage = self.client.usage if self.client else None
        return RunSummary(
            run_id=self.store.run_id,
            run_dir=str(self.store.path),
            task_id=self._resolved.task_id if self.resolved else "",
            instruction=self.settings.instruction,
            designer=f"LLM {self.settings.llm.get('model')}" if self.settings.designer == "llm" else OFFLINE_LABEL,
            status=status,
            message=message,
            candidates=list(self.results.values()),
            best=best.id if best else None,
            best_success_rate=best.success_rate if best else None,
            best_reward_file=str(self.store.path / "best_reward.py") if best else None,
            final=final,
            llm_cost_usd=usage.cost_usd if usage else 0.0,
            llm_calls=usage.requests if usage else 0,
            llm_tokens=(usage.prompt_tokens + usage.completion_tokens) if usage else 0,
            wall_seconds=time.monotonic() - self.start,
        )

    # ---- small helpers -----------------------------------------------------------------------
    @property
    def _resolved(self) -> ResolvedTask:
        assert self.resolved is not None
        return self.resolved

    @property
    def _final_steps(self) -> int | None:
        s = self.settings
        return s.final_steps or (2 * s.steps if s.steps else None)

    @property
    def _num_envs(self) -> int:
        if self.settings.num_envs:
            return self.settings.num_envs
        from synth_reward.train.config import default_config

        return default_config(self._resolved.morphology).num_envs

    def _cand(self, r: CandidateResult) -> CandidateStore:
        return self.store.candidate(r.iteration, r.index)

    def _code(self, r: CandidateResult) -> str | None:
        return self._cand(r).code("reward.py")

    def _analysis(self, r: CandidateResult) -> dict[str, Any] | None:
        return _read_json(self._cand(r).file("train") / "analysis.json")


def _sparse_reward_code(resolved: ResolvedTask) -> str:
    """A reward that is the success check alone (1 on a successful step), as standalone contract code.

    A built-in check's source is copied with the helpers it calls, renamed without their
    leading underscore so that the sandbox's static policy accepts them.
    """
    task = resolved.to_task()
    check, name = task.success_code or "", "success"
    if not task.success_code:
        import inspect

        from synth_reward.envs import success as module

        fn = module.CHECKS[task.success or ""]
        parts = [f"ANT_FOOT_TIPS = {module.ANT_FOOT_TIPS!r}"]
        parts += [inspect.getsource(getattr(module, h)) for h in ("_upright", "_forward_speed", "ant_foot_heights")]
        parts.append(inspect.getsource(fn).replace("@check\n", ""))
        check = "\n\n".join(parts).replace("_upright(", "upright_z(").replace("_forward_speed(", "forward_speed(")
        name = fn.__name__
    return (
        "import math\n\nimport torch\n\n\n" + check.strip() + "\n\n\ndef compute_reward(state, action):\n"
        f'    hit = {name}(state).to(state.body_pos.dtype)\n    return hit, {{"success": hit}}\n'
    )


def _stop(proc: subprocess.Popen, grace_s: float) -> None:
    """SIGTERM the command's processes themselves (bwrap does not forward signals), then kill."""
    import os
    import signal

    for pid in _descendants(proc.pid) or [proc.pid]:
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            pass
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _descendants(pid: int) -> list[int]:
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


def _last_record(folder: Path) -> dict[str, Any]:
    """The latest record point of a training run (records.jsonl), or {} without one."""
    try:
        lines = [line for line in (folder / "records.jsonl").read_text().splitlines() if line.strip()]
    except FileNotFoundError:
        return {}
    for line in reversed(lines):
        try:
            return dict(json.loads(line))
        except json.JSONDecodeError:  # (a line cut by a kill)
            continue
    return {}


def _write_json(path: Path, obj: dict[str, Any]) -> None:
    from synth_reward.agent.store import atomic_write_text

    atomic_write_text(path, json.dumps(obj, indent=2))


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _count_lines(path: Path) -> int:
    try:
        return sum(1 for _ in path.open())
    except OSError:
        return 0


def _tail(text: str, lines: int = 3) -> str:
    kept = [line.strip() for line in text.strip().splitlines() if line.strip()][-lines:]
    return " | ".join(kept)[-600:]


def _one_line(text: str) -> str:
    return " ".join(str(text).split())[:600]


def _std(values: list[float]) -> float:
    if len(values) < 2:
        return 0.0
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def _nanmean(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None and math.isfinite(v)]
    return sum(kept) / len(kept) if kept else None


def _eval(folder: Path) -> dict[str, Any]:
    return _read_json(folder / "eval" / "eval.json") or {}


def _eval_scores(folder: Path) -> tuple[float | None, float | None]:
    """(success rate, mean fraction of steps on which the check held) of a run's evaluation."""
    ev = _eval(folder)
    episodes = ev.get("per_episode") or []
    progress = sum(e["success_fraction"] for e in episodes) / len(episodes) if episodes else None
    return ev.get("success_rate"), progress


def _mean_human_return(folder: Path) -> float | None:
    return _eval(folder).get("human_return_mean")


def _split_analysis(path: Path) -> tuple[str | None, str | None]:
    """analysis.txt as (reward reflection: the training lines, failure analysis: from "Evaluation:" on)."""
    try:
        lines = path.read_text().strip().splitlines()
    except OSError:
        return None, None
    cut = next((k for k, line in enumerate(lines) if line.startswith("Evaluation:")), len(lines))
    return "\n".join(lines[:cut]) or None, "\n".join(lines[cut:]) or None


def render_report(summary: RunSummary, resolved: ResolvedTask | None) -> str:
    """report.md: what was asked, what was tried, what won, and how well it did."""
    lines = [
        f"# synth-reward run {summary.run_id}",
        "",
        f"- instruction: {summary.instruction}",
        f"- task: {summary.task_id}",
        f"- designer: {summary.designer}",
        f"- status: {summary.status} ({summary.message})",
        f"- wall time: {summary.wall_seconds / 60:.1f} min",
        f"- LLM: {summary.llm_calls} requests, {summary.llm_tokens:,} tokens, ${summary.llm_cost_usd:.4f}",
        "",
    ]
    if resolved is not None:
        lines += ["## Success check (frozen for the run)", "", resolved.success_text, ""]  # type: ignore[list-item]  # resolved: written
    lines += ["## Candidates", "", "| candidate | stage | success | progress | note |", "|---|---|---|---|---|"]
    for c in summary.candidates:
        rate = "-" if c.success_rate is None else f"{c.success_rate:.0%}"
        prog = "-" if c.progress is None else f"{c.progress:.2f}"
        mark = " **best**" if c.id == summary.best else ""
        lines.append(f"| {c.id}{mark} | {c.stage} | {rate} | {prog} | {c.reason[:160].replace('|', '/')} |")
    if summary.final is not None:
        f = summary.final
        if f.mode == "own_policy":
            lines += [
                "",
                "## Final evaluation (the winner's own policy on fresh episodes)",
                "",
                f"- success rate {f.success_mean:.0%} on {f.episodes} episodes (seed {f.seeds[0]}, "
                "used by no training or selection)",
            ]
        else:
            lines += [
                "",
                "## Final evaluation (best reward retrained on fresh seeds)",
                "",
                f"- seeds {f.seeds}: success rates {[round(r, 3) for r in f.success_rates]}",
                f"- success rate {f.success_mean:.0%} ± {f.success_std:.0%} (mean ± std over seeds)",
            ]
        if f.human_normalized_score is not None:
            lines.append(
                f"- human normalized score {f.human_normalized_score:.2f} "
                f"(returns: method {f.method_return:.1f}, human {f.human_return:.1f}, "
                f"sparse {f.sparse_return:.1f})"
            )
        lines += [f"- video: {v}" for v in f.videos]
        if f.video_error:
            lines.append(f"- video: none; {f.video_error}")
    if summary.best_reward_file:
        lines += ["", f"The winning reward: `{summary.best_reward_file}`."]
    return "\n".join(lines) + "\n"
