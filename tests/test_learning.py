"""Long learning checks (`python -m pytest -m slow`; the default run deselects them): skills, not smoke.

Each trains a real humanoid for minutes on 2 cores, so they are kept out of the README's test command; the
figures they guard are in README › Results and docs/benchmarks.md.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from synth_reward.agent.offline import OfflineDesigner
from synth_reward.envs.tasks import get_task
from synth_reward.train.config import default_config
from synth_reward.train.evaluate import evaluate
from synth_reward.train.reward import load_reward_code
from synth_reward.train.trainer import train

KNEEL = Path(__file__).parents[1] / "examples/rewards/humanoid_kneel.py"


@pytest.mark.slow
@pytest.mark.parametrize("source", ["hand-written", "offline designer"])
def test_kneel_reaches_80_percent_within_a_million_steps(source: str, tmp_path: Path) -> None:
    task = get_task("humanoid/kneel")
    code = KNEEL.read_text() if source == "hand-written" else OfflineDesigner().propose(task, 1)[0].code
    config = default_config("humanoid", total_steps=1_000_000, stop_success_rate=0.8, num_records=40, tensorboard=False)
    result = train(task, load_reward_code(code), config, tmp_path / "run", reward_code=code)
    assert result.reason and result.reason.startswith("stopped early"), result.reason
    ev = evaluate(tmp_path / "run", 32, checkpoint="last", seed=10_000)
    assert ev.success_rate >= 0.8, ev.success_rate
