# expect: policy -- lambda attributes reach the interpreter
import torch


def compute_reward(state, action):
    f = lambda: 0  # noqa: E731
    code = f.__code__
    h = state.body("torso").pos[:, 2]
    return h, {"height": h}
