"""requirements.lock and pyproject.toml cannot drift: every pinned direct dependency is inside pyproject's range.

The lock (see its header for the uv command that writes it) is the reproducible install; pyproject.toml holds
the ranges users get. A range tightened in pyproject without regenerating the lock, or a lock edited by hand
past an upper bound, fails here.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).parents[1]


def _pins() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;]+)(?:\s*;.*)?", line)
        assert match, f"requirements.lock: not an exact pin: {line!r}"
        pins[canonicalize_name(match[1])] = Version(match[2])
    return pins


def _direct() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        reqs += extra
    return [Requirement(r) for r in reqs]


def test_lock_pins_satisfy_pyproject_ranges() -> None:
    pins = _pins()
    assert pins, "requirements.lock pins nothing"
    bad = []
    for req in _direct():
        version = pins.get(canonicalize_name(req.name))
        if version is None:
            continue
        # prereleases=True: a pinned release candidate is judged by the range alone, not rejected for being one
        if not req.specifier.contains(version, prereleases=True):
            bad.append(f"{req.name}=={version} (lock) is outside {req.name}{req.specifier} (pyproject.toml)")
    assert not bad, "requirements.lock and pyproject.toml disagree; regenerate the lock:\n" + "\n".join(bad)


def test_lock_pins_every_runtime_dependency() -> None:
    pins = _pins()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    missing = [r.name for r in map(Requirement, project["dependencies"]) if canonicalize_name(r.name) not in pins]
    assert not missing, f"requirements.lock lacks {missing}; regenerate it (command in its header)"


def test_lock_header_names_its_command() -> None:
    head = (ROOT / "requirements.lock").read_text().splitlines()[:12]
    assert any("uv pip compile pyproject.toml" in line for line in head)
