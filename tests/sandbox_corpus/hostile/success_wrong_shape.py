# expect: probe -- kind: success -- one answer for the whole batch
import torch


def success(state):
    return (state.body("torso").pos[:, 2] > 1.0).all()
