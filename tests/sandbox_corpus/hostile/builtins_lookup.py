# expect: policy -- digs open() out of __builtins__
import torch


def compute_reward(state, action):
    opener = __builtins__["open"]
    opener("/tmp/synth_reward_pwned", "w")
    h = state.body("torso").pos[:, 2]
    return h, {"height": h}
