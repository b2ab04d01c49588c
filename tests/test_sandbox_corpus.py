"""The corpus: hostile candidates must be rejected at the expected stage with no side effect on
the host; realistic LLM-style candidates must be accepted.

Each file in tests/sandbox_corpus/{hostile,valid}/ starts with a header line:
`# expect: STAGE [-- morphology: NAME] [-- kind: success] -- what it does`.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from synth_reward.sandbox import vet_code
from synth_reward.sandbox.runner import default_runner

CORPUS = Path(__file__).parent / "sandbox_corpus"
SIDE_EFFECT_GLOB = "synth_reward_pwned*"
"""Every hostile file that writes tries to create /tmp/synth_reward_pwned*."""


def _cases(folder: str) -> list:
    cases = []
    for path in sorted((CORPUS / folder).glob("*.py")):
        header = path.read_text().splitlines()[0]
        expect = re.search(r"expect: (\w+)", header)
        assert expect, f"{path.name}: first line must say '# expect: STAGE'"
        morphology = re.search(r"morphology: (\w+)", header)
        kind = "success" if "kind: success" in header else "reward"
        cases.append(
            pytest.param(path, expect.group(1), morphology.group(1) if morphology else "humanoid", kind, id=path.stem)
        )
    return cases


HOSTILE, VALID = _cases("hostile"), _cases("valid")


@pytest.fixture(scope="module", autouse=True)
def _warm_worker():
    default_runner().prewarm("humanoid", 64)


def test_corpus_is_big_enough():
    assert len(HOSTILE) >= 30
    assert len(VALID) >= 10


@pytest.mark.parametrize(("path", "expect", "morphology", "kind"), HOSTILE)
def test_hostile_candidate_is_rejected_at_expected_stage(path, expect, morphology, kind):
    start = time.perf_counter()
    verdict = vet_code(path.read_text(), morphology, kind=kind)
    elapsed = time.perf_counter() - start
    assert not verdict.accepted, f"{path.name} was accepted"
    assert verdict.stage == expect, f"{path.name}: rejected at {verdict.stage}, expected {expect}: {verdict.reason}"
    assert len(verdict.reason) > 40 and "\n" not in verdict.reason
    if expect == "policy":
        assert verdict.line is not None or verdict.culprit in {"code size", "huge constant"}
    assert not list(Path("/tmp").glob(SIDE_EFFECT_GLOB)), "a hostile candidate created a file on the host"
    assert elapsed < 15, f"verdict took {elapsed:.1f} s"


@pytest.mark.parametrize(("path", "expect", "morphology", "kind"), VALID)
def test_valid_candidate_is_accepted(path, expect, morphology, kind):
    verdict = vet_code(path.read_text(), morphology, kind=kind)
    assert verdict.accepted, f"{path.name} rejected at {verdict.stage} (line {verdict.line}): {verdict.reason}"
    assert verdict.stage == "accepted"
    if kind == "reward":
        assert verdict.components
    assert verdict.ms_per_call is not None and verdict.ms_per_call_4x is not None
    assert not verdict.isolation.missing, verdict.isolation.missing


def test_warm_verdict_is_fast():
    code = (CORPUS / "valid" / "eureka_humanoid_run.py").read_text()
    vet_code(code, "humanoid")
    start = time.perf_counter()
    verdict = vet_code(code, "humanoid")
    assert verdict.accepted
    assert time.perf_counter() - start < 3.0


def test_rejection_reason_names_line_construct_and_alternative():
    verdict = vet_code((CORPUS / "hostile" / "input_mutation_item.py").read_text(), "humanoid")
    assert verdict.line == 7 and verdict.culprit == "item assignment"
    assert "torch.where" in verdict.reason and "clone" in verdict.reason
    assert verdict.feedback().startswith("The reward code was rejected at the policy stage (line 7)")
