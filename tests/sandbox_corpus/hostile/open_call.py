# expect: policy -- open() without a with block
import torch


def compute_reward(state, action):
    open("/tmp/synth_reward_pwned", "w").write("x")
    h = state.body("torso").pos[:, 2]
    return h, {"height": h}
