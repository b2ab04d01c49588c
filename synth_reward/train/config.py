"""Training configuration: one pydantic model, a default per morphology, derived sizes once.

Every field has a one-line docstring with its unit and where its default comes from.
`default_config(morphology)` starts from `TrainConfig()`'s defaults (rsl_rl's and mjlab's
PPO settings for batched torch environments) and applies the per-morphology overrides in
`MORPHOLOGY_DEFAULTS`, each commented with its source.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from synth_reward.errors import UsageError


class TrainConfig(BaseModel):
    """PPO (rsl_rl 5.5.1) over a BatchedEnv. Defaults: rsl_rl's PPO / mjlab's velocity-task runner, plus reward
    normalisation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # ---- budget and batch -------------------------------------------------------------------
    total_steps: int = Field(2_000_000, ge=1)
    """env steps (all envs together) to train for; rounded up to whole PPO iterations."""
    num_envs: int = Field(64, ge=1)
    """environments stepped together; 64 keeps 2 CPU cores busy on humanoid (benchmarks/bench_train.py)."""
    num_steps_per_env: int = Field(24, ge=1)
    """control steps each env collects per PPO iteration (rsl_rl/mjlab: 24)."""
    num_threads: int | None = None
    """physics threads of the CPU backend; None: one per core (capped at num_envs)."""
    torch_threads: int | None = 1
    """torch intra-op threads for the networks; 1 on small CPU machines. On this project's 2-core machine a second
    thread made a 384x256 matmul loop 1.4x faster when the machine was quiet, but with one other busy process a PPO
    update became 30-40x slower (humanoid 12 s vs 0.4 s, half_cheetah 43 s vs 1.1 s: OpenMP threads wait on each
    other), so 1 is the default; None: leave torch's default (use on a GPU)."""
    device: str = "cpu"
    """torch device of the networks and rollout storage ("cpu", "cuda"); with the warp backend also Warp's device
    (the physics, shared with torch without copies); the CPU backend's physics stays on the host."""
    backend: Literal["cpu", "warp"] = "cpu"
    """physics backend of the BatchedEnv: "cpu" (native MuJoCo) or "warp" (MuJoCo Warp, the gpu extra; docs/warp.md)."""
    seed: int = 0
    """seeds torch (networks, action noise) and the env's reset noise."""

    early_end_s: float | None = Field(0.5, gt=0)
    """s: end a training episode once a condition of the task's success check that held at its start has failed
    this long, or once the success rule can no longer be met (train/early_end.py); None: full episodes only.
    Evaluation always runs full episodes."""

    # ---- networks -----------------------------------------------------------------------------
    hidden_dims: tuple[int, ...] = (512, 256, 128)
    """hidden layer widths of actor and critic MLPs (mjlab velocity tasks: 512, 256, 128)."""
    activation: str = "elu"
    """hidden activation (rsl_rl default: elu)."""
    init_noise_std: float = Field(1.0, gt=0)
    """initial std of the Gaussian policy, in policy action units (rsl_rl default 1.0)."""
    noise_std_type: Literal["scalar", "log"] = "scalar"
    """how the policy's std is learned: "scalar" (rsl_rl default) or "log" (SB3's log_std; steps on a small std
    stay proportional to it)."""
    obs_normalization: bool = True
    """running mean/std normalisation of observations (rsl_rl EmpiricalNormalization; mjlab: on)."""
    reward_normalization: bool = True
    """scale PPO's rewards by the running std of the discounted return (SB3 VecNormalize, rl-zoo's `normalize`,
    CleanRL's NormalizeReward); records stay unscaled. rsl_rl/mjlab: off, with rewards scaled by hand. Measured:
    humanoid kneel with examples/rewards/humanoid_kneel.py, seed 0: 21.9% success after 2.9M steps without,
    100% after 4.0M steps with (docs/benchmarks.md, "Humanoid kneel"); half_cheetah at 100k steps: 2,160 without, 2,811 with."""
    action_scaling: bool = True
    """policy action a in [-1, 1] maps to the actuator ctrl range (mid + a * half_range), then is clipped."""

    # ---- PPO ------------------------------------------------------------------------------------
    learning_rate: float = Field(1e-3, gt=0)
    """Adam step size at the start (rsl_rl default 1e-3)."""
    schedule: Literal["adaptive", "fixed"] = "adaptive"
    """adaptive: rsl_rl's KL-based step size (x/÷1.5 to keep KL near desired_kl); fixed: constant."""
    desired_kl: float = Field(0.01, gt=0)
    """target KL divergence per update for the adaptive schedule (rsl_rl default 0.01)."""
    num_learning_epochs: int = Field(5, ge=1)
    """passes over each rollout (rsl_rl default 5)."""
    num_mini_batches: int = Field(4, ge=1)
    """minibatches per pass (rsl_rl default 4)."""
    clip_param: float = Field(0.2, gt=0)
    """PPO ratio clip (rsl_rl default 0.2)."""
    gamma: float = Field(0.99, gt=0, le=1)
    """discount per control step (rsl_rl default 0.99)."""
    lam: float = Field(0.95, ge=0, le=1)
    """GAE lambda (rsl_rl default 0.95)."""
    value_loss_coef: float = Field(1.0, ge=0)
    """weight of the value loss (rsl_rl default 1.0)."""
    entropy_coef: float = Field(0.01, ge=0)
    """weight of the entropy bonus (rsl_rl default 0.01)."""
    clipped_value_loss: bool = True
    """clip the value update to clip_param around the old value (rsl_rl default: on; SB3 default: off)."""
    max_grad_norm: float = Field(1.0, gt=0)
    """gradient norm clip (rsl_rl default 1.0)."""

    # ---- recording --------------------------------------------------------------------------------
    num_records: int = Field(20, ge=1)
    """record points per run (Eureka reflects on ~10): JSONL line, TensorBoard scalars, last/best checkpoints."""
    checkpoint_seconds: float = Field(60.0, gt=0)
    """also save the `last` checkpoint when this many wall seconds passed since the previous save."""
    stop_success_rate: float | None = Field(None, ge=0, le=1)
    """stop early once a record point's training success rate reaches this (None: use the whole budget)."""
    tensorboard: bool = True
    """write TensorBoard scalars under RUN/tb."""

    # ---- derived sizes (computed once) ------------------------------------------------------------
    @property
    def steps_per_iteration(self) -> int:
        """env steps per PPO iteration: num_envs * num_steps_per_env."""
        return self.num_envs * self.num_steps_per_env

    @property
    def iterations(self) -> int:
        """PPO iterations to reach total_steps."""
        return max(1, math.ceil(self.total_steps / self.steps_per_iteration))

    @property
    def record_every(self) -> int:
        """iterations between record points."""
        return max(1, self.iterations // self.num_records)

    def rsl_rl_cfg(self) -> dict[str, Any]:
        """The runner/algorithm dict rsl_rl 5.5's PPO.construct_algorithm reads."""
        model = {
            "class_name": "rsl_rl.models.MLPModel",
            "hidden_dims": list(self.hidden_dims),
            "activation": self.activation,
            "obs_normalization": self.obs_normalization,
        }
        return {
            "num_steps_per_env": self.num_steps_per_env,
            "obs_groups": {"actor": ["policy"], "critic": ["policy"]},
            "actor": {
                **model,
                "distribution_cfg": {
                    "class_name": "rsl_rl.modules.distribution.GaussianDistribution",
                    "init_std": self.init_noise_std,
                    "std_type": self.noise_std_type,
                },
            },
            "critic": dict(model),
            "algorithm": {
                "class_name": "rsl_rl.algorithms.PPO",
                "num_learning_epochs": self.num_learning_epochs,
                "num_mini_batches": self.num_mini_batches,
                "clip_param": self.clip_param,
                "gamma": self.gamma,
                "lam": self.lam,
                "value_loss_coef": self.value_loss_coef,
                "entropy_coef": self.entropy_coef,
                "learning_rate": self.learning_rate,
                "max_grad_norm": self.max_grad_norm,
                "use_clipped_value_loss": self.clipped_value_loss,
                "schedule": self.schedule,
                "desired_kl": self.desired_kl,
            },
            "multi_gpu": None,
        }


MORPHOLOGY_DEFAULTS: dict[str, dict[str, Any]] = {
    # humanoid: rsl_rl/mjlab PPO settings (above; reward normalisation added), 64 envs x 24 steps = 1536 steps per iteration, with
    # smaller nets (256, 128, 64): on 2 CPU cores the (512, 256, 128) update took 0.56-0.77 s per iteration,
    # as long as the physics; (256, 128, 64) takes 0.3 s. init_noise_std 0.5: a policy action of 1 is the
    # actuator's full ctrl (+-0.4), and std 1.0 would clip a third of all samples.
    "humanoid": {"num_envs": 64, "hidden_dims": (256, 128, 64), "init_noise_std": 0.5, "total_steps": 5_000_000},
    "ant": {"num_envs": 64, "hidden_dims": (256, 128, 64), "init_noise_std": 0.5, "total_steps": 5_000_000},
    # planar robots: rl-baselines3-zoo's PPO hyperparameters for HalfCheetah / Hopper (hyperparams/ppo.yml:
    # n_steps 512, gamma, gae_lambda, clip_range, ent_coef, n_epochs, 256x256 ReLU nets, log_std_init -2
    # i.e. std 0.135), spread over 8 envs x 64 steps (same 512 steps per update); batch 64 -> 8 minibatches.
    # rsl_rl's adaptive step size replaces the zoo's tiny constant learning rate. The zoo's `normalize: true`
    # is reward_normalization (on for every robot) and its log_std is noise_std_type "log".
    # Measured on half_cheetah, 100k steps, seed 0 (return): 2,160 without either, 2,811 with reward
    # normalisation, 3,077 with both; the zoo's constant 2.06e-5 step size instead of adaptive: 2,844; also
    # without value clipping (SB3's default): 3,128; 1 env x 512 steps, the zoo's layout: 2,879.
    "half_cheetah": {
        "num_envs": 8,
        "noise_std_type": "log",
        "num_steps_per_env": 64,
        "hidden_dims": (256, 256),
        "activation": "relu",
        "init_noise_std": 0.135,
        "gamma": 0.98,
        "lam": 0.92,
        "clip_param": 0.1,
        "entropy_coef": 0.0004,
        "num_learning_epochs": 20,
        "num_mini_batches": 8,
        "max_grad_norm": 0.8,
        "value_loss_coef": 0.58,
        "total_steps": 1_000_000,
    },
    "hopper": {
        "num_envs": 8,
        "noise_std_type": "log",
        "num_steps_per_env": 64,
        "hidden_dims": (256, 256),
        "activation": "relu",
        "init_noise_std": 0.135,
        "gamma": 0.999,
        "lam": 0.99,
        "clip_param": 0.2,
        "entropy_coef": 0.0023,
        "num_learning_epochs": 5,
        "num_mini_batches": 16,
        "max_grad_norm": 0.7,
        "value_loss_coef": 0.84,
        "total_steps": 1_000_000,
    },
    "walker2d": {
        "num_envs": 8,
        "noise_std_type": "log",
        "num_steps_per_env": 64,
        "hidden_dims": (256, 256),
        "activation": "relu",
        "init_noise_std": 0.135,
        "total_steps": 1_000_000,
    },
}
"""Per-morphology overrides of TrainConfig's defaults, with their sources in the comments."""


def default_config(morphology: str, **overrides: Any) -> TrainConfig:
    """The default TrainConfig for a morphology, with `overrides` (None values ignored) on top."""
    fields = {**MORPHOLOGY_DEFAULTS.get(morphology, {}), **{k: v for k, v in overrides.items() if v is not None}}
    try:
        return TrainConfig(**fields)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err["loc"])
        raise UsageError(f"bad training setting {loc}: {err['msg']} (got {err.get('input')!r})") from None
