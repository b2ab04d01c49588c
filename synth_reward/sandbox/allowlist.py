"""What generated code may name: modules, module attributes, builtins and attribute names.

An allowlist, not a blocklist: anything missing here is rejected, so a new torch release
cannot open a hole by adding a function. Module attributes are full dotted names
(`torch.linalg.norm`), resolved through import aliases. Attributes read on other objects
(tensors, the State, bodies, joints, dicts) are checked by name only, because the static
policy cannot know an object's type; the names below are all side-effect free.

Left out on purpose: file and network I/O (`torch.save/load/hub`, `numpy.save`,
`tofile`), global state (`torch.manual_seed`, `torch.set_*`), random numbers (they break
determinism and move the trainer's RNG), in-place methods (trailing underscore), `out=`
arguments, and anything reaching the interpreter (`__class__`, `getattr`, `type`).
"""

from __future__ import annotations

from synth_reward.envs.state import BODY_ATTRIBUTES, JOINT_ATTRIBUTES, STATE_ATTRIBUTES

ALLOWED_MODULES: frozenset[str] = frozenset(
    {"torch", "torch.nn", "torch.nn.functional", "torch.linalg", "math", "numpy", "typing"}
)
"""Modules an `import` may name. Imports are resolved statically; nothing is imported at run time."""

_TORCH_FUNCTIONS = """
abs absolute acos acosh add addcdiv addcmul all allclose amax amin angle any arange arccos arccosh
arcsin arcsinh arctan arctan2 arctanh argmax argmin argsort as_tensor asin asinh atan atan2 atanh
atleast_1d atleast_2d bucketize broadcast_tensors broadcast_to cat ceil chunk clamp clamp_max
clamp_min clip clone concat concatenate cos cosh count_nonzero cross cummax cummin cumprod cumsum
deg2rad diag diagonal diff dist div divide dot einsum eq equal erf exp exp2 expm1 eye flatten flip
float_power floor floor_divide fmax fmin fmod frac full full_like gather ge greater greater_equal gt
heaviside hypot index_select inner isclose isfinite isinf isnan isneginf isposinf kron le lerp less
less_equal linspace log log10 log1p log2 logaddexp logical_and logical_not logical_or logical_xor
logsumexp lt masked_fill masked_select matmul max maximum mean median min minimum mm mul multiply
mv nan_to_num nanmean nansum narrow ne neg negative nonzero norm not_equal numel ones ones_like
outer permute pow prod quantile rad2deg reciprocal relu remainder repeat_interleave reshape roll
round rsqrt select sigmoid sign signbit sin sinc sinh softmax sort split sqrt square squeeze stack
std sub subtract sum t take tan tanh tensor tensordot tile topk trace transpose trapezoid tril triu
true_divide trunc unbind unsqueeze var var_mean std_mean vstack hstack where zeros zeros_like
logspace searchsorted
"""
_TORCH_CONSTANTS = """
Tensor Size dtype device float32 float64 float16 bfloat16 float double half int32 int64 int long
int8 int16 uint8 bool pi e inf nan
"""
_TORCH_SUBMODULE_FUNCTIONS = {
    "torch.linalg": "norm vector_norm matrix_norm cross det inv solve vecdot",
    "torch.nn.functional": (
        "relu relu6 elu selu celu gelu silu mish softplus softsign sigmoid tanh hardtanh leaky_relu "
        "logsigmoid normalize cosine_similarity pairwise_distance softmax log_softmax smooth_l1_loss "
        "huber_loss mse_loss l1_loss pad one_hot"
    ),
}
_MATH = """
acos acosh asin asinh atan atan2 atanh ceil comb copysign cos cosh degrees dist e erf erfc exp exp2
expm1 fabs factorial floor fmod fsum gamma gcd hypot inf isclose isfinite isinf isnan lcm ldexp
lgamma log log10 log1p log2 nan perm pi pow prod radians remainder sin sinh sqrt tan tanh tau trunc
"""
_NUMPY = """
pi e inf nan sqrt exp log log1p abs absolute sin cos tan arcsin arccos arctan arctan2 tanh sinh cosh
deg2rad rad2deg radians degrees clip minimum maximum sign square float32 float64 int64 array
asarray mean sum min max prod linspace arange zeros ones full isfinite isnan hypot cross dot
"""
_TYPING = "Tuple Dict List Optional Any Union Callable Sequence Mapping"

ALLOWED_MODULE_ATTRIBUTES: frozenset[str] = frozenset(
    [f"torch.{n}" for n in (_TORCH_FUNCTIONS + _TORCH_CONSTANTS).split()]
    + [f"{mod}.{n}" for mod, names in _TORCH_SUBMODULE_FUNCTIONS.items() for n in names.split()]
    + [f"math.{n}" for n in _MATH.split()]
    + [f"numpy.{n}" for n in _NUMPY.split()]
    + [f"typing.{n}" for n in _TYPING.split()]
)
"""Full dotted names of module members generated code may use (through any import alias)."""

ALLOWED_DECORATORS: frozenset[str] = frozenset(
    {"torch.jit.script", "torch.jit.ignore", "torch.jit.unused", "torch.no_grad", "torch.inference_mode"}
)
"""Decorators LLMs put on rewards (Eureka's `@torch.jit.script`). Allowed only as decorators,
and the loader drops them: TorchScript needs the source file, and the trainer already calls
rewards without autograd. They are not callable from the code itself."""

_TENSOR_ATTRIBUTES = """
T mT shape dtype device ndim is_floating_point
abs absolute acos acosh add addcdiv addcmul all allclose amax amin angle any arccos arcsin arctan
arctan2 argmax argmin argsort asin atan atan2 bool broadcast_to ceil chunk clamp clamp_max clamp_min
clip clone contiguous cos cosh count_nonzero cpu cross cummax cummin cumprod cumsum deg2rad detach
diag diagonal diff dim dist div divide dot double eq equal exp expand expand_as expm1 flatten flip
float floor floor_divide fmod frac gather ge gt half index_select int isclose isfinite isinf isnan
item le lerp log log10 log1p log2 logical_and logical_not logical_or logical_xor logsumexp long lt
masked_fill masked_select matmul max maximum mean median min minimum mul multiply nan_to_num
nanmean nansum narrow ne neg negative new_full new_ones new_tensor new_zeros nonzero norm numel
numpy permute pow prod rad2deg reciprocal relu remainder repeat repeat_interleave reshape reshape_as
roll round rsqrt select sigmoid sign sin sinh size softmax sort split sqrt square squeeze std sub
subtract sum t tan tanh to tolist topk transpose tril triu true_divide trunc type_as unbind
unsqueeze var view view_as where
"""
_CONTAINER_ATTRIBUTES = "items keys values get update append extend copy pop index count"
_STRING_ATTRIBUTES = "lower upper startswith endswith replace strip join split"

ALLOWED_ATTRIBUTES: frozenset[str] = (
    frozenset((_TENSOR_ATTRIBUTES + _CONTAINER_ATTRIBUTES + " " + _STRING_ATTRIBUTES).split())
    | STATE_ATTRIBUTES
    | BODY_ATTRIBUTES
    | JOINT_ATTRIBUTES
)
"""Attribute names allowed on values that are not modules (tensors, State, Body, Joint, dicts)."""

ALLOWED_BUILTINS: frozenset[str] = frozenset(
    """abs all any bool dict divmod enumerate filter float int isinstance len list map max min pow
    print range reversed round set sorted str sum tuple zip""".split()
)
"""Builtins generated code may call. `print` is bound to a no-op by the loader."""

FRESH_CONSTRUCTORS: frozenset[str] = frozenset(
    {
        "torch.zeros",
        "torch.ones",
        "torch.full",
        "torch.zeros_like",
        "torch.ones_like",
        "torch.full_like",
        "torch.tensor",
        "torch.arange",
        "torch.linspace",
        "torch.eye",
        "torch.clone",
        "torch.stack",
        "torch.cat",
        "torch.where",
        "dict",
        "list",
    }
)
"""Calls that return a new object, so item assignment to their result cannot reach the inputs."""
FRESH_METHODS: frozenset[str] = frozenset({"clone", "new_zeros", "new_ones", "new_full", "copy"})

FORBIDDEN_HINTS: dict[str, str] = {
    "eval": "evaluating strings as code is not allowed; write the expression directly",
    "exec": "executing strings as code is not allowed; write the code directly",
    "compile": "compiling code at run time is not allowed; write the code directly",
    "open": "reward code may not read or write files; compute everything from `state` and `action`",
    "getattr": "dynamic attribute access is not allowed; write `obj.name` with a literal name",
    "setattr": "reward code may not change objects; return new tensors instead",
    "delattr": "reward code may not change objects; return new tensors instead",
    "hasattr": "dynamic attribute access is not allowed; the State API's attributes are fixed",
    "globals": "reward code may not inspect the interpreter; use local variables",
    "locals": "reward code may not inspect the interpreter; use local variables",
    "vars": "reward code may not inspect the interpreter; use local variables",
    "dir": "reward code may not inspect objects; the State API's attributes are listed in the prompt",
    "type": "reward code may not inspect types; use `isinstance(x, torch.Tensor)` if you must",
    "input": "reward code cannot read input; compute everything from `state` and `action`",
    "breakpoint": "debuggers are not available; remove the call",
    "exit": "reward code may not stop the process; return the reward",
    "quit": "reward code may not stop the process; return the reward",
    "memoryview": "raw memory access is not allowed; use tensor operations",
    "bytearray": "raw bytes are not needed; use tensor operations",
    "object": "reward code may not define or inspect classes; use functions and tensors",
    "super": "reward code may not define classes; use functions",
    "iter": "use a `for` loop over a list or `range` instead",
    "next": "use a `for` loop over a list or `range` instead",
    "id": "object identities are not needed; compare values",
    "hash": "hashing is not needed; compare values",
    "format": "string formatting with attribute lookups is not allowed; use an f-string",
    "chr": "build strings from literals",
    "ord": "build strings from literals",
}
"""Builtins people (and LLMs) reach for, with what to do instead."""

FORBIDDEN_MODULE_HINTS: dict[str, str] = {
    "os": "reward code may not touch the operating system (files, processes, environment)",
    "sys": "reward code may not touch the interpreter",
    "subprocess": "reward code may not start processes",
    "socket": "reward code may not use the network",
    "ctypes": "reward code may not call native code",
    "shutil": "reward code may not touch files",
    "pathlib": "reward code may not touch files",
    "pickle": "reward code may not load or save objects",
    "importlib": "reward code may not import modules dynamically",
    "builtins": "reward code may not reach the interpreter's builtins",
    "threading": "reward code may not start threads; vectorize over the batch instead",
    "multiprocessing": "reward code may not start processes; vectorize over the batch instead",
    "random": "random numbers make the reward non-deterministic; use only `state` and `action`",
    "time": "the wall clock is not an input; use `state.time` (simulated seconds)",
}
