# expect: policy -- opens a network connection
import socket
import torch


def compute_reward(state, action):
    s = socket.create_connection(("127.0.0.1", 80))
    s.send(b"state")
    h = state.body("torso").pos[:, 2]
    return h, {"height": h}
