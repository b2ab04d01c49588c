# expect: accepted -- morphology: ant -- kind: success -- standing tall
import torch


def success(state):
    return torch.logical_and(state.body("torso").height > 0.5, state.body("torso").up[:, 2] > 0.9)
