"""The loop's command-line options, declared once: `synth-reward run` and `synth-reward batch` share them.

Each alias is an `Annotated` type carrying its typer option (name, bounds, help), so a command
declares `samples: Samples = 3` and both commands accept and check the same values.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import typer

from synth_reward.errors import UsageError


def one_of(option: str, *names: str) -> Callable[[str], str]:
    """A typer callback that accepts only `names` for `option` (one line and exit status 2 otherwise)."""

    def check(value: str) -> str:
        if value not in names:
            raise UsageError(f"{option} must be {' or '.join(names)}, got {value!r}")
        return value

    return check


Samples = Annotated[int, typer.Option("--samples", "-k", min=1, help="Reward candidates per iteration (K).")]
Iterations = Annotated[int, typer.Option("--iterations", "-i", min=1, help="Design-train-analyze rounds (I).")]
Steps = Annotated[
    int,
    typer.Option(
        "--steps",
        min=1,
        help="Env steps the search's winner trains at most; with successive halving the others stop at a "
        "half, a quarter...",
    ),
]
TargetSuccess = Annotated[
    float,
    typer.Option(
        "--target-success",
        min=0,
        max=1,
        help="Stop once the success check is met this often: the winner's training stops at this training "
        "success rate and no iteration starts after one whose best reached it in evaluation; 0: off.",
    ),
]
Search = Annotated[
    str,
    typer.Option(
        "--search",
        callback=one_of("--search", "halving", "full"),
        help="halving: successive halving over each iteration's candidates; full: every candidate trains "
        "--steps (Eureka's protocol).",
    ),
]
FinalSeeds = Annotated[
    int,
    typer.Option(
        "--final-seeds",
        min=0,
        help="Retrain the best reward on this many fresh seeds (Eureka's protocol); 0: evaluate the "
        "winner's own policy on fresh episodes.",
    ),
]
FinalEpisodes = Annotated[
    int, typer.Option("--final-episodes", min=1, help="Episodes of the final evaluation (fresh seeds).")
]
FinalSteps = Annotated[
    int | None, typer.Option("--final-steps", min=1, help="Env steps per final retraining (default: twice --steps).")
]
Episodes = Annotated[int, typer.Option("--episodes", min=1, help="Evaluation episodes per policy.")]
NumEnvs = Annotated[int | None, typer.Option("--num-envs", min=1, help="Parallel envs in training.")]
Backend = Annotated[
    str | None,
    typer.Option(
        "--backend",
        help="Physics of training and evaluation: cpu (native MuJoCo) or warp (MuJoCo Warp, the gpu extra; "
        "docs/warp.md). Default: warp with --device cuda when the extra is installed, else cpu.",
    ),
]
Device = Annotated[
    str | None,
    typer.Option(
        "--device",
        help="cpu or cuda: the networks' torch device and, with --backend warp, Warp's device.",
    ),
]
Model = Annotated[
    str | None,
    typer.Option(
        "--model",
        help="LLM by litellm name (openai/gpt-4o, anthropic/claude-..., openai/<local> with --api-base); "
        "env SYNTH_REWARD_MODEL.",
    ),
]
ApiBase = Annotated[
    str | None,
    typer.Option("--api-base", help="OpenAI-compatible base URL (vLLM, Ollama, llama.cpp); env SYNTH_REWARD_API_BASE."),
]
SpendCap = Annotated[
    float | None,
    typer.Option(
        "--spend-cap",
        help="Stop a run before its LLM spend passes this many US dollars; env SYNTH_REWARD_SPEND_CAP_USD.",
    ),
]
Review = Annotated[bool, typer.Option("--review/--no-review", help="LLM review of each vetted reward.")]
Video = Annotated[bool, typer.Option("--video/--no-video", help="Render MP4s of the best policy.")]
Seed = Annotated[int, typer.Option("--seed", min=0, help="Seed of the designer and of training.")]
