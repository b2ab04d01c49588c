# expect: probe -- kind: success -- returns a float score instead of booleans
import torch


def success(state):
    return (state.body("torso").pos[:, 2] > 1.0).float()
