"""The typed records the agent's stages hand each other, and the ones they read from the trainer.

Each stage writes its record as JSON in the run folder and the next stage reads it back
with `model_validate`; text the LLM or a person sees is rendered from a record, never
parsed back from one. The trainer's own records (`TrainResult`, `EvalResult`, `Analysis`)
live beside the code that writes them in synth_reward/train and are re-exported here, so
one import shows every record of a run:

    stage        writes                               record
    resolve      task.json                            ResolvedTask (agent/resolve.py)
    designer     iter_II/cand_JJ/reply.txt            Design (the K replies of a round)
    critic       iter_II/cand_JJ/verdict.json         Verdict (synth_reward/sandbox)
    runner       iter_II/cand_JJ/train/result.json    TrainResult; train/eval/eval.json: EvalResult;
                                                      train/analysis.json: Analysis
    search       iter_II/bracket.json                 Bracket (agent/search.py)
    loop         iter_II/cand_JJ/result.json          CandidateResult
    final        iter_II/cand_JJ/final.json           FinalResult
    report       summary.json, report.md              RunSummary
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from synth_reward.agent.search import Protocol
from synth_reward.train.analyzer import Analysis
from synth_reward.train.evaluate import EvalResult
from synth_reward.train.records import TrainResult

__all__ = [
    "Analysis",
    "CandidateResult",
    "Design",
    "DesignerKind",
    "EvalResult",
    "FinalResult",
    "RunSettings",
    "RunSummary",
    "TrainResult",
    "eval_progress",
]

DesignerKind = Literal["llm", "offline"]


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
    steps: int | None = Field(1_200_000, ge=1)
    """Env steps the search's winner trains at most (with successive halving the others train a half, a
    quarter...)."""
    target_success: float | None = Field(0.9, gt=0, le=1)
    """Stop once the task's success check is met this often: the search's last rung stops training when the
    winner's training success rate reaches it, and no further iteration starts once the best candidate's
    evaluation success rate reaches it. None: every iteration runs and every budget is trained in full."""
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
    backend: str | None = None
    """Physics backend of every training and evaluation: "cpu" or "warp" (MuJoCo Warp, the gpu extra); None: the
    train command's choice (warp with device cuda when the extra is installed, else cpu)."""
    device: str | None = None
    """torch device of training ("cpu", "cuda") and, with the warp backend, Warp's device; None: the default."""
    review: bool = False
    """Ask the LLM to review each vetted reward against the task (Auto MC-Reward's critic)."""
    video: bool = True
    """Render MP4s of the best policy at the end."""
    human_normalized: bool = True
    """Where the task has a human reward, also train it and a sparse baseline for the human normalized score."""
    baselines: bool = False
    """With the winner's own policy as the result: also train the task's human reward (where it has one) and
    the sparse baseline (its success check as the reward) at `steps`, evaluated on the same fresh episodes, for
    the success-rate comparison and the human normalized score (`synth-reward batch` turns it on)."""
    seed: int = 0
    designer: DesignerKind = "offline"
    llm: dict[str, Any] = Field(default_factory=dict)
    """LLMSettings without secrets (designer == "llm")."""
    candidate_timeout_s: float = 6 * 3600
    """Wall-clock limit of one candidate's training process."""


class Design(BaseModel):
    """What one design round returns: the K replies (an LLM's text or a template's code), in order."""

    iteration: int
    designer: str
    """who wrote them: "offline" or "LLM <model>"."""
    replies: list[str]


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


def eval_progress(ev: EvalResult) -> float | None:
    """Mean fraction of steps on which the success check held over an evaluation's episodes."""
    if not ev.per_episode:
        return None
    return sum(e.success_fraction for e in ev.per_episode) / len(ev.per_episode)
