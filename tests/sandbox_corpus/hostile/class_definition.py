# expect: policy -- class with a metaclass trick
import torch


class Reward:
    def __call__(self, state, action):
        return state.body("torso").pos[:, 2]


def compute_reward(state, action):
    h = Reward()(state, action)
    return h, {"height": h}
