"""The agent loop: design → vet → search (train, score, continue the best) → analyze, for I iterations.

One `Loop` drives one run folder (agent/store.py) through the stages, each in its own
module and each handing the next a typed record (agent/records.py):

- the designer (agent/designer.py) writes K candidates: an LLM, or the offline templates;
- the critic (agent/critic.py) vets each in the sandbox, and optionally asks the LLM to review it;
- the search (agent/search.py) trains the vetted ones rung by rung through the runner
  (agent/runner.py: isolated `synth-reward train` processes) and keeps the better half each rung;
- the finalists are evaluated and analyzed (the runner again); the analysis of the best so
  far, rendered as text, is the next round's reward reflection;
- a feedback session (agent/session.py) adds one iteration per round a person closed, after the
  run's own: from the candidate they chose, with their words as the most important feedback;
- at the end the best candidate's own policy (or the one the person accepted) is evaluated on fresh
  episodes (agent/final.py) and the reports are written (agent/report.py, agent/html_report.py).

Every stage writes its record before the next starts and first looks for it, so
`synth-reward resume RUN` continues a killed run with nothing designed, paid for or trained
twice. While a process writes the run it holds ``run.lock`` (agent/session.py's `RunLock`). A candidate that fails anywhere is recorded with its reason and the loop goes on.
Fitness is the task's success check, never the reward the designer wrote.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from synth_reward.agent.critic import Critic
from synth_reward.agent.designer import BestSoFar, Designer, LLMDesigner, TemplateDesigner
from synth_reward.agent.final import Final
from synth_reward.agent.llm import LLMClient, LLMError, LLMSettings, SpendCapReached, llm_available
from synth_reward.agent.offline import LABEL as OFFLINE_LABEL
from synth_reward.agent.prompts import Feedback, Note, success_messages
from synth_reward.agent.records import (
    Analysis,
    CandidateResult,
    EvalResult,
    FinalResult,
    RunSettings,
    RunSummary,
    eval_progress,
)
from synth_reward.agent.report import render_report
from synth_reward.agent.resolve import ResolvedTask, resolve_task
from synth_reward.agent.runner import Runner, one_line, read_record
from synth_reward.agent.search import Bracket, Score, best_of, new_bracket, play
from synth_reward.agent.session import SESSION_PAUSED, Act, RunLock, Session, human_feedback, make_act
from synth_reward.agent.store import CandidateStore, RunStore
from synth_reward.errors import SynthRewardError, UsageError
from synth_reward.train.analyzer import render_failures, render_reflection
from synth_reward.train.records import ANALYSIS_JSON, EVAL_DIR, read_records

__all__ = ["FinalResult", "Loop", "RunSettings", "RunSummary", "render_report", "settings_for"]

Event = Callable[[str, dict[str, Any]], None]
INTERRUPTED = "interrupted; continue with `synth-reward resume` (or `feedback` / `review` in a session)"


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
            self.client = LLMClient(llm or LLMSettings.model_validate(settings.llm), store, seed=settings.seed)
        self.designer: Designer = LLMDesigner(self.client) if self.client else TemplateDesigner(settings.seed)
        self.results: dict[str, CandidateResult] = {}
        self.resolved: ResolvedTask | None = None
        self.start = time.monotonic()
        self.latest = 0
        """The latest iteration (after advance())."""
        self._designed = False
        self.stop_kind = ""

    # ---- the run -------------------------------------------------------------------------
    def run(self) -> RunSummary:
        """Resolve the task, run the iterations (the session's too), evaluate the best (or the accepted one);
        summary.json, report.md and report.html at the end."""
        with RunLock(self.store, "synth-reward run"):
            return self._run()

    def _run(self) -> RunSummary:
        store = self.store
        try:
            best = self.advance()
            accepted = Session(store).accepted()
            if accepted is not None and accepted.candidate in self.results:
                best = self.results[accepted.candidate]
            summary = self._finish(best, accepted)
            store.update_info(status="finished", message=summary.message)
        except SpendCapReached as exc:
            self.stop_kind = "spend_cap"
            store.update_info(status="stopped", message=str(exc))
            summary = self._summary("stopped", str(exc), best_of(self.results.values()))
        except LLMError as exc:
            self.stop_kind = "llm_error"
            store.update_info(status="stopped", message=f"LLM error: {exc}")
            summary = self._summary("stopped", f"LLM error: {exc}", best_of(self.results.values()))
        except KeyboardInterrupt:
            store.update_info(status="stopped", message=INTERRUPTED)
            raise
        except SynthRewardError as exc:
            store.update_info(status="failed", message=str(exc))
            raise
        self.write_reports(summary)
        return summary

    def write_reports(self, summary: RunSummary) -> None:
        """summary.json, report.md and report.html (a report that cannot be drawn is said in report.md)."""
        from synth_reward.agent.html_report import write_html_report

        self.store.write_json("summary.json", summary)
        self.store.write_text("report.md", render_report(summary, self.resolved))
        try:  # the run's result stands without its pictures
            write_html_report(self.store)
        except Exception as exc:  # noqa: BLE001
            self.store.log("report_html_failed", reason=one_line(f"{type(exc).__name__}: {exc}"))

    def advance(self) -> CandidateResult | None:
        """Run every iteration the records call for, and return the automatic best.

        The run's own iterations first (stopping early at the target success), then one per round of
        the feedback session (session.jsonl), each from the candidate the person chose with their words.
        Iterations already done are read back from their records; a killed one continues.
        """
        store = self.store
        before = store.info()
        self._designed = False
        store.update_info(status="running", message="")
        self.stop_kind = ""
        try:
            if self.resolved is None:
                self.resolved = self._resolve()
                self._emit("task", task=self.resolved.task_id, success=self.resolved.success_text)
                self._stages()
            best: CandidateResult | None = None
            feedback: Feedback | None = None
            iteration = 0
            for iteration in range(1, self.settings.iterations + 1):
                self._emit("iteration", iteration=iteration, of=self.settings.iterations)
                self._iteration(iteration, best, feedback)
                best = best_of(self.results.values())
                feedback = self._feedback(iteration, best)
                store.log("iteration_done", iteration=iteration, best=best.id if best else None)
                target = self.settings.target_success
                if best is not None and target is not None and (best.success_rate or 0.0) >= target:
                    if iteration < self.settings.iterations:
                        self._emit("target_reached", iteration=iteration, best=best.id, success=best.success_rate)
                    break
            session = Session(store)
            edits = session.edits()
            rounds = 0
            for act in session.rounds():
                if act.iteration != iteration:
                    continue  # (recorded about an iteration that is not the latest: never by the front ends)
                base = self.results.get(act.candidate or "") if act.candidate else best
                feedback = self._feedback(iteration, base, chosen=act.candidate is not None)
                feedback.human = human_feedback(act, edits)
                iteration += 1
                self._emit("iteration", iteration=iteration, of=iteration, session=act.act, who=act.who)
                self._iteration(iteration, base, feedback)
                best = best_of(self.results.values())
                store.log("iteration_done", iteration=iteration, best=best.id if best else None, session=act.act)
                rounds += 1
            self.latest = iteration
            if not self._designed and before.status == "finished":  # (a finished run opened for a session)
                store.update_info(status=before.status, message=before.message)
            elif rounds:  # a session's iteration is ready: the run waits for the person (run() finishes it)
                store.update_info(status="stopped", message=SESSION_PAUSED)
            return best
        except KeyboardInterrupt:
            store.update_info(status="stopped", message=INTERRUPTED)
            raise

    # ---- a person's acts (agent/session.py; the terminal and the review page call these) ----------
    def act(self, act: str, candidate: str | None = None, text: str | None = None, **who: Any) -> Act:
        """Check and record one act about the latest iteration (advance() first). UsageError if it cannot be done."""
        made = make_act(
            act,
            iteration=self.latest,
            results=self.results,
            candidate=candidate,
            text=text,
            default_candidate=(b.id if (b := self.latest_best()) else None),
            **who,
        )
        return Session(self.store).append(made)

    def latest_best(self) -> CandidateResult | None:
        """The best candidate of the latest iteration (the default of feedback and accept)."""
        return best_of(r for r in self.results.values() if r.iteration == self.latest)

    def edit_success(self, code: str, who: str | None = None, via: str = "terminal") -> Act:
        """A person's new success check for a free-form run: vetted, recorded, applied only when accepted."""
        from synth_reward.sandbox import vet_success

        task = self._resolved
        if not task.free_form:
            raise UsageError(
                f"{task.task_id} is a built-in task with its own success check; only a free-form run's check "
                "can be edited"
            )
        if not code.strip():
            raise UsageError("the success check is empty")
        verdict = vet_success(code, task.morphology)
        act = make_act("edit_success", iteration=self.latest, results=self.results, who=who, via=via)
        act = act.model_copy(
            update={"success_code": code, "accepted": verdict.accepted, "reason": one_line(verdict.reason or "")}
        )
        Session(self.store).append(act)
        if not verdict.accepted:
            raise UsageError(f"the success check was rejected at stage {verdict.stage}: {one_line(verdict.reason)}")
        self.resolved = task.with_success(verdict.code, task.success_source)
        self.store.write_text("success.py", verdict.code)
        self.store.write_json("task.json", self.resolved)
        self._stages()
        return act

    def finish_session(self) -> RunSummary:
        """After an accept: the final evaluation of the accepted candidate and the reports."""
        return self._run()

    def _stages(self) -> None:
        """The stages that need the resolved task: runner, critic, final evaluation."""
        s, task = self.settings, self._resolved
        emit: Event = lambda event, data: self._emit(event, **data)  # noqa: E731
        physics = [*(["--backend", s.backend] if s.backend else []), *(["--device", s.device] if s.device else [])]
        warp_cache = None
        if s.backend == "warp":  # compile once here: the isolated training processes only read Warp's cache
            from synth_reward.envs.warp import compile_kernels

            warp_cache = compile_kernels(task.morphology, s.device or "cuda")
        self.runner = Runner(
            task.to_task(),
            timeout_s=s.candidate_timeout_s,
            emit=emit,
            log=self.store.log,
            physics=physics,
            warp_cache=warp_cache,
        )
        self.critic = Critic(task, self._num_envs, reviewer=self.client if s.review else None, emit=emit)
        self.final = Final(self.store, s, self.runner, emit=emit)

    def _emit(self, event: str, **data: Any) -> None:
        if self.client is not None:
            data.setdefault("llm_usd", self.client.usage.cost_usd)
        self.on_event(event, data)

    # ---- one iteration -----------------------------------------------------------------------
    def _iteration(self, iteration: int, best: CandidateResult | None, feedback: Feedback | None) -> None:
        """Design K candidates, vet each, then search among the vetted ones."""
        vetted: list[CandidateStore] = []
        start = time.monotonic()
        replies = self._design(iteration, best, feedback)
        self._timing("designing", start, iteration)
        for index, reply in enumerate(replies):
            cand = self.store.candidate(iteration, index)
            if cand.code("reply.txt") is None:
                cand.write_code(reply, "reply.txt")
            start = time.monotonic()
            failure = self.critic.vet(cand)
            self._timing("vetting", start, iteration, candidate=cand.id)
            if failure is not None:
                self._record(cand, failure)
            else:
                vetted.append(cand)
        if vetted:
            self._search(iteration, vetted)

    def _design(self, iteration: int, best: CandidateResult | None, feedback: Feedback | None) -> list[str]:
        """The round's K replies; read back from the candidates' reply.txt when the round already ran."""
        k = self.settings.samples
        saved = [self.store.candidate(iteration, j).code("reply.txt") for j in range(k)]
        if all(text is not None for text in saved):
            return [t for t in saved if t is not None]
        self._emit("designing", iteration=iteration, samples=k, designer=self.settings.designer)
        self._designed = True
        self.store.write_json(
            f"iter_{iteration:02d}/design.json",
            {
                "iteration": iteration,
                "parent": best.id if best else None,
                "feedback": feedback.model_dump(mode="json") if feedback else None,
            },
        )
        so_far = None
        if best is not None and (code := self._cand(best).code("reward.py")):
            so_far = BestSoFar(id=best.id, code=code, analysis=self._analysis(best))
        return self.designer.design(self._resolved, k, iteration, so_far, feedback).replies

    def _search(self, iteration: int, cands: list[CandidateStore]) -> None:
        """Train the vetted candidates rung by rung (bracket.json saved after each), then analyze the finalists."""
        s, by_id = self.settings, {c.id: c for c in cands}
        path = f"iter_{iteration:02d}/bracket.json"
        saved = self.store.read_json(path)
        if saved is not None:
            bracket = Bracket.model_validate(saved)
        else:  # (steps None: the morphology's default budget, one rung)
            bracket = new_bracket(list(by_id), s.steps or 1, s.search if s.steps else "full")

        def train(cid: str, rung: int) -> Score:
            steps = bracket.rungs[rung].budget if s.steps else None
            return self._train_score(by_id[cid], steps, rung, len(bracket.rungs))

        play(bracket, train, save=lambda b: self.store.write_json(path, b))
        for cid, (r, score) in bracket.eliminated().items():
            cand = by_id[cid]
            base: dict[str, Any] = {"id": cid, "iteration": iteration, "index": cand.index}
            base["components"] = self._components(cand)
            if score.failed:
                self._record(cand, CandidateResult(**base, stage="train_failed", reason=score.failed))
                continue
            reason = (
                f"stopped after rung {r + 1} of {len(bracket.rungs)} ({score.env_steps:,} env steps): "
                f"training success {score.success_rate or 0:.0%}, progress {score.progress or 0:.2f}, "
                "below the candidates that continued"
            )
            self._record(
                cand,
                CandidateResult(
                    **base, stage="eliminated", progress=score.progress, env_steps=score.env_steps, reason=reason
                ),
            )
        last = bracket.rungs[-1]
        for cid in [c for c in last.candidates if not last.scores[c].failed]:
            self._record(by_id[cid], self._analyzed(by_id[cid]))

    def _train_score(self, cand: CandidateStore, steps: int | None, rung: int, rungs: int) -> Score:
        """Train (or continue) a candidate to `steps` and score it on its latest training record."""
        if rungs > 1:
            self._emit("stage", id=cand.id, stage=f"rung {rung + 1}/{rungs}: training to {steps:,} steps")
        s = self.settings
        # the last rung of successive halving may stop at the target: its one candidate is the winner already
        last_of_halving = s.search == "halving" and rungs > 1 and rung == rungs - 1
        result = self.runner.train(
            cand.path,
            label=cand.id,
            reward=cand.file("reward.py"),
            seed=s.seed,
            steps=steps,
            num_envs=s.num_envs,
            stop_at=s.target_success if last_of_halving else None,
        )
        if result.status != "completed":
            return Score(failed=one_line(result.reason or "training failed"))
        records = read_records(cand.file("train"))
        last = records[-1] if records else None
        return Score(
            success_rate=last.success_rate if last else None,
            progress=last.success_fraction_mean if last else None,
            env_steps=result.env_steps,
        )

    def _analyzed(self, cand: CandidateStore) -> CandidateResult:
        """Evaluate and analyze a candidate that trained its whole budget."""
        base: dict[str, Any] = {"id": cand.id, "iteration": cand.iteration, "index": cand.index}
        base["components"] = self._components(cand)
        if self.runner.analyze(cand.path, episodes=self.settings.eval_episodes, label=cand.id) is None:
            error = cand.read("analyze_error_train") or {}
            return CandidateResult(**base, stage="analyze_failed", reason=one_line(error.get("reason", "failed")))
        ev = read_record(cand.file("train") / EVAL_DIR / "eval.json", EvalResult)
        trained = self.runner.train(cand.path, steps=None)  # (its result: it has trained)
        return CandidateResult(
            **base,
            stage="analyzed",
            success_rate=ev.success_rate if ev else None,
            progress=eval_progress(ev) if ev else None,
            env_steps=trained.env_steps,
            train_seconds=trained.wall_seconds,
        )

    def _timing(self, stage: str, start: float, iteration: int, **data: Any) -> None:
        seconds = time.monotonic() - start
        if seconds >= 0.01:  # (a stage read back from its records took no time)
            self.store.log("timing", stage=stage, seconds=round(seconds, 3), iteration=iteration, **data)

    def _record(self, cand: CandidateStore, result: CandidateResult) -> None:
        self.results[cand.id] = result
        cand.write("result", result)
        self._emit("candidate", **result.model_dump())

    # ---- feedback for the next round ---------------------------------------------------------
    def _feedback(self, iteration: int, best: CandidateResult | None, chosen: bool = False) -> Feedback:
        """What the next round's designer hears: this round's failures and the best candidate's analysis
        (or, `chosen`, the analysis of the candidate a person picked as the base)."""
        mine = [r for r in self.results.values() if r.iteration == iteration]
        fb = Feedback(
            rejections=[Note(candidate=r.id, reason=r.reason) for r in mine if r.stage == "rejected"],
            training_errors=[
                Note(candidate=r.id, reason=r.reason) for r in mine if r.stage in ("train_failed", "analyze_failed")
            ],
            review_objections=[f"{r.id}: {r.reason}" for r in mine if r.stage == "review_objected"],
        )
        fb.human_candidate = best.id if chosen and best is not None else None
        if best is not None and best.success_rate is None:  # a person chose one that was not evaluated
            fb.result = f"The person chose {best.id} as the base ({best.stage}: {best.reason[:200]})."
        elif best is not None:
            fb.success_rate = best.success_rate
            fb.result = (
                f"{'The person chose' if chosen else 'Best so far:'} {best.id}, success rate {best.success_rate:.0%} over "
                f"{self.settings.eval_episodes} evaluation episodes "
                f"(mean successful-step fraction {best.progress or 0:.2f})."
            )
            analysis = self._analysis(best)
            if analysis is not None:
                fb.reflection = render_reflection(analysis) or None
                fb.failure_analysis = render_failures(analysis) or None
        return fb

    # ---- the end -----------------------------------------------------------------------------
    def _finish(self, best: CandidateResult | None, accepted: Act | None = None) -> RunSummary:
        if best is None:
            return self._summary("finished", "no candidate trained successfully; see the candidates' reasons", None)
        code = self._cand(best).code("reward.py") or ""
        header = (
            f'"""Reward for: {self._resolved.instruction}\n\nsynth-reward run {self.store.run_id}, candidate '
            f"{best.id} ({self.settings.designer} designer), success rate {best.success_rate:.0%} on "
            f"{self.settings.eval_episodes} evaluation episodes of task {self._resolved.task_id}.\n"
            f'Contract: compute_reward(state, action) -> (reward (N,), {{name: (N,)}}).\n"""\n\n'
        )
        self.store.write_text("best_reward.py", header + code.strip() + "\n")
        cand = self._cand(best)
        final = self.final.retrained(cand) if self.settings.final_seeds > 0 else self.final.own_policy(cand)
        message = f"best {best.id}: success rate {best.success_rate:.0%}"
        if accepted is not None and accepted.candidate == best.id:
            message = f"accepted {best.id} ({accepted.who}): success rate {best.success_rate:.0%}"
        if final.mode == "retrained":
            message += f"; retrained on {len(final.seeds)} seeds: {final.success_mean:.0%} ± {final.success_std:.0%}"
        else:
            message += f"; its policy on {final.episodes} fresh episodes: {final.success_mean:.0%}"
        return self._summary("finished", message, best, final)

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
                    f"{one_line(verdict.reason)}"
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

    # ---- small helpers -----------------------------------------------------------------------
    @property
    def _resolved(self) -> ResolvedTask:
        assert self.resolved is not None
        return self.resolved

    @property
    def _num_envs(self) -> int:
        if self.settings.num_envs:
            return self.settings.num_envs
        from synth_reward.train.config import default_config

        return default_config(self._resolved.morphology).num_envs

    def _cand(self, r: CandidateResult) -> CandidateStore:
        return self.store.candidate(r.iteration, r.index)

    def _analysis(self, r: CandidateResult) -> Analysis | None:
        return read_record(self._cand(r).path / "train" / ANALYSIS_JSON, Analysis)

    @staticmethod
    def _components(cand: CandidateStore) -> list[str]:
        return list((cand.read("verdict") or {}).get("components") or [])
