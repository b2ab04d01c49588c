"""MuJoCo Warp physics backend: N worlds of one model on a GPU (or on Warp's CPU device, for tests).

Implements backend.PhysicsBackend over `mujoco_warp` (the optional extra
`pip install "synth-reward[gpu]"`; `warp` and `mujoco_warp` are imported only here, when a
backend is made). The model is the morphology's, converted where MuJoCo Warp cannot run it
(envs/warp_model.py: PGS becomes Newton), with the morphology's contact and constraint sizes.

- **State shared with torch.** Every mjData field the State API reads is a torch view of
  MuJoCo Warp's own array (`wp.to_torch`, no copy); a snapshot packs them into one (N, D)
  tensor on the device with one `torch.cat` (float32: MuJoCo Warp's precision).
- **One env step** is frame_skip `mujoco_warp.step` calls and `rne_postconstraint` (contact
  forces, cfrc_ext, after the step as Gymnasium v5 fills them). On CUDA the whole sequence is
  captured once as a CUDA graph and relaunched each step, and torch runs on Warp's stream
  (`torch.cuda.set_stream(wp.stream_to_torch(...))`; mjlab instead wraps its writes in
  `torch.cuda.stream(ExternalStream(...))`), so the policy, the reward and the physics are
  ordered on one stream with no synchronisation. MuJoCo Warp's solver loop is a conditional
  graph node: where the CUDA driver or toolkit is older than 12.4, or the device has no
  memory pool (mjlab's test), the step runs eagerly and one line says so. Warp 1.19 captures
  on its CPU device too, which is how the tests check the captured step against the eager one.
  Contact forces are always computed (lazy_contact_forces is a CPU-backend saving: here they
  cost one short kernel sequence, not a pass of the thread pool).
- **Masked resets.** `set_state` resets the listed worlds (`reset_data` with a world mask), sets
  their qpos and qvel (Gymnasium's reset noise, drawn by BatchedEnv on the host so that both
  backends see the same states), and runs `forward` and `rne_postconstraint`. Those passes
  cover every world, so the derived fields of the other worlds (which hold the values of their
  last step, as on the CPU backend) are put back afterwards.
- **Blow-ups.** MuJoCo Warp does not check its state as MuJoCo does (mj_checkPos/Vel/Acc). After
  each step a world with a non-finite or huge (> 1e10, MuJoCo's mjMAXVAL) qpos, qvel or qacc is
  reset to the model's defaults, as MuJoCo resets such data, and reported by `unstable()`: its
  episode ends and the other worlds go on.
- **Overflow.** A world that needs more constraint rows than njmax, or a batch that needs more
  contacts than the pool holds, stops the run with an error naming the morphology's
  `warp: njmax / nconmax` setting: MuJoCo Warp would drop the excess silently. The solver's
  own flags (its iteration or line-search limit reached) are not overflows: MuJoCo goes on
  after them, and so does this backend.
- **First use.** Warp compiles its kernels on first use (about a minute on Warp's CPU device)
  and caches them (`WARP_CACHE_PATH`, default ~/.cache/warp); one line says so beforehand.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from typing import Any

import mujoco
import numpy as np
import torch

from synth_reward.envs.backend import PackedFields
from synth_reward.envs.state import RAW_FIELDS
from synth_reward.envs.warp_model import WarpModel
from synth_reward.errors import SynthRewardError, UsageError

INSTALL = 'pip install "synth-reward[gpu]"'
"""What to install for the Warp backend (mujoco-warp and warp-lang, pinned in pyproject.toml)."""
MAX_VALUE = 1e10
"""MuJoCo's mjMAXVAL: a state entry beyond it is a blow-up."""
_LEADING = ("time", "qpos", "qvel")
_DERIVED = tuple(f for f in RAW_FIELDS if f not in _LEADING)
_INTEGRATION = int(mujoco.mjtState.mjSTATE_INTEGRATION)
_announced = False
_graph_note_said = False


def warp_installed() -> bool:
    """Whether the gpu extra (warp-lang and mujoco-warp) is importable, without importing it."""
    return all(importlib.util.find_spec(name) is not None for name in ("warp", "mujoco_warp"))


def _import_warp() -> tuple[Any, Any]:
    if not warp_installed():
        raise UsageError(f"the warp backend needs MuJoCo Warp, which is not installed: {INSTALL}")
    import warp as wp

    wp.config.log_level = wp.LOG_WARNING  # (no banner, no line per kernel module loaded: _announce says it once)
    wp.init()  # type: ignore[no-untyped-call]
    import mujoco_warp as mjw

    return wp, mjw


def _announce(device: str, cache: str | None) -> None:
    """One line, once per process, before the first kernels are compiled or loaded."""
    global _announced
    if not _announced:
        _announced = True
        where = f" in {cache}" if cache else ""
        print(
            f"MuJoCo Warp compiles its kernels for {device} on first use (about a minute on Warp's CPU device; "
            f"cached{where}, so later runs load them)",
            file=sys.stderr,
            flush=True,
        )


def compile_kernels(morphology: str, device: str) -> str:
    """Compile (or load) every kernel a Warp backend of `morphology` runs on `device`, into Warp's cache.

    Returns the cache's base folder (for WARP_CACHE_PATH): the main command calls this once, then its
    isolated training processes, which cannot write outside their run folder, load the kernels from there.
    """
    from synth_reward.envs.warp_model import warp_model

    wm = warp_model(morphology)
    backend = WarpBackend(wm, 1, 1, device)  # on CUDA: the eager step, then the graph's capture and launch
    for _ in range(2):
        backend.step(torch.zeros(1, wm.model.nu, device=backend.device))
    backend.load_state_dict(backend.state_dict())  # (get_state, set_state)
    backend.close()
    return str(Path(backend._wp.config.kernel_cache_dir).parent)


class WarpBackend:
    """MuJoCo Warp over N worlds, implementing backend.PhysicsBackend."""

    def __init__(
        self,
        warp_model: WarpModel,
        num_envs: int,
        frame_skip: int,
        device: str = "cuda",
        lazy_contact_forces: bool = False,
        graph: bool | None = None,
    ) -> None:
        """graph: capture the env step as a graph and relaunch it. None: on CUDA where it is supported;
        True: also on Warp's CPU device (tests compare it with the eager step); False: never."""
        wp, mjw = _import_warp()
        self._wp, self._mjw = wp, mjw
        model = warp_model.model
        self.model, self.num_envs, self.frame_skip = model, num_envs, frame_skip
        self.nconmax, self.njmax = warp_model.nconmax, warp_model.njmax
        self.lazy_contact_forces = False  # always computed (module docstring)
        if device.startswith("cuda") and not wp.is_cuda_available():
            raise UsageError(f"--device {device}: Warp sees no CUDA device; use --device cpu")
        try:
            self._wp_device = wp.get_device(device)
        except (RuntimeError, ValueError) as exc:
            raise UsageError(f"--device {device}: {exc}; use cpu or cuda") from None
        self.device = torch.device(wp.device_to_torch(self._wp_device))
        _announce(str(self._wp_device), wp.config.kernel_cache_dir)
        with wp.ScopedDevice(self._wp_device):
            try:
                self._m = mjw.put_model(model)
            except NotImplementedError as exc:
                raise UsageError(
                    f"MuJoCo Warp cannot run this model: {exc} (change that option in the MJCF, or use --backend cpu)"
                ) from None
            self._m.opt.warn_overflow = 0  # (kernels would printf; step() raises an error that names the setting)
            self._d = mjw.make_data(model, nworld=num_envs, nconmax=self.nconmax, njmax=self.njmax)
            self._state_rows = wp.zeros((num_envs, mujoco.mj_stateSize(model, _INTEGRATION)), dtype=float)
            self._mask = wp.zeros(num_envs, dtype=bool)
        d = self._d
        self._mask_t = wp.to_torch(self._mask)
        self._state_t = wp.to_torch(self._state_rows)
        self._time = wp.to_torch(d.time)
        self._qpos, self._qvel = wp.to_torch(d.qpos), wp.to_torch(d.qvel)
        self._qacc, self._ctrl = wp.to_torch(d.qacc), wp.to_torch(d.ctrl)
        self._overflow = wp.to_torch(d.overflow)
        solver_flags = int(mjw.OverflowType.ITERATIONS | mjw.OverflowType.LS_ITERATIONS)
        self._capacity_bits = ~solver_flags  # (every other flag says an array was too small)
        # torch views (N, size) of every field a snapshot holds, in State's packed order
        probe = mujoco.MjData(model)
        self._spec: dict[str, tuple[int, tuple[int, ...]]] = {}
        self._views: list[torch.Tensor] = []
        offset = 0
        for f in _LEADING + _DERIVED:
            shape: tuple[int, ...] = () if f == "time" else np.shape(getattr(probe, f))
            self._spec[f] = (offset, shape)
            offset += math.prod(shape)
            self._views.append(wp.to_torch(getattr(d, f)).view(num_envs, -1))
        self._derived = self._views[len(_LEADING) :]
        self._is_cuda = self._wp_device.is_cuda
        self._graph: Any = None
        self._use_graph = (self._is_cuda and _graphs_supported(wp, self._wp_device)) if graph is None else graph
        if self._is_cuda:  # torch on Warp's stream: one stream orders physics, policy and reward
            torch.cuda.set_stream(wp.stream_to_torch(self._wp_device))
        self._unstable = np.zeros(num_envs, dtype=bool)
        self._blew_up_at_reset: np.ndarray | None = None
        self._closed = False
        self.set_state(np.arange(num_envs), np.tile(model.qpos0, (num_envs, 1)), np.zeros((num_envs, model.nv)))

    # ---- physics ------------------------------------------------------------------------------
    def _physics(self) -> None:
        for _ in range(self.frame_skip):
            self._mjw.step(self._m, self._d)
        self._mjw.rne_postconstraint(self._m, self._d)

    def _check_open(self) -> None:
        if self._closed:
            raise SynthRewardError("this env was closed; make a new one")

    def _blown_up(self) -> torch.Tensor:
        """(N,) bool on the device: worlds whose qpos, qvel or qacc is non-finite or beyond MAX_VALUE."""
        state = torch.cat((self._qpos, self._qvel, self._qacc), dim=1)
        return ~(state.abs() <= MAX_VALUE).all(dim=1)  # (NaN fails the comparison)

    def step(self, ctrl: torch.Tensor) -> None:
        """Apply ctrl (N, nu) for frame_skip physics steps in every world, then fill contact forces."""
        self._check_open()
        wp = self._wp
        self._ctrl.copy_(ctrl.to(self.device, torch.float32))
        with wp.ScopedDevice(self._wp_device):
            if self._graph is not None:
                wp.capture_launch(self._graph)
            else:
                self._physics()
                if self._use_graph:  # kernels are loaded now: capture the sequence for the next steps
                    self._graph = self._capture()
        overflow = (self._overflow & self._capacity_bits) != 0
        flags = torch.stack((overflow, self._blown_up())).cpu().numpy()  # (one copy to the host)
        if flags[0].any():
            self._raise_overflow()
        np.copyto(self._unstable, flags[1])
        if self._blew_up_at_reset is not None:
            self._unstable |= self._blew_up_at_reset
            self._blew_up_at_reset = None
        if self._unstable.any():  # as MuJoCo resets blown-up data: the model's defaults, finite again
            self._reset_worlds(np.flatnonzero(self._unstable), None, None)

    def _capture(self) -> Any:
        """Record one env step (`_physics`) as a graph; nothing runs while it is recorded."""
        import gc

        gc.disable()  # (a Warp graph freed by the collector mid-capture would be recorded into this one: mjlab)
        try:
            with self._wp.ScopedCapture(device=self._wp_device, force_module_load=False) as capture:
                self._physics()
        finally:
            gc.enable()
        return capture.graph

    def _raise_overflow(self) -> None:
        types = self._mjw.OverflowType
        bits = int(np.bitwise_or.reduce(self._overflow.cpu().numpy())) & self._capacity_bits
        if bits & int(types.NEFC | types.NJMAX_NNZ):
            need = int(wp_max(self._d.nefc))
            raise SynthRewardError(
                f"MuJoCo Warp ran out of constraint rows (flags {bits:#x}): a world needed {need}, njmax is "
                f"{self.njmax}; raise the "
                f"morphology's `warp: njmax` (morphologies.yaml, or the file in SYNTH_REWARD_MORPHOLOGIES)"
            )
        need = int(wp_max(self._d.nacon))
        raise SynthRewardError(
            f"MuJoCo Warp ran out of contacts: the worlds needed {need}, the pool holds nconmax {self.nconmax} x "
            f"{self.num_envs} worlds (overflow flags {bits:#x}); raise the morphology's `warp: nconmax` "
            f"(morphologies.yaml, or the file in SYNTH_REWARD_MORPHOLOGIES)"
        )

    def set_state(self, env_ids: np.ndarray, qpos: np.ndarray, qvel: np.ndarray) -> None:
        """Reset the given worlds to (qpos, qvel), as Gymnasium's reset does (reset_data, set, forward)."""
        self._check_open()
        ids = np.asarray(env_ids, dtype=np.int64)
        self._reset_worlds(ids, qpos, qvel)
        self._unstable[ids] = False
        # a given state that is already blown up (NaN, huge qvel): reset like MuJoCo; the next step reports it
        blew_up = self._blown_up()[torch.as_tensor(ids, device=self.device)].cpu().numpy()
        if blew_up.any():
            self._reset_worlds(ids[blew_up], None, None)
            if self._blew_up_at_reset is None:
                self._blew_up_at_reset = np.zeros(self.num_envs, dtype=bool)
            self._blew_up_at_reset[ids[blew_up]] = True

    def _reset_worlds(self, ids: np.ndarray, qpos: np.ndarray | None, qvel: np.ndarray | None) -> None:
        """reset_data of worlds `ids`, then their qpos/qvel (None: the model's defaults), forward, contact forces."""
        wp, mjw = self._wp, self._mjw
        t = torch.as_tensor(ids, device=self.device)
        self._mask_t.zero_()
        self._mask_t[t] = True
        others = None if len(ids) == self.num_envs else torch.nonzero(~self._mask_t).squeeze(1)
        kept = None if others is None else [v[others] for v in self._derived]  # (advanced indexing: copies)
        with wp.ScopedDevice(self._wp_device):
            mjw.reset_data(self._m, self._d, reset=self._mask)
            if qpos is not None and qvel is not None:
                self._qpos[t] = torch.as_tensor(qpos, dtype=torch.float32, device=self.device)
                self._qvel[t] = torch.as_tensor(qvel, dtype=torch.float32, device=self.device)
            mjw.forward(self._m, self._d)
            mjw.rne_postconstraint(self._m, self._d)
        if others is not None and kept is not None:
            for view, values in zip(self._derived, kept, strict=True):
                view[others] = values

    # ---- reading ------------------------------------------------------------------------------
    def raw(self) -> PackedFields:
        """The batched mjData fields, gathered now in float32 (MuJoCo Warp's precision)."""
        return self.snapshot(torch.float32)

    def snapshot(self, dtype: torch.dtype) -> PackedFields:
        """A copy of every field in dtype, taken now: one row per world, on the device."""
        packed = torch.cat(self._views, dim=1).to(dtype)
        host = packed.numpy() if packed.device.type == "cpu" and dtype != torch.bfloat16 else None
        return PackedFields(packed, self._spec, host=host)

    def unstable(self) -> np.ndarray:
        """(N,) bool: worlds whose physics blew up during the last step (reset to the model's defaults); a copy."""
        return self._unstable.copy()

    # ---- checkpoints ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """MuJoCo's integration state of every world (mjSTATE_INTEGRATION rows, as the CPU backend's) and flags."""
        with self._wp.ScopedDevice(self._wp_device):
            self._mjw.get_state(self._m, self._d, self._state_rows, _INTEGRATION)
        blew = self._blew_up_at_reset
        return {
            "rows": self._state_t.cpu().clone(),
            "unstable": torch.from_numpy(self._unstable.copy()),
            "blew_up": None if blew is None else torch.from_numpy(blew.copy()),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._check_open()
        rows = state["rows"]
        if tuple(rows.shape) != tuple(self._state_t.shape):
            raise ValueError(f"saved physics has shape {tuple(rows.shape)}, this backend {tuple(self._state_t.shape)}")
        self._state_t.copy_(rows.to(self.device, torch.float32))
        wp, mjw = self._wp, self._mjw
        with wp.ScopedDevice(self._wp_device):
            mjw.set_state(self._m, self._d, self._state_rows, _INTEGRATION)
            mjw.forward(self._m, self._d)
            mjw.rne_postconstraint(self._m, self._d)
        self._unstable[:] = state["unstable"].numpy()
        self._blew_up_at_reset = None if state["blew_up"] is None else state["blew_up"].numpy().copy()

    def close(self) -> None:
        self._closed, self._graph = True, None


def _graphs_supported(wp: Any, device: Any) -> bool:
    """Whether MuJoCo Warp's step can be captured on this CUDA device (mjlab's test), else one line, once."""
    global _graph_note_said
    ok = bool(wp.is_mempool_enabled(device)) and bool(wp.is_conditional_graph_supported())
    if not ok and not _graph_note_said:
        _graph_note_said = True
        print(
            f"MuJoCo Warp: no CUDA graph on {device} (it needs CUDA driver and toolkit 12.4+ and the device's "
            "memory pool); each step launches its kernels one by one, which is slower",
            file=sys.stderr,
            flush=True,
        )
    return ok


def wp_max(array: Any) -> int:
    """The largest entry of a small Warp int array (copied to the host)."""
    return int(np.max(array.numpy()))
