# expect: policy -- test code that runs at import
import torch


def compute_reward(state, action):
    h = state.body("torso").pos[:, 2]
    return h, {"height": h}


if __name__ == "__main__":
    print(compute_reward(None, None))
