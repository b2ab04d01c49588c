"""The State API: what reward code and success checks read.

One `State` holds the batched state of N environments as torch tensors with a leading
dimension N, all on one device, in float32 (the dtype is the env's). Reward code reads
names, not indices: `state.body("torso").pos`, `state.joint("left_knee").pos`.

Every public attribute documents its shape, unit and frame in the first line of its
docstring, in the form ``"(N, 3) m, world frame: meaning"``. `describe_state` renders
the text shown to the LLM and to people from these same docstrings, so the description
can never drift from the code.

Conventions (checked against MuJoCo in tests/test_state.py):
- world frame: z up, gravity along -z, the floor is the plane z = floor_height;
  x is the robot's initial forward direction.
- quaternions are w-first (w, x, y, z), as MuJoCo stores them (`xquat`).
- `rot` maps body coordinates to world coordinates: world_vec = rot @ body_vec.
- velocities are in the world frame; linear velocity is that of the body frame's origin.
- after a step, body poses and velocities are those MuJoCo computed at the start of the
  last physics substep while qpos/qvel are after it (mj_step's order, as in Gymnasium).
- contact force is the net force that contacts exert ON the body (floor pushing up is +z).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import torch

from synth_reward.envs.morphology import Layout

RAW_FIELDS = (
    "qpos",
    "qvel",
    "xpos",
    "xquat",
    "xmat",
    "xipos",
    "subtree_com",
    "cvel",
    "cfrc_ext",
    "cinert",
    "qfrc_actuator",
    "actuator_force",
    "time",
)
# "time" is the backend's own clock (it runs on across episodes); State.time is the episode's.
"""mjData fields (batched, world body included) a backend hands to State. Same names as MuJoCo's."""
PREV_FIELDS = ("xpos", "subtree_com", "qpos")
"""The fields whose values one control step earlier a State also holds (its prev_* attributes)."""


class Body:
    """Read-only view of one body across the batch, from `state.body(name)`."""

    def __init__(self, state: State, index: int, name: str) -> None:
        self._state, self._i, self.name = state, index, name

    @property
    def pos(self) -> torch.Tensor:
        """(N, 3) m, world frame: position of the body frame's origin (at its parent joint)."""
        return self._state.body_pos[:, self._i]

    @property
    def height(self) -> torch.Tensor:
        """(N,) m: height of the body frame's origin above the floor (pos z minus floor_height)."""
        return self._state.body_pos[:, self._i, 2] - self._state.floor_height

    @property
    def quat(self) -> torch.Tensor:
        """(N, 4) unitless, world frame: orientation quaternion, w first (w, x, y, z)."""
        return self._state.body_quat[:, self._i]

    @property
    def rot(self) -> torch.Tensor:
        """(N, 3, 3) unitless: rotation matrix, body to world (world_vec = rot @ body_vec)."""
        return self._state.body_rot[:, self._i]

    @property
    def up(self) -> torch.Tensor:
        """(N, 3) unitless, world frame: the body's local z axis; up[:, 2] is 1 when it points straight up."""
        return self._state.body_up[:, self._i]

    @property
    def forward(self) -> torch.Tensor:
        """(N, 3) unitless, world frame: the body's local x axis (the torso's facing direction)."""
        return self._state.body_forward[:, self._i]

    @property
    def lin_vel(self) -> torch.Tensor:
        """(N, 3) m/s, world frame: linear velocity of the body frame's origin."""
        return self._state.body_lin_vel[:, self._i]

    @property
    def ang_vel(self) -> torch.Tensor:
        """(N, 3) rad/s, world frame: angular velocity."""
        return self._state.body_ang_vel[:, self._i]

    @property
    def contact_force(self) -> torch.Tensor:
        """(N, 3) N, world frame: net force exerted on the body by all its contacts (floor pushing up is +z)."""
        return self._state.body_contact_force[:, self._i]

    @property
    def prev_pos(self) -> torch.Tensor:
        """(N, 3) m, world frame: pos one control step earlier (equals pos right after a reset)."""
        return self._state.prev_body_pos[:, self._i]


class Joint:
    """Read-only view of one hinge or slide joint across the batch, from `state.joint(name)`."""

    def __init__(self, state: State, index: int, name: str) -> None:
        self._state, self._i, self.name = state, index, name

    @property
    def pos(self) -> torch.Tensor:
        """(N,) rad (hinge) or m (slide): joint position; 0 is the pose in the MJCF file."""
        return self._state.joint_pos[:, self._i]

    @property
    def vel(self) -> torch.Tensor:
        """(N,) rad/s (hinge) or m/s (slide): joint velocity."""
        return self._state.joint_vel[:, self._i]

    @property
    def prev_pos(self) -> torch.Tensor:
        """(N,) rad or m: pos one control step earlier (equals pos right after a reset)."""
        return self._state.prev_joint_pos[:, self._i]

    @property
    def low(self) -> float:
        """() rad or m: lower joint limit (-inf when unlimited)."""
        return self._state.layout.joint_range[self._i][0]

    @property
    def high(self) -> float:
        """() rad or m: upper joint limit (+inf when unlimited)."""
        return self._state.layout.joint_range[self._i][1]


class State:
    """Batched state of N environments. Construct through a backend, not by hand.

    Fields are snapshots taken when the state was built: later physics steps do not
    change them. Derived fields are computed on first access and then cached.
    """

    def __init__(
        self,
        layout: Layout,
        raw: Mapping[str, torch.Tensor],
        step: torch.Tensor,
        prev: Mapping[str, torch.Tensor],
        dt: float,
        dtype: torch.dtype = torch.float32,
        copy: bool = True,
    ) -> None:
        """prev: the PREV_FIELDS one control step earlier (the previous snapshot itself: read lazily).
        copy=False: the caller hands over tensors in dtype that nothing will change (backend snapshots)."""
        self.layout = layout
        if copy:
            self._raw: Mapping[str, torch.Tensor] = {k: raw[k].to(dtype=dtype, copy=True) for k in RAW_FIELDS}
            prev = {k: prev[k].to(dtype=dtype, copy=True) for k in PREV_FIELDS}
            step = step.clone()
        else:
            self._raw = raw
        self._prev = prev
        self._step = step
        self._dt = dt
        self._n = step.shape[0]
        self._body_index = layout.body_index
        self._joint_index = layout.joint_index

    # ---- scalars and names -------------------------------------------------------------
    @property
    def num_envs(self) -> int:
        """() count: N, the number of environments in the batch."""
        return self._n

    @property
    def device(self) -> torch.device:
        """() device: where every tensor of this state lives."""
        return self._raw["qpos"].device

    @property
    def dt(self) -> float:
        """() s: control period, the simulated time between two calls of the reward."""
        return self._dt

    @property
    def floor_height(self) -> float:
        """() m: z of the floor plane in the world frame."""
        return self.layout.floor_height

    @property
    def total_mass(self) -> float:
        """() kg: mass of the whole robot."""
        return self.layout.total_mass

    @property
    def body_names(self) -> tuple[str, ...]:
        """(B,) names: the bodies, in the order of the body_* tensors' second dimension."""
        return self.layout.body_names

    @property
    def joint_names(self) -> tuple[str, ...]:
        """(J,) names: the hinge and slide joints, in the order of joint_pos / joint_vel columns."""
        return self.layout.joint_names

    @property
    def actuator_names(self) -> tuple[str, ...]:
        """(A,) names: the actuators, in the order of action and actuator_force columns."""
        return self.layout.actuator_names

    def body(self, name: str) -> Body:
        """View of one body by MJCF name: .pos .height .quat .rot .up .forward .lin_vel .ang_vel .contact_force .prev_pos."""
        try:
            return Body(self, self._body_index[name], name)
        except KeyError:
            raise KeyError(f"unknown body {name!r}; bodies: {', '.join(self.layout.body_names)}") from None

    def joint(self, name: str) -> Joint:
        """View of one hinge/slide joint by MJCF name: .pos .vel .low .high."""
        try:
            return Joint(self, self._joint_index[name], name)
        except KeyError:
            raise KeyError(f"unknown joint {name!r}; joints: {', '.join(self.layout.joint_names)}") from None

    # ---- time --------------------------------------------------------------------------
    @functools.cached_property
    def time(self) -> torch.Tensor:
        """(N,) s: simulated time since the episode started (step * dt)."""
        return self._step.to(self._raw["qpos"].dtype) * self._dt

    @property
    def step(self) -> torch.Tensor:
        """(N,) count, int64: control steps since the episode started (1 after the first step)."""
        return self._step

    # ---- bodies ------------------------------------------------------------------------
    @functools.cached_property
    def body_pos(self) -> torch.Tensor:
        """(N, B, 3) m, world frame: position of every body frame's origin."""
        return self._raw["xpos"][:, 1:]

    @functools.cached_property
    def body_quat(self) -> torch.Tensor:
        """(N, B, 4) unitless, world frame: orientation quaternions, w first (w, x, y, z)."""
        return self._raw["xquat"][:, 1:]

    @functools.cached_property
    def body_rot(self) -> torch.Tensor:
        """(N, B, 3, 3) unitless: rotation matrices, body to world (world_vec = rot @ body_vec)."""
        return self._raw["xmat"][:, 1:].reshape(self._n, -1, 3, 3)

    @functools.cached_property
    def body_up(self) -> torch.Tensor:
        """(N, B, 3) unitless, world frame: each body's local z axis (third column of rot)."""
        return self.body_rot[..., 2]

    @functools.cached_property
    def body_forward(self) -> torch.Tensor:
        """(N, B, 3) unitless, world frame: each body's local x axis (first column of rot)."""
        return self.body_rot[..., 0]

    @functools.cached_property
    def body_ang_vel(self) -> torch.Tensor:
        """(N, B, 3) rad/s, world frame: angular velocity of every body."""
        return self._raw["cvel"][:, 1:, :3]

    @functools.cached_property
    def body_lin_vel(self) -> torch.Tensor:
        """(N, B, 3) m/s, world frame: linear velocity of every body frame's origin."""
        return self._velocity_at(self._raw["xpos"])[:, 1:]

    @functools.cached_property
    def body_contact_force(self) -> torch.Tensor:
        """(N, B, 3) N, world frame: net force exerted on each body by its contacts (+z: pushed up)."""
        return self._raw["cfrc_ext"][:, 1:, 3:]

    @property
    def prev_body_pos(self) -> torch.Tensor:
        """(N, B, 3) m, world frame: body_pos one control step earlier (equal to body_pos right after a reset)."""
        return self._prev["xpos"][:, 1:]

    # ---- joints ------------------------------------------------------------------------
    @functools.cached_property
    def joint_pos(self) -> torch.Tensor:
        """(N, J) rad or m: position of every hinge (rad) and slide (m) joint."""
        return self._raw["qpos"][:, _index(self.layout.joint_qpos_index, self.device)]

    @functools.cached_property
    def joint_vel(self) -> torch.Tensor:
        """(N, J) rad/s or m/s: velocity of every hinge and slide joint."""
        return self._raw["qvel"][:, _index(self.layout.joint_dof_index, self.device)]

    @functools.cached_property
    def prev_joint_pos(self) -> torch.Tensor:
        """(N, J) rad or m: joint_pos one control step earlier (equal to joint_pos right after a reset)."""
        return self._prev["qpos"][:, _index(self.layout.joint_qpos_index, self.device)]

    @property
    def qpos(self) -> torch.Tensor:
        """(N, nq) mixed: MuJoCo's generalized positions (free joint: x y z, then quaternion w x y z)."""
        return self._raw["qpos"]

    @property
    def qvel(self) -> torch.Tensor:
        """(N, nv) mixed: MuJoCo's generalized velocities (free joint: linear world, then angular local)."""
        return self._raw["qvel"]

    # ---- whole body --------------------------------------------------------------------
    @property
    def com_pos(self) -> torch.Tensor:
        """(N, 3) m, world frame: centre of mass of the whole robot."""
        return self._raw["subtree_com"][:, 0]

    @functools.cached_property
    def com_vel(self) -> torch.Tensor:
        """(N, 3) m/s, world frame: velocity of the whole robot's centre of mass."""
        weight = _constant((0.0, *self.layout.body_mass), self._raw["xpos"].dtype, self.device)
        vel = self._velocity_at(self._raw["xipos"])
        return (vel * weight[:, None]).sum(1) / sum(self.layout.body_mass)

    @property
    def prev_com_pos(self) -> torch.Tensor:
        """(N, 3) m, world frame: com_pos one control step earlier (equal to com_pos right after a reset)."""
        return self._prev["subtree_com"][:, 0]

    @property
    def actuator_force(self) -> torch.Tensor:
        """(N, A) N or N·m: force or torque each actuator applies (after gear and control clamping)."""
        return self._raw["actuator_force"]

    # ---- helpers -----------------------------------------------------------------------
    def _velocity_at(self, points: torch.Tensor) -> torch.Tensor:
        """Linear velocity (world frame) of a point fixed to each body, from MuJoCo's cvel.

        cvel is (angular, linear) with the linear part taken at the subtree com of the
        body's root, so v(p) = v_ref + w x (p - ref).
        """
        cvel = self._raw["cvel"]
        ref = self._raw["subtree_com"][:, _index(self.layout.body_root, self.device)]
        return cvel[..., 3:] + torch.cross(cvel[..., :3], points - ref, dim=-1)

    def raw(self, field: str) -> torch.Tensor:
        """(N, ...) MuJoCo units: a batched mjData field by MuJoCo's name (see RAW_FIELDS); world body included."""
        return self._raw[field]

    def index(self, indices: torch.Tensor | slice) -> State:
        """A State holding only the selected environments (for per-environment analysis)."""
        raw = {k: self._raw[k][indices] for k in RAW_FIELDS}
        return State(
            self.layout,
            raw,
            self._step[indices],
            {k: self._prev[k][indices] for k in PREV_FIELDS},
            self._dt,
            dtype=self._raw["qpos"].dtype,
        )

    def to(self, device: torch.device | str) -> State:
        """A copy on another device."""
        raw = {k: self._raw[k].to(device) for k in RAW_FIELDS}
        return State(
            self.layout,
            raw,
            self._step.to(device),
            {k: self._prev[k].to(device) for k in PREV_FIELDS},
            self._dt,
            dtype=self._raw["qpos"].dtype,
        )


STATE_ATTRIBUTES: frozenset[str] = frozenset(
    name for name in dir(State) if not name.startswith("_") and name not in {"index", "to", "raw"}
) - {"layout"}
"""Public names reward code may read on a State (the sandbox's attribute allowlist uses these)."""
BODY_ATTRIBUTES: frozenset[str] = frozenset(n for n in dir(Body) if not n.startswith("_")) | {"name"}
JOINT_ATTRIBUTES: frozenset[str] = frozenset(n for n in dir(Joint) if not n.startswith("_")) | {"name"}


# Index and constant tensors a State needs on every step, built once per (values, device):
# a tensor made from a Python tuple costs more than the small op that uses it.
@functools.cache
def _index(values: tuple[int, ...], device: torch.device) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.int64, device=device)


@functools.cache
def _constant(values: tuple[float, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    return torch.tensor(values, dtype=dtype, device=device)
