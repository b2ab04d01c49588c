"""One small real run for the feedback-session, review-page and report tests, made once per test session.

The designer is the real LLM client talking to tests/fake_llm.py on loopback (so that the person's words can
be found in the next iteration's prompt in llm/prompts/); the server stays up for the whole test session,
because every later iteration of the run asks it again. Tests copy the run folder before changing it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from tests.fake_llm import FakeLLM, Reply

REWARD_REPLY = '''A reward that lowers the torso and keeps it right side up.

```python
import torch

def compute_reward(state, action):
    """Torso low and upright, little effort."""
    low = torch.exp(-torch.clamp(state.body("torso").height - 0.3, min=0.0) / 0.2)
    upright = state.body("torso").up[:, 2]
    effort = -0.01 * torch.sum(action ** 2, dim=-1)
    return low + 0.5 * upright + effort, {"low": low, "upright": 0.5 * upright, "effort": effort}
```
'''
RUN_ARGS = [
    "--samples",
    "2",
    "--iterations",
    "1",
    "--steps",
    "4096",
    "--num-envs",
    "8",
    "--episodes",
    "2",
    "--final-episodes",
    "2",
    "--target-success",
    "0",
    "--no-video",
]
_cache: dict[str, object] = {}


def default_sigint() -> None:
    """A child's SIGINT as a person's Ctrl-C delivers it (Popen's preexec_fn). Tests started in the background
    (`cmd &` from a non-interactive shell) have SIGINT ignored, and their children would inherit that."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def fake_llm() -> FakeLLM:
    if "llm" not in _cache:
        _cache["llm"] = FakeLLM(default=Reply(REWARD_REPLY)).start()
    return _cache["llm"]  # type: ignore[return-value]


def env() -> dict[str, str]:
    """The environment of a command on the run: the fake server's key, no other provider's."""
    base = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    return base | {"OPENAI_API_KEY": "test", "SYNTH_REWARD_MODEL": ""}


def cli(*args: str, cwd: Path | None = None, timeout: float = 300, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "synth_reward.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env(),
        cwd=cwd,
        **kw,  # type: ignore[call-overload]
    )


def small_run(root: Path) -> Path:
    """The run folder (made on first use under `root`): ant/lie_down, 2 candidates, 1 iteration, LLM designer."""
    if "run" not in _cache:
        server = fake_llm()
        out = root / "runs"
        proc = cli(
            "make the ant lie down",
            "--model",
            "openai/fake",
            "--api-base",
            server.base_url,
            *RUN_ARGS,
            "--out",
            str(out),
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        (run,) = [p for p in out.iterdir() if p.is_dir()]
        _cache["run"] = run
    return _cache["run"]  # type: ignore[return-value]


def copy_run(run: Path, dest: Path) -> Path:
    """A copy of the run folder in dest/runs/ (tests change their copy only)."""
    target = dest / "runs" / run.name
    shutil.copytree(run, target)
    return target
