"""Docs that are generated or shared with CI stay in step with the code."""

from pathlib import Path

from synth_reward.envs.describe import state_api_markdown

ROOT = Path(__file__).resolve().parents[1]


def test_state_api_doc_is_current():
    doc = ROOT / "docs" / "state-api.md"
    assert doc.exists(), "docs/state-api.md is missing: run `python scripts/gen_state_api.py`"
    assert doc.read_text() == state_api_markdown(), (
        "docs/state-api.md is out of date with the State docstrings: run `python scripts/gen_state_api.py`"
    )


def test_readme_test_command_is_the_one_ci_runs():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    command = next(line for line in ci if line.startswith("apt-get "))
    assert command in (ROOT / "README.md").read_text().splitlines(), (
        "README's Quick start command 2 differs from .ci/run"
    )
