"""Task resolution: from a person's sentence (and --env, --success) to the task a run pursues.

An instruction that means a built-in task ("make the humanoid kneel", "Humanoid: kneel
down!", "humanoid/kneel") resolves to that task and its hand-written success check.
Anything else is free-form: the run keeps the sentence and the morphology, and the
designer writes a success check first (or the person gives one with --success FILE).

Matching is deliberately strict, so that a sentence is never silently turned into a
different task: after lower-casing, dropping punctuation, filler words ("make", "the",
"please") and the robot's name, what remains must equal a task's own instruction or one
of its aliases, treated the same way. "kneel and raise both arms" is free-form, not kneel.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from synth_reward.envs import Task, all_tasks, get_morphology, list_morphologies
from synth_reward.errors import UsageError

MORPHOLOGY_WORDS: dict[str, str] = {
    "humanoid": "humanoid",
    "humanoids": "humanoid",
    "ant": "ant",
    "ants": "ant",
    "hopper": "hopper",
    "walker": "walker2d",
    "walker2d": "walker2d",
    "walker 2d": "walker2d",
    "cheetah": "half_cheetah",
    "half cheetah": "half_cheetah",
    "halfcheetah": "half_cheetah",
}
"""Words (after normalisation) that name a built-in robot; registered morphologies add their own name."""

FILLER_WORDS = frozenset(
    "make makes let have get the a an please robot should can could you i we want wants would like to "
    "so that it its is are be will do does".split()
)
"""Dropped from both the instruction and the task phrases before comparing them."""

SuccessSource = Literal["builtin", "file", "to_write"]
FREE_FORM_SECONDS = 8.0
"""Episode length of a free-form task, in simulated seconds (at most 1000 control steps)."""


class ResolvedTask(BaseModel):
    """What a run pursues: a built-in task, or a free-form instruction for one morphology."""

    model_config = ConfigDict(frozen=True)

    instruction: str
    """The person's sentence, whitespace-trimmed."""
    morphology: str
    task: Task | None = None
    """The built-in task the sentence names; None for a free-form instruction."""
    success_code: str | None = None
    """Code of `success(state)` from --success FILE (vet it with the sandbox before use); None otherwise."""
    success_file: str | None = None
    success_source: SuccessSource
    """builtin: the task's hand-written check; file: --success FILE; to_write: the designer must write one."""

    @property
    def free_form(self) -> bool:
        return self.task is None

    @property
    def task_id(self) -> str:
        """The built-in id, or free/<slug> for a free-form instruction."""
        if self.task is not None:
            return self.task.id
        from synth_reward.agent.store import slugify

        return f"free/{self.morphology}-{slugify(core_phrase(self.instruction))}"

    @property
    def episode_length(self) -> int:
        if self.task is not None:
            return self.task.episode_length
        dt = get_morphology(self.morphology).dt
        return max(1, min(1000, math.ceil(FREE_FORM_SECONDS / dt)))

    @property
    def success_text(self) -> str | None:
        """The check in words: the built-in check's sentence, or the first docstring line of the code."""
        if self.success_code is not None:
            return success_code_text(self.success_code)
        return self.task.success_text if self.task is not None else None

    def summary(self) -> str:
        """One line for people: what the run pursues and how success is judged."""
        kind = f"built-in task {self.task.id}" if self.task is not None else f"free-form task for the {self.morphology}"
        check = self.success_text or "success check not written yet"
        source = {"builtin": "", "file": f" (from {self.success_file})", "to_write": ""}[self.success_source]
        return f"{kind}; success: {check}{source}"

    def with_success(self, code: str, source: SuccessSource = "file") -> ResolvedTask:
        """The same task with a frozen success check in code (written by the designer or the person)."""
        return self.model_copy(update={"success_code": code, "success_source": source})

    def to_task(self) -> Task:
        """A `synth_reward.envs.Task` to train and evaluate with. Needs a success check (built-in or code)."""
        if self.success_code is None:
            if self.task is None:
                raise UsageError(f"free-form task {self.instruction!r} has no success check yet")
            return self.task
        base = self.task
        return Task(
            id=self.task_id,
            morphology=self.morphology,
            instruction=self.instruction,
            success_code=self.success_code,
            success_rule=base.success_rule if base else "half_of_steps",
            episode_length=self.episode_length,
            termination=base.termination if base else "none",
            human_reward=base.human_reward if base else None,
        )


def success_code_text(code: str) -> str:
    """The first line of the module's (or success()'s) docstring, else a plain note."""
    import ast

    try:
        tree = ast.parse(code)
    except SyntaxError:
        return "defined by code"
    docs = [ast.get_docstring(tree)]
    docs += [ast.get_docstring(n) for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "success"]
    for doc in docs:
        if doc and doc.strip():
            return " ".join(doc.strip().split("\n\n")[0].split())
    return "defined by code"


def normalize(text: str) -> str:
    """Lower case, words of letters and digits only, single spaces ("Half-Cheetah: run!" -> "half cheetah run")."""
    return " ".join(re.findall(r"[a-z0-9]+", text.lower().replace("_", " ")))


def _morphology_names() -> list[str]:
    return [m.name for m in list_morphologies()]


def _robot_words() -> dict[str, str]:
    names = _morphology_names()
    words = dict(MORPHOLOGY_WORDS)
    for name in names:
        words.setdefault(normalize(name), name)
        words.setdefault(name.replace("_", ""), name)
    return {w: m for w, m in words.items() if m in names}


def _robots_named(text: str) -> tuple[set[str], str]:
    """Robots the normalised text names, and the text with those words removed (longest names first)."""
    found: set[str] = set()
    rest = f" {text} "
    for word, morph in sorted(_robot_words().items(), key=lambda kv: -len(kv[0])):
        pattern = f" {word} "
        if pattern in rest:
            found.add(morph)
            while pattern in rest:
                rest = rest.replace(pattern, " ")
    return found, " ".join(rest.split())


def core_phrase(text: str) -> str:
    """The part of a sentence that says what to do: normalised, robot names and filler removed."""
    _, rest = _robots_named(normalize(text))
    return " ".join(w for w in rest.split() if w not in FILLER_WORDS)


def _known_robots() -> str:
    return ", ".join(_morphology_names())


def match_task(instruction: str, morphology: str) -> Task | None:
    """The built-in task of `morphology` whose instruction or an alias the sentence says, or None."""
    phrase = core_phrase(instruction)
    if not phrase:
        return None
    matches: list[Task] = []
    for task in all_tasks().values():
        if task.morphology != morphology:
            continue
        phrases = {core_phrase(task.instruction), *(core_phrase(a) for a in task.aliases)}
        if phrase in phrases:
            matches.append(task)
    if not matches:
        return None
    # The same words can name a task in two suites (gym/Ant-v5 and ant/forward): prefer the
    # synth-reward suites, whose ids are <morphology>/<task>, then the first in suite order.
    matches.sort(key=lambda t: t.id.startswith("gym/"))
    return matches[0]


def read_success_file(path: str | Path) -> str:
    """The text of a --success file; UsageError in one line when it cannot be used."""
    p = Path(path).expanduser()
    try:
        code = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"success file {p} does not exist") from None
    except IsADirectoryError:
        raise UsageError(f"success file {p} is a folder, not a file") from None
    except UnicodeDecodeError:
        raise UsageError(f"success file {p} is not UTF-8 text") from None
    except OSError as exc:
        raise UsageError(f"cannot read success file {p}: {exc.strerror}") from None
    if not code.strip():
        raise UsageError(f"success file {p} is empty; it must define success(state) -> bool tensor (N,)")
    return code


def resolve_task(instruction: str, env: str | None = None, success_file: str | Path | None = None) -> ResolvedTask:
    """Turn a sentence (and the --env and --success options) into the task of a run.

    Raises UsageError in one line for an empty instruction, an unknown morphology, a
    sentence naming two robots or a robot other than --env, a sentence naming no robot
    without --env, and an unreadable or empty success file. The success file is only
    read here; vetting it (the sandbox critic) is the caller's next step.
    """
    text = (instruction or "").strip()
    if not text:
        raise UsageError('the instruction is empty; say what the robot should do, e.g. "make the humanoid kneel"')
    env_morph = get_morphology(env).name if env else None  # UsageError listing the known ones

    task: Task | None = None
    if text in all_tasks():  # a task id: "humanoid/kneel"
        task = all_tasks()[text]
        if env_morph is not None and env_morph != task.morphology:
            raise UsageError(f"task {task.id} is for the {task.morphology}, but --env says {env_morph}")
        morphology = task.morphology
    else:
        named, _ = _robots_named(normalize(text))
        if env_morph is not None:
            others = named - {env_morph}
            if others:
                raise UsageError(f"the instruction names the {', '.join(sorted(others))} but --env says {env_morph}")
            morphology = env_morph
        elif len(named) > 1:
            raise UsageError(
                f"the instruction names more than one robot ({', '.join(sorted(named))}); "
                "name one, or choose with --env"
            )
        elif not named:
            raise UsageError(f"the instruction names no robot; say which one ({_known_robots()}) or pass --env")
        else:
            morphology = next(iter(named))
        task = match_task(text, morphology)

    code = read_success_file(success_file) if success_file is not None else None
    if code is not None:
        source: SuccessSource = "file"
    else:
        source = "builtin" if task is not None else "to_write"
    return ResolvedTask(
        instruction=text,
        morphology=morphology,
        task=task,
        success_code=code,
        success_file=str(success_file) if success_file is not None else None,
        success_source=source,
    )
