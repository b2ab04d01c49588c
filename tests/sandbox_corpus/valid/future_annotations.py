# expect: accepted -- morphology: humanoid -- from __future__, string annotations, keyword defaults
from __future__ import annotations

import torch


def smooth_tolerance(x: torch.Tensor, low: float, high: float, margin: float = 0.1) -> torch.Tensor:
    """dm_control-style tolerance: 1 inside [low, high], decaying outside."""
    below = torch.clamp(low - x, min=0.0) / margin
    above = torch.clamp(x - high, min=0.0) / margin
    return torch.exp(-(below + above) ** 2)


def compute_reward(state: State, action: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    stand = smooth_tolerance(state.body("torso").height, 1.2, 1.5)
    still = smooth_tolerance(state.com_vel[:, 0], -0.1, 0.1, margin=0.5)
    knee = state.joint("left_knee").pos - state.joint("right_knee").pos
    symmetric = torch.exp(-knee.abs())
    total = stand * (0.5 + 0.5 * still) + 0.1 * symmetric
    return total, {"stand": stand, "still": still, "symmetric": symmetric}
