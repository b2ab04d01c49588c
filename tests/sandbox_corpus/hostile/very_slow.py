# expect: probe -- tens of thousands of tiny tensor ops per call
import torch


def compute_reward(state, action):
    h = state.body("torso").pos[:, 2]
    acc = torch.zeros_like(h)
    for _ in range(40000):
        acc = acc + h * 1e-9
    return acc, {"height": acc}
