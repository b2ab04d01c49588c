"""The search over one iteration's candidates: successive halving (default) or Eureka's full budget for all.

Successive halving (Jamieson & Talwalkar 2016; Hyperband's inner loop): every vetted candidate trains a short
budget, the better half continues from its own checkpoint, and so on until one is left, which has then trained
the whole `steps`. With K candidates and halving rate 2 there are ceil(log2 K) + 1 rungs; rung r's budget is
`steps / 2**(R - 1 - r)` (cumulative env steps), so K = 3 and 1.2 M steps train 300k, 600k, 1.2 M: 2.1 M env steps
in all instead of Eureka's 3.6 M, and the winner is the candidate that trained longest. The loop may stop the last
rung early, once the winner's training success reaches the run's target (`--target-success`).

Ranking within a rung is by the task's own success check on the candidate's latest training record: success
rate first, then the mean fraction of steps on which the check held (progress toward success), then the
earlier candidate (a stable order, so a resumed search picks the same survivors). The designer's own reward
never ranks anything.

This module holds the rules, not the training: `play` asks its caller to train a candidate to a rung's budget
(the loop does it through agent/runner.py) and saves the bracket after every candidate's rung, so a killed
search resumes where it stopped, with nothing trained twice. `best_of` picks the run's best candidate across
iterations by the same ranking on evaluation results.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from synth_reward.agent.records import CandidateResult

Protocol = Literal["halving", "full"]
"""halving: successive halving (the default); full: every candidate trains the full budget (Eureka)."""


class Score(BaseModel):
    """A candidate's standing after a rung: the task's success check on its latest training record."""

    success_rate: float | None = None
    """fraction of finished training episodes that succeeded (None: no episode finished)."""
    progress: float | None = None
    """mean fraction of steps on which the check held (the first tie-breaker)."""
    env_steps: int = 0
    failed: str | None = None
    """why the candidate dropped out (crashed, non-finite reward): it leaves the bracket whatever its score."""

    def key(self) -> tuple[float, float]:
        return (self.success_rate or 0.0, self.progress or 0.0)


class Rung(BaseModel):
    budget: int
    """cumulative env steps each candidate of this rung has trained when the rung ends."""
    candidates: list[str]
    scores: dict[str, Score] = Field(default_factory=dict)
    survivors: list[str] | None = None
    """who continues (None: the rung has not finished)."""


class Bracket(BaseModel):
    """One iteration's search, written as bracket.json in the iteration's folder after every rung."""

    protocol: Protocol
    rungs: list[Rung]

    @property
    def winner(self) -> str | None:
        last = self.rungs[-1]
        if last.survivors is None:
            return None
        return last.survivors[0] if last.survivors else None

    def eliminated(self) -> dict[str, tuple[int, Score]]:
        """{candidate: (rung index, its score there)} for every candidate that stopped before the end."""
        out: dict[str, tuple[int, Score]] = {}
        for r, rung in enumerate(self.rungs):
            if rung.survivors is None:
                break
            for cid in rung.candidates:
                if cid not in rung.survivors and (r < len(self.rungs) - 1 or rung.scores[cid].failed):
                    out[cid] = (r, rung.scores[cid])
        return out


def rung_budgets(steps: int, num_candidates: int, protocol: Protocol = "halving", eta: int = 2) -> list[int]:
    """Cumulative env-step budget of each rung; the last is always `steps`."""
    if steps < 1 or num_candidates < 1:
        raise ValueError(f"steps and num_candidates must be at least 1, got {steps} and {num_candidates}")
    if protocol == "full" or num_candidates == 1:
        return [steps]
    rungs = math.ceil(math.log(num_candidates, eta)) + 1
    return [max(1, steps // eta ** (rungs - 1 - r)) for r in range(rungs)]


def new_bracket(candidates: list[str], steps: int, protocol: Protocol = "halving", eta: int = 2) -> Bracket:
    budgets = rung_budgets(steps, len(candidates), protocol, eta)
    return Bracket(
        protocol=protocol,
        rungs=[Rung(budget=budgets[0], candidates=list(candidates))]
        + [Rung(budget=b, candidates=[]) for b in budgets[1:]],
    )


def survivors(scores: dict[str, Score], keep: int, order: list[str]) -> list[str]:
    """The `keep` best candidates by (success rate, progress), ties to the earlier in `order`; failed ones never."""
    alive = [c for c in order if c in scores and scores[c].failed is None]
    ranked = sorted(alive, key=lambda c: (*(-x for x in scores[c].key()), order.index(c)))
    return ranked[:keep]


def close_rung(bracket: Bracket, index: int, eta: int = 2) -> None:
    """Pick rung `index`'s survivors from its scores and seed the next rung with them."""
    rung = bracket.rungs[index]
    missing = [c for c in rung.candidates if c not in rung.scores]
    if missing:
        raise ValueError(f"rung {index} has no score for {missing}")
    last = index == len(bracket.rungs) - 1
    keep = 1 if last else max(1, math.ceil(len(rung.candidates) / eta))
    if bracket.protocol == "full":
        keep = 1
    rung.survivors = survivors(rung.scores, keep, rung.candidates)
    if not last:
        bracket.rungs[index + 1].candidates = list(rung.survivors)


def total_steps(bracket: Bracket) -> int:
    """Env steps the bracket costs when every candidate trains its rungs to the end (none stopped early)."""
    spent, before = 0, 0
    for rung in bracket.rungs:
        spent += (rung.budget - before) * len(rung.candidates)
        before = rung.budget
    return spent


def play(
    bracket: Bracket, train: Callable[[str, int], Score], save: Callable[[Bracket], object], eta: int = 2
) -> Bracket:
    """Run the bracket to its end. `train(candidate, rung index)` trains (or continues) the candidate to that
    rung's budget and scores it; `save(bracket)` is called after every score and every closed rung. A bracket
    read back from a killed run continues with the first candidate that has no score."""
    for r, rung in enumerate(bracket.rungs):
        if rung.survivors is not None:
            continue
        for cid in rung.candidates:
            if cid not in rung.scores:
                rung.scores[cid] = train(cid, r)
                save(bracket)
        close_rung(bracket, r, eta)
        save(bracket)
    return bracket


def best_of(results: Iterable[CandidateResult]) -> CandidateResult | None:
    """The run's best analyzed candidate: evaluation success rate, then progress, then the earliest."""
    trained = [r for r in results if r.stage == "analyzed" and r.success_rate is not None]
    if not trained:
        return None
    return max(trained, key=lambda r: (r.success_rate or 0.0, r.progress or 0.0, -r.iteration, -r.index))
