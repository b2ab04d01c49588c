# expect: accepted -- morphology: humanoid -- helper functions beside the main one, docstrings
import torch
from typing import Dict, Tuple


def _height_term(height: torch.Tensor, target: float, temperature: float) -> torch.Tensor:
    """Gaussian-shaped reward for being near a target height."""
    return torch.exp(-torch.square(height - target) / temperature)


def knee_contact(state) -> torch.Tensor:
    """How close both knees (the shin bodies' origins) are to the floor."""
    left = state.body("left_shin").height
    right = state.body("right_shin").height
    return _height_term(left, 0.1, 0.02) * _height_term(right, 0.1, 0.02)


def compute_reward(state, action) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
    """Kneel: knees on the floor, torso upright and about 0.9 m high, little motion."""
    knees = knee_contact(state)
    torso_height = _height_term(state.body("torso").height, 0.9, 0.05)
    upright = torch.clamp(state.body("torso").up[:, 2], min=0.0)
    stillness = torch.exp(-0.1 * torch.linalg.norm(state.com_vel, dim=-1))
    total = 2.0 * knees + torso_height + upright + 0.5 * stillness
    return total, {"knees": knees, "torso_height": torso_height, "upright": upright, "stillness": stillness}
