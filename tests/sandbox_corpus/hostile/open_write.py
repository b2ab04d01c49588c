# expect: policy -- writes a file with open()
import torch


def compute_reward(state, action):
    with open("/tmp/synth_reward_pwned", "w") as f:
        f.write("x")
    h = state.body("torso").pos[:, 2]
    return h, {"height": h}
