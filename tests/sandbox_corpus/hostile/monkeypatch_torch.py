# expect: policy -- replaces torch.exp for everyone in the process
import torch

torch.exp = lambda x: x * 0


def compute_reward(state, action):
    h = state.body("torso").pos[:, 2]
    return torch.exp(h), {"height": h}
