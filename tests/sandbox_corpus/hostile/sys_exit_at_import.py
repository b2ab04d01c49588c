# expect: policy -- kills the importing process at load time
import sys

sys.exit(3)


def compute_reward(state, action):
    h = state.body("torso").pos[:, 2]
    return h, {"height": h}
