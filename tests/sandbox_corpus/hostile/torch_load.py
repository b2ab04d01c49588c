# expect: policy -- torch.load unpickles arbitrary objects
import torch


def compute_reward(state, action):
    weights = torch.load("/tmp/weights.pt")
    h = state.body("torso").pos[:, 2] * weights
    return h, {"height": h}
