"""A run folder as people see it: every iteration's candidates with their code, verdict, curves,
analysis, pictures and parent, the feedback session, the final result, LLM use and stage times.

Read from the records alone (nothing is parsed back from rendered text), for the terminal
session, the review page (synth_reward/web) and the HTML report (agent/html_report.py). Runs
written before these front ends existed open as they are: a record that is missing is None.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synth_reward.agent.media import read_media
from synth_reward.agent.records import Analysis, CandidateResult, EvalResult, FinalResult, RunSummary
from synth_reward.agent.resolve import ResolvedTask
from synth_reward.agent.runner import read_record
from synth_reward.agent.search import best_of
from synth_reward.agent.session import Act, Session
from synth_reward.agent.store import CandidateStore, RunInfo, RunStore
from synth_reward.train.records import ANALYSIS_JSON, EVAL_DIR, TrainRecord, read_records

STAGES = ("designing", "vetting", "training", "evaluating", "rendering")


@dataclass
class CandidateView:
    id: str
    iteration: int
    index: int
    path: Path
    result: CandidateResult | None
    code: str | None
    verdict: dict[str, Any] | None
    review: dict[str, Any] | None
    parent: str | None
    analysis: Analysis | None
    evaluation: EvalResult | None
    records: list[TrainRecord]
    media: dict[str, Any] | None
    """media/media.json: the frame strips and video drawn from the evaluation (agent/media.py)."""
    final: FinalResult | None = None

    @property
    def stage(self) -> str:
        return self.result.stage if self.result else "in progress"

    @property
    def success_rate(self) -> float | None:
        return self.result.success_rate if self.result else None

    @property
    def reason(self) -> str:
        if self.result and self.result.reason:
            return self.result.reason
        return str((self.verdict or {}).get("reason") or "")

    @property
    def verdict_line(self) -> str:
        if self.verdict is None:
            return "not vetted yet"
        if self.verdict.get("accepted"):
            ms = self.verdict.get("ms_per_call")
            return "accepted by the critic" + (f" ({ms:.2f} ms per call)" if ms else "")
        return f"rejected at {self.verdict.get('stage')}: {self.verdict.get('reason', '')}"

    @property
    def notes(self) -> str:
        """The analyzer's text (reward reflection and failure analysis), or the reason it has none."""
        text = (self.path / "train" / "analysis.txt").read_text(errors="replace") if self.analysis else ""
        return text.strip() or (self.analysis.text if self.analysis else "")

    @property
    def short_notes(self) -> str:
        """The analyzer's few most telling lines (evaluation, falls, failing conditions)."""
        keep = ("Evaluation:", "Falls:", "Success-check conditions", "Best episode")
        lines = [ln for ln in self.notes.splitlines() if ln.startswith(keep)]
        return "\n".join(lines) or self.reason

    def videos(self) -> list[Path]:
        """MP4s of this candidate: its final evaluation's, then the one drawn from its evaluation."""
        found = sorted(self.path.glob("video_*/**/*.mp4"))
        if self.media and self.media.get("video"):
            found.append(self.path / "media" / str(self.media["video"]))
        return [p for p in found if p.is_file()]

    def strip(self, which: str = "best") -> Path | None:
        entry = (self.media or {}).get(which)
        if isinstance(entry, dict) and (self.path / "media" / str(entry.get("strip"))).is_file():
            return self.path / "media" / str(entry["strip"])
        return None


@dataclass
class RunView:
    store: RunStore
    info: RunInfo
    task: ResolvedTask | None
    summary: RunSummary | None
    iterations: dict[int, list[CandidateView]]
    acts: list[Act]
    designs: dict[int, dict[str, Any]] = field(default_factory=dict)

    @property
    def latest(self) -> int:
        return max(self.iterations, default=0)

    def candidate(self, cid: str) -> CandidateView | None:
        for cands in self.iterations.values():
            for c in cands:
                if c.id == cid:
                    return c
        return None

    def best(self, iteration: int | None = None) -> CandidateView | None:
        cands = [c for it, cs in self.iterations.items() if iteration in (None, it) for c in cs]
        chosen = best_of(c.result for c in cands if c.result is not None)
        return self.candidate(chosen.id) if chosen else None

    def winner(self) -> CandidateView | None:
        """The run's result: the summary's best (accepted or automatic)."""
        if self.summary is not None and self.summary.best:
            return self.candidate(self.summary.best)
        return None

    def human_words(self, iteration: int) -> list[Act]:
        """The acts recorded about an iteration's candidates."""
        return [a for a in self.acts if a.iteration == iteration]

    def llm_usage(self) -> dict[str, Any]:
        calls = self.store.llm_calls()
        return {
            "requests": len(calls),
            "errors": sum(1 for c in calls if c.get("error")),
            "prompt_tokens": sum(int(c.get("prompt_tokens") or 0) for c in calls),
            "completion_tokens": sum(int(c.get("completion_tokens") or 0) for c in calls),
            "cost_usd": sum(float(c.get("cost_usd") or 0.0) for c in calls),
        }

    def stage_seconds(self) -> dict[str, float]:
        """Wall-clock seconds per stage, from events.jsonl.

        Designing and vetting are timed by the loop ("timing" events); a child process (training,
        evaluating, rendering) lasted from the event before it to its own "process" event (the loop
        runs them one after another). Runs written before the timing events count design and vetting
        time in the first training.
        """
        import datetime as dt

        totals = dict.fromkeys(STAGES, 0.0)
        previous: float | None = None
        for event in self.store.events():
            try:
                t = dt.datetime.fromisoformat(str(event["t"])).timestamp()
            except (KeyError, ValueError):
                continue
            name = event.get("event")
            if name == "timing" and event.get("stage") in totals:
                totals[str(event["stage"])] += float(event.get("seconds") or 0.0)
            elif name == "process" and previous is not None:
                argv = [str(a) for a in event.get("argv") or []]
                kind = argv[0] if argv else ""
                stage = {"train": "training", "analyze": "evaluating"}.get(kind, "evaluating")
                if kind == "eval" and "--video" in argv:
                    stage = "rendering"
                totals[stage] += max(0.0, t - previous)
            previous = t
        return totals


def _candidate(store: RunStore, cand: CandidateStore, parent: str | None) -> CandidateView:
    result = read_record(cand.path / "result.json", CandidateResult)
    train = cand.path / "train"
    final = read_record(cand.path / "final.json", FinalResult)
    return CandidateView(
        id=cand.id,
        iteration=cand.iteration,
        index=cand.index,
        path=cand.path,
        result=result,
        code=cand.code("reward.py"),
        verdict=cand.read("verdict"),
        review=cand.read("review"),
        parent=parent,
        analysis=read_record(train / ANALYSIS_JSON, Analysis),
        evaluation=read_record(train / EVAL_DIR / "eval.json", EvalResult),
        records=read_records(train) if (train / "records.jsonl").is_file() else [],
        media=read_media(cand.path / "media"),
        final=final,
    )


def load_run(store: RunStore) -> RunView:
    """Everything a person looks at in a run folder (iteration 0, the final retrainings, is left out)."""
    saved_task = store.read_json("task.json")
    task = ResolvedTask.model_validate(saved_task) if saved_task is not None else None
    saved_summary = store.read_json("summary.json")
    summary = RunSummary.model_validate(saved_summary) if saved_summary is not None else None
    iterations: dict[int, list[CandidateView]] = {}
    designs: dict[int, dict[str, Any]] = {}
    results: list[CandidateResult] = []
    for cand in store.candidates():
        if cand.iteration == 0:
            continue
        if cand.iteration not in designs:
            design = store.read_json(f"iter_{cand.iteration:02d}/design.json")
            if not isinstance(design, dict):  # (runs before design.json: the best of the earlier iterations)
                earlier = best_of(r for r in results if r.iteration < cand.iteration)
                design = {"iteration": cand.iteration, "parent": earlier.id if earlier else None}
            designs[cand.iteration] = design
        view = _candidate(store, cand, designs[cand.iteration].get("parent"))
        if view.result is not None:
            results.append(view.result)
        iterations.setdefault(cand.iteration, []).append(view)
    return RunView(
        store=store,
        info=store.info(),
        task=task,
        summary=summary,
        iterations=iterations,
        acts=Session(store).acts(),
        designs=designs,
    )


def code_diff(parent: str | None, code: str | None) -> list[tuple[str, str]]:
    """The code against its parent's, line by line: ("+", line), ("-", line), (" ", line), ("@", hunk)."""
    if not code:
        return []
    if not parent:
        return [(" ", line) for line in code.splitlines()]
    out: list[tuple[str, str]] = []
    for line in difflib.unified_diff(parent.splitlines(), code.splitlines(), "parent", "this", lineterm="", n=3):
        if line.startswith(("---", "+++")):
            continue
        kind = line[:1] if line[:1] in "+-@" else " "
        out.append((kind, line[1:] if kind != "@" else line))
    return out or [(" ", "(the same code as its parent)")]
