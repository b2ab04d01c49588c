"""The final evaluation of a run's best candidate, and its videos.

By default the result is the winner's own trained policy, rolled out on `final_episodes`
fresh episodes whose seeds (20,000 + the run's seed) no training or selection used: what
a person gets is what was measured. With `final_seeds N` the best reward is instead
retrained on N new seeds and each is evaluated (Eureka's protocol, twice the cost), and
where the task has a human-written reward the human normalized score is computed against
it and the sparse baseline (a reward built from the task's success check itself).

Every result is written (final.json) before any video is rendered, and read back on
resume; a video that cannot be rendered is reported with its reason and the run goes on.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from synth_reward.agent.records import EvalResult, FinalResult, RunSettings
from synth_reward.agent.runner import Runner, read_record
from synth_reward.agent.store import CandidateStore, RunStore
from synth_reward.errors import SynthRewardError
from synth_reward.train.records import EVAL_DIR

Event = Callable[[str, dict[str, Any]], None]

FINAL_SEED = 20_000
"""Evaluation seeds of the winner's own policy start here (+ the run's seed): used by no training or selection."""


def _noop(event: str, data: dict[str, Any]) -> None:
    pass


class Final:
    """The final stage for one run."""

    def __init__(self, store: RunStore, settings: RunSettings, runner: Runner, emit: Event = _noop) -> None:
        self.store, self.settings, self.runner, self.emit = store, settings, runner, emit

    def own_policy(self, cand: CandidateStore) -> FinalResult:
        """Evaluate the winner's own trained policy on fresh episodes, then render its videos."""
        s = self.settings
        saved = cand.read("final")
        if saved is not None:
            result = FinalResult.model_validate(saved)
        else:
            seed = FINAL_SEED + s.seed
            self.emit("stage", {"id": cand.id, "stage": f"final evaluation ({s.final_episodes} fresh episodes)"})
            ev, why = self.runner.evaluate(
                cand.path,
                "train",
                cand.file("final_eval"),
                episodes=s.final_episodes,
                seed=seed,
                log_name="final_eval.log",
            )
            if ev is None:
                raise SynthRewardError(f"the final evaluation exited with {why}")
            result = FinalResult(
                mode="own_policy",
                episodes=s.final_episodes,
                seeds=[seed],
                success_rates=[ev.success_rate],
                success_mean=ev.success_rate,
                success_std=0.0,
            )
            if s.baselines:
                result = self.baselines(result, ev)
            cand.write("final", result)
        if s.video and not result.videos:
            result.videos, result.video_error = self.videos(cand, "train")
            cand.write("final", result)
        return result

    def retrained(self, best: CandidateStore) -> FinalResult:
        """Retrain the best reward on fresh seeds, evaluate each, render videos, and the HNS where possible."""
        s = self.settings
        final = self.store.candidate(0, 0)  # iter_00/cand_00: the final retrainings
        saved = final.read("final")
        if saved is not None:
            result = FinalResult.model_validate(saved)
        else:
            final.write_code(best.code("reward.py") or "", "reward.py")
            seeds = [s.seed + 1000 + k for k in range(s.final_seeds)]
            rates = []
            for seed in seeds:
                self.emit("final", {"seed": seed})
                out = f"seed_{seed}"
                trained = self.runner.train(
                    final.path, out, label="final", reward=final.file("reward.py"), seed=seed,
                    steps=self.final_steps, num_envs=s.num_envs,
                )  # fmt: skip
                if trained.status == "completed":
                    self.runner.analyze(final.path, out, episodes=s.eval_episodes, label="final")
                ev = self._eval(final, out)
                rates.append(ev.success_rate if ev else 0.0)
            result = FinalResult(
                seeds=seeds, success_rates=rates, success_mean=sum(rates) / len(rates), success_std=_std(rates)
            )
            if s.human_normalized and self.runner.task.human_reward is not None:
                result = self.human_normalized(final, result)
            final.write("final", result)  # the numbers are final before any video is rendered
        if s.video and not result.videos:
            best_seed = result.seeds[max(range(len(result.seeds)), key=lambda k: result.success_rates[k])]
            result.videos, result.video_error = self.videos(final, f"seed_{best_seed}")
            final.write("final", result)
        return result

    def human_normalized(self, final: CandidateStore, result: FinalResult) -> FinalResult:
        """(method - sparse) / |human - sparse| on returns of the task's human reward (Eureka's HNS).

        The human baseline trains on the task's human-written reward; the sparse baseline on
        the success check alone (`synth-reward train --sparse`: 1 on a successful step, else 0).
        All three policies are scored by the human reward's episode return on their evaluations.
        """
        s, seed = self.settings, self.settings.seed + 1000
        steps = self.final_steps
        common: dict[str, Any] = {"label": "final", "seed": seed, "steps": steps, "num_envs": s.num_envs}
        if self.runner.train(final.path, "human", **common).status == "completed":
            self.runner.analyze(final.path, "human", episodes=s.eval_episodes, label="final")
        sparse = self.store.candidate(0, 1)  # iter_00/cand_01: the sparse baseline
        trained = self.runner.train(sparse.path, "sparse", sparse=True, **common)
        if trained.status == "completed":
            self.runner.analyze(sparse.path, "sparse", episodes=s.eval_episodes, label="final")
        human, sp = self._eval(final, "human"), self._eval(sparse, "sparse")
        methods = [self._eval(final, f"seed_{k}") for k in result.seeds]
        result.human_return = human.human_return_mean if human else None
        result.sparse_return = sp.human_return_mean if sp else None
        result.method_return = _nanmean([m.human_return_mean if m else None for m in methods])
        result.human_success = human.success_rate if human else None
        result.sparse_success = sp.success_rate if sp else None
        h, b, m = result.human_return, result.sparse_return, result.method_return
        if h is not None and b is not None and m is not None and abs(h - b) > 1e-9:
            result.human_normalized_score = (m - b) / abs(h - b)
        return result

    def baselines(self, result: FinalResult, ev: EvalResult) -> FinalResult:
        """Train the task's human reward and the sparse baseline at the winner's budget, on the winner's fresh episodes.

        The comparison a suite's table prints (`synth-reward batch` turns it on): each baseline
        trains `steps` env steps (the most the search's winner trained) with the run's seed, and
        its own policy is evaluated on the same fresh episodes as the winner's. The human
        normalized score compares the three by the episode return of the human reward, as in
        `human_normalized`. A baseline that fails to train or evaluate leaves its figure empty.
        """
        s, seed = self.settings, FINAL_SEED + self.settings.seed
        common: dict[str, Any] = {"label": "baseline", "seed": s.seed, "steps": s.steps, "num_envs": s.num_envs}
        evals: dict[str, EvalResult | None] = {}
        for name, index in (("human", 0), ("sparse", 1)):
            if name == "human" and self.runner.task.human_reward is None:
                continue
            cand = self.store.candidate(0, index)
            done = read_record(cand.path / f"{name}_eval" / "eval.json", EvalResult)
            if done is None:
                self.emit("stage", {"id": "final", "stage": f"baseline: training the {name} reward"})
                trained = self.runner.train(cand.path, name, sparse=name == "sparse", **common)
                if trained.status == "completed":
                    done, _ = self.runner.evaluate(
                        cand.path, name, cand.file(f"{name}_eval"), episodes=s.final_episodes, seed=seed
                    )
            evals[name] = done
        human, sparse = evals.get("human"), evals.get("sparse")
        result.human_success = human.success_rate if human else None
        result.sparse_success = sparse.success_rate if sparse else None
        result.human_return = human.human_return_mean if human else None
        result.sparse_return = sparse.human_return_mean if sparse else None
        result.method_return = ev.human_return_mean
        h, b, m = result.human_return, result.sparse_return, result.method_return
        if h is not None and b is not None and m is not None and abs(h - b) > 1e-9:
            result.human_normalized_score = (m - b) / abs(h - b)
        return result

    def videos(self, cand: CandidateStore, out: str) -> tuple[list[str], str | None]:
        """Render videos of run `out` into CAND/video_<out>/ (its own eval/ holds the scores and the analysis).

        Returns the videos, and why there are none when there are none (the run goes on without them).
        """
        folder = cand.file(f"video_{out}")
        self.emit("stage", {"id": "final", "stage": "rendering videos"})
        _, why = self.runner.evaluate(cand.path, out, folder, episodes=2, video=True, log_name=f"video_{out}.log")
        videos = sorted(str(p.relative_to(self.store.path)) for p in folder.rglob("*.mp4"))
        if videos:
            return videos, None
        log_file = cand.file(f"video_{out}.log").relative_to(self.store.path)
        self.emit("stage", {"id": "final", "stage": f"no video (see {log_file})"})
        return [], f"rendering exited with {why} (log: {log_file})"

    @property
    def final_steps(self) -> int | None:
        s = self.settings
        return s.final_steps or (2 * s.steps if s.steps else None)

    @staticmethod
    def _eval(cand: CandidateStore, out: str) -> EvalResult | None:
        return read_record(cand.path / out / EVAL_DIR / "eval.json", EvalResult)


def _std(values: list[float]) -> float:
    if len(values) < 2:
        return 0.0
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def _nanmean(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None and math.isfinite(v)]
    return sum(kept) / len(kept) if kept else None
