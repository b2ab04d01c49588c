# expect: policy -- fork bomb
import os


def compute_reward(state, action):
    for _ in range(64):
        os.fork()
    h = state.body("torso").pos[:, 2]
    return h, {"height": h}
