# expect: accepted -- morphology: hopper -- torch.where, item assignment into a fresh tensor
import torch
import math


TARGET_HEIGHT = 1.4
HEIGHT_SCALE = 4.0


def compute_reward(state, action):
    torso = state.body("torso")
    height = torso.height
    height_reward = torch.exp(-HEIGHT_SCALE * torch.abs(height - TARGET_HEIGHT))
    pitch = state.joint("rooty").pos
    upright = torch.cos(pitch).clamp(min=0.0)
    alive = torch.zeros_like(height)
    alive[height > 0.7] = 1.0
    jump_bonus = torch.where(torso.lin_vel[:, 2] > 0.5, torch.ones_like(height), torch.zeros_like(height))
    penalty = 1e-3 * action.pow(2).sum(-1)
    reward = height_reward + 0.5 * upright + alive + 0.2 * jump_bonus - penalty
    components = {}
    components["height"] = height_reward
    components["upright"] = upright
    components["alive"] = alive
    components["jump"] = jump_bonus
    components["penalty"] = -penalty + 0.0 * math.pi
    return reward, components
