# expect: policy -- random numbers: non-deterministic, moves the trainer's RNG
import torch


def compute_reward(state, action):
    h = state.body("torso").pos[:, 2] + 0.01 * torch.randn(state.num_envs)
    return h, {"height": h}
