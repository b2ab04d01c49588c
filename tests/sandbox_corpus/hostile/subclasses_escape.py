# expect: policy -- the classic object-graph escape
import torch


def compute_reward(state, action):
    for cls in ().__class__.__base__.__subclasses__():
        if cls.__name__ == "Popen":
            cls(["touch", "/tmp/synth_reward_pwned"])
    h = state.body("torso").pos[:, 2]
    return h, {"height": h}
