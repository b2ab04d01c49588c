"""Feedback sessions: a person steering a run, one recorded act at a time.

A session belongs to a run and lives in its folder as ``session.jsonl``, one `Act` per line,
each appended whole and fsynced (agent/store.py). An act names who acted, when, about which
candidate of the latest iteration, and what:

- ``feedback``: the person's words about a candidate; it becomes the base of the next iteration and
  the words go into the designer's prompt as the most important feedback, beside the analyzer's
  numbers about that candidate;
- ``choose``: the candidate is the base of the next iteration instead of the automatic best (words
  optional);
- ``skip``: the next iteration runs from the automatic best with no words;
- ``accept``: stop; this candidate is the result (the final evaluation and the report follow);
- ``edit_success``: a new success check for a free-form run, vetted by the sandbox; recorded whether
  or not it was accepted, and applied (success.py, task.json) only when it was.

``feedback``, ``choose`` and ``skip`` each close a *round*: the loop (agent/loop.py) runs one more
iteration per round, after the run's own iterations, in the order they were recorded. The
iterations are planned from this file and the records alone, so a session stopped at any point
(Ctrl-C, a closed terminal, a killed server) resumes with `synth-reward feedback`, `review` or
`resume`, and nothing is trained twice.

Two front ends use this module: the terminal (`synth-reward feedback`, agent/feedback_cli.py) and
the review page (synth_reward/web). Only one process writes a run at a time: `RunLock` holds
``run.lock`` (the writer's PID); any other process that wants to write the run is refused with
"in use by PID N". A lock left by a process that died is taken over.
"""

from __future__ import annotations

import datetime as _dt
import getpass
import os
import threading
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from pydantic import BaseModel

from synth_reward.agent.records import CandidateResult
from synth_reward.agent.store import RunStore
from synth_reward.errors import UsageError

SESSION_FILE = "session.jsonl"
LOCK_FILE = "run.lock"
ActKind = Literal["feedback", "choose", "skip", "accept", "edit_success"]
ACTS: tuple[str, ...] = ("feedback", "choose", "skip", "accept", "edit_success")
ROUND_ACTS = ("feedback", "choose", "skip")
"""The acts that start the next iteration."""
MAX_TEXT = 4000
"""Longest feedback text kept (characters)."""


class Act(BaseModel):
    """One thing a person did in a session (one line of session.jsonl)."""

    t: str
    """ISO 8601 time, UTC."""
    who: str
    """The OS user, or the name given with --name."""
    via: str = "terminal"
    """terminal or page."""
    act: ActKind
    iteration: int
    """The iteration whose candidates the person was shown (the latest one)."""
    candidate: str | None = None
    """The candidate it is about (feedback, choose, accept); None for skip and edit_success."""
    text: str = ""
    """The person's words (feedback; optional for choose)."""
    success_code: str | None = None
    """edit_success: the check the person wrote."""
    accepted: bool | None = None
    """edit_success: whether the sandbox accepted the check (only an accepted one is applied)."""
    reason: str = ""
    """edit_success: why the sandbox rejected it."""


def who_am_i() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in this environment
        return f"uid {os.getuid()}"


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds")


# ---- the lock -----------------------------------------------------------------------------------
def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def lock_holder(store: RunStore) -> tuple[int, str] | None:
    """(PID, what) of the live process holding the run, or None (no lock, or a dead holder's)."""
    try:
        text = (store.path / LOCK_FILE).read_text(encoding="utf-8")
    except (FileNotFoundError, OSError):
        return None
    head, _, what = text.partition("\n")
    try:
        pid = int(head.strip())
    except ValueError:
        return None
    return (pid, what.strip()) if _alive(pid) else None


class RunLock:
    """``run.lock`` in the run folder while this process writes the run; re-entrant within the process.

    `acquire` raises UsageError "run X is in use by PID N (what)" when another live process holds it.
    """

    _held: dict[Path, int] = {}
    _guard = threading.Lock()

    def __init__(self, store: RunStore, what: str) -> None:
        self.store, self.what = store, what
        self.path = store.path / LOCK_FILE

    def acquire(self) -> RunLock:
        with self._guard:
            if self._held.get(self.path, 0) > 0:
                self._held[self.path] += 1
                return self
            for _ in range(3):
                try:
                    fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
                except FileExistsError:
                    holder = lock_holder(self.store)
                    if holder is not None and holder[0] != os.getpid():
                        pid, what = holder
                        raise UsageError(
                            f"run {self.store.run_id} is in use by PID {pid}"
                            + (f" ({what})" if what else "")
                            + "; wait for it to end or stop it, then try again"
                        ) from None
                    try:  # the holder died (or is this process from before a fork): take the lock over
                        self.path.unlink()
                    except FileNotFoundError:
                        pass
                    continue
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    fh.write(f"{os.getpid()}\n{self.what}\n")
                self._held[self.path] = 1
                return self
            raise UsageError(f"could not lock run {self.store.run_id} ({self.path})")

    def release(self) -> None:
        with self._guard:
            count = self._held.get(self.path, 0)
            if count > 1:
                self._held[self.path] = count - 1
                return
            self._held.pop(self.path, None)
            try:
                holder = self.path.read_text(encoding="utf-8").split("\n", 1)[0].strip()
                if holder == str(os.getpid()):
                    self.path.unlink()
            except OSError:
                pass

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


def check_not_in_use(store: RunStore) -> None:
    """UsageError when another live process writes the run (before anything is changed)."""
    holder = lock_holder(store)
    if holder is not None and holder[0] != os.getpid():
        RunLock(store, "").acquire()  # raises the one-line message


# ---- the session record -------------------------------------------------------------------------
class Session:
    """The acts of one run's session, read from session.jsonl (an absent file: no session yet)."""

    def __init__(self, store: RunStore) -> None:
        self.store = store

    def acts(self) -> list[Act]:
        out = []
        for line in self.store.read_jsonl(SESSION_FILE):
            try:
                out.append(Act.model_validate(line))
            except ValueError:
                continue  # a line a newer version wrote, or a hand edit: ignored
        return out

    def rounds(self) -> list[Act]:
        """The acts that each start one more iteration, in order."""
        return [a for a in self.acts() if a.act in ROUND_ACTS]

    def accepted(self) -> Act | None:
        """The accept act that ended the session, if any (the last one)."""
        accepts = [a for a in self.acts() if a.act == "accept"]
        return accepts[-1] if accepts else None

    def edits(self) -> list[Act]:
        return [a for a in self.acts() if a.act == "edit_success"]

    def append(self, act: Act) -> Act:
        self.store.append_jsonl(SESSION_FILE, act)
        self.store.log("session_act", act=act.act, iteration=act.iteration, candidate=act.candidate, who=act.who)
        return act


def make_act(
    act: str,
    *,
    iteration: int,
    results: dict[str, CandidateResult],
    candidate: str | None = None,
    text: str | None = None,
    who: str | None = None,
    via: str = "terminal",
    default_candidate: str | None = None,
) -> Act:
    """Check a person's act against the latest iteration; UsageError (one line) when it cannot be done.

    Nothing is written here: the caller appends the act only once it is valid.
    """
    if act not in ACTS:
        raise UsageError(f"unknown act {act!r}; acts: {', '.join(ACTS)}")
    words = " ".join((text or "").split())
    if act == "feedback" and not words:
        raise UsageError("the feedback text is empty; say what the policy does wrong")
    if len(words) > MAX_TEXT:
        raise UsageError(f"the feedback text is {len(words)} characters; at most {MAX_TEXT}")
    if act in ("skip", "edit_success"):
        candidate = None
    else:
        candidate = candidate or default_candidate
        if candidate is None:
            raise UsageError(f"no candidate to {act}: none of iteration {iteration} trained; skip or edit the check")
        result = results.get(candidate)
        mine = sorted(r.id for r in results.values() if r.iteration == iteration)
        if result is None or result.iteration != iteration:
            raise UsageError(
                f"no candidate {candidate!r} in the latest iteration {iteration}; candidates: {', '.join(mine) or 'none'}"
            )
        usable = ("analyzed",) if act == "accept" else ("analyzed", "eliminated")
        if result.stage not in usable:
            what = "evaluated" if act == "accept" else "trained"
            raise UsageError(f"candidate {candidate} was not {what} ({result.stage}); pick another")
    return Act(t=_now(), who=who or who_am_i(), via=via, act=act, iteration=iteration, candidate=candidate, text=words)  # type: ignore[arg-type]  # checked against ACTS above


def human_feedback(act: Act, edits: list[Act]) -> str | None:
    """The words that go into the next prompt for a round: the person's text, and any check they changed."""
    parts = [act.text] if act.text else []
    changed = [e for e in edits if e.iteration == act.iteration and e.accepted]
    if changed:
        parts.append("(The person also changed the success check for the coming iterations; see the task above.)")
    return " ".join(parts) or None


def session_summary(store: RunStore) -> list[dict[str, Any]]:
    """The acts as plain dicts (for reports and JSON output)."""
    return [a.model_dump(mode="json") for a in Session(store).acts()]
