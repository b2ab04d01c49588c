"""The batch record (batch.json in the batch folder) and the rows of its table.

The batch record says which runs belong to the batch and what state each reached; each
run's own folder (agent/store.py) holds everything else, so the record never duplicates
what a run knows, and `synth-reward batch --resume` needs nothing but the two.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

EntryState = Literal["pending", "running", "finished", "stopped", "failed"]
ExecutorName = Literal["local", "ray"]

BATCH_JSON = "batch.json"
KIND: Literal["synth-reward batch"] = "synth-reward batch"


class BatchEntry(BaseModel):
    """One task of the batch and its run."""

    task_id: str
    run_id: str
    """The run folder's name inside the batch folder."""
    state: EntryState = "pending"
    reason: str = ""
    """Why a run stopped or failed (its run.json message, or the process's last lines)."""
    started: str | None = None
    ended: str | None = None
    attempts: int = 0
    """How many times a unit of this run was started (resumes and Ray retries included)."""


class BatchRecord(BaseModel):
    """batch.json: the batch as a whole."""

    kind: Literal["synth-reward batch"] = KIND
    batch_id: str
    suite: str
    """The suite's name (a built-in one) or the path of the user's suite file."""
    suite_file: str | None = None
    """Absolute path of a user's suite file (its tasks are also frozen in each run's task.json)."""
    created: str
    executor: ExecutorName = "local"
    workers: int = Field(1, ge=1)
    ray_address: str | None = None
    cpus_per_run: int = Field(2, ge=1)
    settings: dict[str, Any] = Field(default_factory=dict)
    """The loop settings every run got (agent/records.py RunSettings, without the instruction)."""
    entries: list[BatchEntry]


class BatchRow(BaseModel):
    """One row of the final table: a task, its run's outcome and its baselines."""

    task_id: str
    state: EntryState
    reason: str = ""
    success: float | None = None
    """Final success rate of the synthesized reward's policy (fresh evaluation episodes)."""
    human_success: float | None = None
    """The same for the task's human-written reward, trained at the same budget (where the task has one)."""
    sparse_success: float | None = None
    """The same for the sparse baseline: the success check itself as the reward."""
    human_normalized_score: float | None = None
    env_steps: int = 0
    """Env steps the search trained (every candidate's, eliminated ones included; baselines excluded)."""
    llm_tokens: int = 0
    llm_cost_usd: float = 0.0
    wall_seconds: float | None = None
    best: str | None = None
    best_reward_file: str | None = None


class BatchSummary(BaseModel):
    """The suite's line under the table."""

    tasks: int
    finished: int
    reached: int
    """Tasks whose final policy succeeded on at least `threshold` of its episodes."""
    threshold: float = 0.8
    mean_hns: float | None = None
    env_steps: int = 0
    llm_tokens: int = 0
    llm_cost_usd: float = 0.0
    wall_seconds: float | None = None
    """From the batch's creation to its last run's end."""
