"""The op table: every op of the kernel contract, fuzzed on every available backend.

:data:`TABLE` has one :class:`OpCase` per contract op (``activation`` once per name in
:data:`~axiom.backends.base.ACTIVATIONS`): a Hypothesis strategy of arguments (odd sizes
1..~100, empty batches, non-contiguous views, NaN/Inf injection, extreme values where the op
has a special-value story), the dtypes it is tested in, an error bound and, where one
exists, the PyTorch equivalent. Three kinds of tests drive it:

1. every backend, the NumPy reference and the three native backends (C, Rust, Zig: the
   kernel libraries of the one ABI), against the oracle, the NumPy reference on float64
   inputs (rounded to the output dtype). A native backend that is not built is skipped
   (a failure with ``AXIOM_REQUIRE_NATIVE=1``); a native backend must run every op
   natively: no fallback may be recorded. The GPU backends (OpenCL, on PoCL in CI, and CUDA)
   run the same table (:data:`GPU_EXAMPLES` examples per op) under the same rules and bounds
   (PoCL's exp / tanh / erf pass them: 300 examples per op found no bound too tight): OpenCL
   is required under ``AXIOM_REQUIRE_NATIVE=1``, CUDA skips without an NVIDIA GPU (required
   under ``AXIOM_REQUIRE_CUDA=1``, ``make test-gpu``);
2. a few large inputs (1000+ elements per axis, and arrays big enough for the threaded paths),
   on the native and the GPU backends;
3. the C backend against PyTorch (float64) where the op has a PyTorch equivalent (the
   others agree with the reference, and so with C, through 1.).

A second test feeds every NN kernel of every library (C, Rust, Zig) wrong sizes, NULL
pointers and bad flags through ctypes (:data:`axiom.backends.abi.SIGNATURES`): it must return
the documented code, write nothing and never crash.

Comparison: where the oracle is NaN the result must be NaN, where it is +-inf the same inf,
elsewhere ``|result - oracle| <= bound`` with the case's bound (a few units of the dtype's
epsilon times the magnitudes that enter the op, times the length of its sums).
"""

from __future__ import annotations

import ctypes
import math
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import ml_dtypes
import numpy as np
import pytest
from gpu_libs import gpu_backend, gpu_backends
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from axiom.backends import ACTIVATIONS, OPS, FallbackWarning, ReferenceBackend, abi, get_backend
from axiom.backends.c_kernels import ACTIVATION_CODES, C_NN_OPS

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")
F = torch.nn.functional

REQUIRE_NATIVE = os.environ.get("AXIOM_REQUIRE_NATIVE", "") == "1"
REF = ReferenceBackend()
F16, BF16, F32, F64 = np.dtype(np.float16), np.dtype(ml_dtypes.bfloat16), np.dtype(np.float32), np.dtype(np.float64)
ALL_DTYPES = (F32, F64, F16, BF16)
EXAMPLES = 40

Args = dict[str, Any]


def eps(dtype: np.dtype) -> float:
    return float(ml_dtypes.finfo(dtype).eps)


# -- generating arrays ------------------------------------------------------------------------


@dataclass
class Gen:
    """Draws arrays for one example: values from a seeded RNG, structure from Hypothesis."""

    data: st.DataObject
    dtype: np.dtype
    rng: np.random.Generator = field(init=False)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.data.draw(st.integers(0, 2**32 - 1), label="seed"))

    def dim(self, lo: int = 1, hi: int = 100, zero: bool = False) -> int:
        small = st.integers(lo, min(hi, 9))
        odd = st.integers(max(lo, 10), hi) if hi >= 10 else small
        choices = [small, small, odd] + ([st.just(0)] if zero else [])
        return self.data.draw(st.one_of(*choices))

    def flag(self, p: float = 0.5) -> bool:
        return self.data.draw(st.integers(0, 999)) < p * 1000

    def array(
        self, shape: tuple[int, ...], scale: float = 2.0, special: bool = True, extreme: bool = False
    ) -> np.ndarray:
        """Values ~ scale * N(0, 1) in the case's dtype, maybe with NaN/Inf (and +-1e30) injected,
        maybe as a non-contiguous view."""
        x = np.asarray(self.rng.standard_normal(shape) * scale)
        if x.size and special and self.flag(0.25):
            k = max(1, x.size // 20)
            idx = self.rng.integers(0, x.size, k)
            x.flat[idx] = self.rng.choice([np.nan, np.inf, -np.inf], k)
        if x.size and extreme and self.flag(0.3):
            k = max(1, x.size // 10)
            x.flat[self.rng.integers(0, x.size, k)] = self.rng.choice([1e30, -1e30, -np.inf], k)
        if self.dtype in (F16, BF16):
            x = np.where(np.isfinite(x), np.clip(x, -1e4, 1e4), x)
        x = np.asarray(x.astype(self.dtype))
        if x.ndim and x.size and self.flag(0.3):
            # same values, non-contiguous: every other element of a wider array
            wide = np.zeros((*shape[:-1], 2 * shape[-1]), self.dtype)
            wide[..., ::2] = x
            x = wide[..., ::2]
        return x

    def positive(self, shape: tuple[int, ...]) -> np.ndarray:
        return (self.rng.random(shape) + 0.5).astype(self.dtype)


# -- the table ------------------------------------------------------------------------------


@dataclass
class OpCase:
    """One row of the op table."""

    op: str
    label: str
    draw: Callable[[Gen], Args]
    bound: Callable[[Args, np.dtype], Any]
    dtypes: tuple[np.dtype, ...] = ALL_DTYPES
    torch: Callable[[Args], Any] | None = None
    large: Callable[[Gen], Args] | None = None

    def call(self, backend: Any, args: Args) -> np.ndarray:
        return getattr(backend, self.op)(**args)


def f64(a: Any) -> Any:
    return a.astype(np.float64) if isinstance(a, np.ndarray) else a


def absmax(a: np.ndarray | None) -> float:
    if a is None or a.size == 0:
        return 0.0
    a = np.abs(f64(a))
    return float(a[np.isfinite(a)].max(initial=0.0))


def t64(a: np.ndarray | None) -> Any:
    return None if a is None else torch.from_numpy(np.array(f64(a), order="C"))  # keeps 0-d arrays 0-d


def padding_of(g: Gen, kernel: tuple[int, int]) -> tuple[tuple[int, int], tuple[int, int]]:
    pads = [g.data.draw(st.integers(0, k)) if g.flag(0.6) else 0 for k in (kernel[0], kernel[0], kernel[1], kernel[1])]
    return ((pads[0], pads[1]), (pads[2], pads[3]))


# matmul
def draw_matmul(g: Gen) -> Args:
    m, k, n = g.dim(zero=True), g.dim(zero=True), g.dim()
    batch = (g.dim(1, 3),) if g.flag(0.3) else ()
    return {"a": g.array((*batch, m, k)), "b": g.array((k, n))}


def bound_matmul(a: Args, dt: np.dtype) -> Any:
    k = a["a"].shape[-1]
    return (k + 2) * eps(dt) * (np.abs(f64(a["a"])) @ np.abs(f64(a["b"]))) + 1e-300


# conv2d
def draw_conv(g: Gen) -> Args:
    groups = g.data.draw(st.sampled_from([1, 1, 2, 3]))
    cin, cout = groups * g.dim(1, 5), groups * g.dim(1, 5)
    kernel = (g.dim(1, 3), g.dim(1, 3))
    x = g.array((g.dim(0, 3, zero=True), g.dim(1, 12), g.dim(1, 12), cin))
    w = g.array((*kernel, cin // groups, cout), scale=0.5)
    stride = (g.dim(1, 3), g.dim(1, 3))
    dilation = (g.dim(1, 2), g.dim(1, 2))
    bias = g.array((cout,)) if g.flag() else None
    return {"x": x, "w": w, "bias": bias, "stride": stride, "padding": padding_of(g, kernel), "dilation": dilation,
            "groups": groups}  # fmt: skip


def bound_conv(a: Args, dt: np.dtype) -> Any:
    absargs = {**a, "x": np.abs(f64(a["x"])), "w": np.abs(f64(a["w"])), "bias": None}
    taps = a["w"].shape[0] * a["w"].shape[1] * a["w"].shape[2]
    with np.errstate(invalid="ignore"):
        mag = REF.conv2d(**absargs) + (0 if a["bias"] is None else np.abs(f64(a["bias"])))
    return (taps + 3) * eps(dt) * mag + 1e-300


def torch_conv(a: Args) -> Any:
    (pt, pb), (pl, pr) = a["padding"]
    (kh, kw), (dh, dw) = a["w"].shape[:2], a["dilation"]
    _, h, wd, _ = a["x"].shape
    if h + pt + pb < dh * (kh - 1) + 1 or wd + pl + pr < dw * (kw - 1) + 1 or a["x"].shape[0] == 0:
        return None  # PyTorch refuses empty outputs
    x = F.pad(t64(a["x"]).permute(0, 3, 1, 2), (pl, pr, pt, pb))
    w = t64(a["w"]).permute(3, 2, 0, 1)
    y = F.conv2d(x, w, t64(a["bias"]), a["stride"], 0, a["dilation"], a["groups"])
    return y.permute(0, 2, 3, 1)


# batchnorm
def draw_bn(g: Gen) -> Args:
    c = g.dim()
    lead = tuple(g.dim(1, 6, zero=True) for _ in range(g.data.draw(st.integers(0, 3))))
    return {"x": g.array((*lead, c)), "mean": g.array((c,), special=False), "var": g.positive((c,)),
            "gamma": g.array((c,), special=False) if g.flag() else None,
            "beta": g.array((c,), special=False) if g.flag() else None, "eps": 1e-5}  # fmt: skip


def bound_bn(a: Args, dt: np.dtype) -> Any:
    x, m, v = f64(a["x"]), f64(a["mean"]), f64(a["var"])
    gm = 1.0 if a["gamma"] is None else np.abs(f64(a["gamma"]))
    b = 0.0 if a["beta"] is None else np.abs(f64(a["beta"]))
    return 8 * eps(dt) * ((np.abs(x) + np.abs(m)) / np.sqrt(v + a["eps"]) * gm + b) + 1e-300


def torch_bn(a: Args) -> Any:
    x = t64(a["x"])
    x2 = x.reshape(-1, x.shape[-1])
    y = F.batch_norm(x2, t64(a["mean"]), t64(a["var"]), t64(a["gamma"]), t64(a["beta"]), False, 0.0, a["eps"])
    return y.reshape(x.shape)


# layernorm / rmsnorm
def draw_ln(g: Gen, rms: bool = False) -> Args:
    nd = g.data.draw(st.integers(1, 3))
    shape = tuple(g.dim(1, 40 if nd > 1 else 100) for _ in range(nd))
    if g.flag(0.2):
        shape = (0, *shape[1:])
    n_axes = g.data.draw(st.integers(1, nd))
    norm = shape[nd - n_axes :]
    args: Args = {"x": g.array(shape), "gamma": g.array(norm, special=False) if g.flag() else None,
                  "eps": 1e-5, "n_axes": n_axes}  # fmt: skip
    if not rms:
        args["beta"] = g.array(norm, special=False) if g.flag() else None
    return args


def bound_ln(a: Args, dt: np.dtype) -> Any:
    x = f64(a["x"])
    k = a["n_axes"]
    axes = tuple(range(x.ndim - k, x.ndim))
    n = math.prod(x.shape[x.ndim - k :])
    with np.errstate(invalid="ignore", over="ignore"):
        mu = x.mean(axis=axes, keepdims=True)
        rstd = 1 / np.sqrt(((x - mu) ** 2).mean(axis=axes, keepdims=True) + a["eps"])
        mag = (np.abs(x - mu) + np.abs(x).max(axis=axes, keepdims=True, initial=0)) * rstd
    gm = 1.0 if a["gamma"] is None else np.abs(f64(a["gamma"]))
    b = 0.0 if a.get("beta") is None else np.abs(f64(a["beta"]))
    return 4 * (n + 4) * eps(dt) * mag * gm + 4 * eps(dt) * b + 1e-300


def torch_ln(a: Args) -> Any:
    x = t64(a["x"])
    shape = x.shape[x.ndim - a["n_axes"] :]
    g = None if a["gamma"] is None else torch.broadcast_to(t64(a["gamma"]), shape)
    b = None if a["beta"] is None else torch.broadcast_to(t64(a["beta"]), shape)
    return F.layer_norm(x, shape, g, b, a["eps"])


def bound_rms(a: Args, dt: np.dtype) -> Any:
    x = f64(a["x"])
    n = math.prod(x.shape[x.ndim - a["n_axes"] :])
    with np.errstate(invalid="ignore", over="ignore"):
        y = np.abs(REF.rmsnorm(x, None if a["gamma"] is None else f64(a["gamma"]), a["eps"], a["n_axes"]))
    return 4 * (n + 4) * eps(dt) * y + 1e-300


def torch_rms(a: Args) -> Any:
    x = t64(a["x"])
    shape = x.shape[x.ndim - a["n_axes"] :]
    g = None if a["gamma"] is None else torch.broadcast_to(t64(a["gamma"]), shape)
    return F.rms_norm(x, shape, g, a["eps"])


# pooling
def draw_pool(g: Gen, kind: str) -> Args:
    kernel = (g.dim(1, 4), g.dim(1, 4))
    c = g.dim(1, 70)
    x = g.array((g.dim(0, 3, zero=True), g.dim(1, 20), g.dim(1, 20), c), extreme=kind == "max")
    stride = (g.dim(1, 3), g.dim(1, 3))
    args: Args = {"x": x, "kernel": kernel, "stride": stride, "padding": padding_of(g, kernel)}
    if kind == "max":
        args["dilation"] = (g.dim(1, 3), g.dim(1, 3))
    else:
        args["count_include_pad"] = g.flag()
    return args


def bound_avg(a: Args, dt: np.dtype) -> Any:
    taps = a["kernel"][0] * a["kernel"][1]
    with np.errstate(invalid="ignore"):
        mag = REF.avg_pool2d(np.abs(f64(a["x"])), a["kernel"], a["stride"], a["padding"], True)
    return (taps + 3) * eps(dt) * mag * taps + 1e-300


def _geom(a: Args) -> tuple[Any, ...]:
    return a["kernel"], a["stride"], a["padding"], a.get("dilation", (1, 1))


def torch_max(a: Args) -> Any:
    (pt, pb), (pl, pr) = a["padding"]
    x = F.pad(t64(a["x"]).permute(0, 3, 1, 2), (pl, pr, pt, pb), value=-math.inf)
    if x.shape[0] * x.shape[1] == 0 or REF.max_pool2d(a["x"][:1, :, :, :1], *_geom(a)).size == 0:
        return None  # PyTorch refuses empty outputs
    return F.max_pool2d(x, a["kernel"], a["stride"], 0, a["dilation"]).permute(0, 2, 3, 1)


def torch_avg(a: Args) -> Any:
    (pt, pb), (pl, pr) = a["padding"]
    x = t64(a["x"]).permute(0, 3, 1, 2)
    if x.shape[0] * x.shape[1] == 0 or REF.max_pool2d(a["x"][:1, :, :, :1], *_geom(a)).size == 0:
        return None  # PyTorch refuses empty outputs
    if a["count_include_pad"]:
        return F.avg_pool2d(F.pad(x, (pl, pr, pt, pb)), a["kernel"], a["stride"], 0).permute(0, 2, 3, 1)
    if pt != pb or pl != pr or 2 * pt > a["kernel"][0] or 2 * pl > a["kernel"][1]:
        return None  # PyTorch pads symmetrically only
    y = F.avg_pool2d(x, a["kernel"], a["stride"], (pt, pl), count_include_pad=False)
    return y.permute(0, 2, 3, 1)


def draw_gap(g: Gen) -> Args:
    return {"x": g.array((g.dim(0, 4, zero=True), g.dim(1, 30), g.dim(1, 30), g.dim(1, 100)))}


def bound_gap(a: Args, dt: np.dtype) -> Any:
    x = np.abs(f64(a["x"]))
    hw = x.shape[1] * x.shape[2]
    with np.errstate(invalid="ignore"):
        return (hw + 3) * eps(dt) * x.mean(axis=(1, 2)) + 1e-300


# softmax
def draw_softmax(g: Gen) -> Args:
    nd = g.data.draw(st.integers(1, 3))
    shape = tuple(g.dim(1, 100 if nd == 1 else 30, zero=nd > 1) for _ in range(nd))
    x = g.array(shape, scale=g.data.draw(st.sampled_from([1.0, 10.0, 100.0])), extreme=True)
    if x.ndim >= 1 and x.size and g.flag(0.1):
        x = x.copy()
        x[..., 0] = -np.inf  # a row of -inf where the last axis has length 1; else partial -inf
    return {"x": x, "axis": g.data.draw(st.integers(-nd, nd - 1))}


def bound_softmax(a: Args, dt: np.dtype) -> Any:
    x = f64(a["x"])
    n = x.shape[a["axis"]]
    with np.errstate(invalid="ignore"):
        y = REF.softmax(x, a["axis"])
        mx = np.abs(np.where(np.isfinite(x), x, 0)).max(axis=a["axis"], keepdims=True, initial=0)
    return 8 * eps(dt) * np.abs(y) * (n + 4 + 2 * mx) + 1e-300


def bound_log_softmax(a: Args, dt: np.dtype) -> Any:
    x = f64(a["x"])
    n = x.shape[a["axis"]]
    fin = np.where(np.isfinite(x), x, 0)
    mx = np.abs(fin).max(axis=a["axis"], keepdims=True, initial=0)
    return 8 * eps(dt) * (np.abs(fin) + mx + n + 4) + 1e-300


# activations
def draw_act(name: str) -> Callable[[Gen], Args]:
    def draw(g: Gen) -> Args:
        shape = tuple(g.dim(zero=True) for _ in range(g.data.draw(st.integers(0, 3))))
        x = g.array(shape, scale=g.data.draw(st.sampled_from([0.1, 3.0, 30.0])))
        alpha = g.data.draw(st.sampled_from([0.0, 0.01, 0.5, 1.7]))
        return {"x": x, "name": name, "alpha": alpha}

    return draw


def bound_act(a: Args, dt: np.dtype) -> Any:
    x = np.abs(f64(a["x"]))
    with np.errstate(invalid="ignore", over="ignore"):
        y = np.abs(REF.activation(f64(a["x"]), a["name"], a["alpha"]))
    # |y| for the usual relative error, |x| for the cancellation in 1 + erf / 1 + tanh / x + 3
    return 8 * eps(dt) * (y + x * (1 + a["alpha"])) + 1e-30


_TORCH_ACT: dict[str, Callable[[Any, float], Any]] = {
    "identity": lambda x, a: x,
    "relu": lambda x, a: F.relu(x),
    "leaky_relu": lambda x, a: F.leaky_relu(x, a),
    "elu": lambda x, a: F.elu(x, a),
    "selu": lambda x, a: F.selu(x),
    "gelu": lambda x, a: F.gelu(x),
    "gelu_tanh": lambda x, a: F.gelu(x, approximate="tanh"),
    "sigmoid": lambda x, a: torch.sigmoid(x),
    "tanh": lambda x, a: torch.tanh(x),
    "softplus": lambda x, a: F.softplus(x, threshold=1000.0),
    "softsign": lambda x, a: F.softsign(x),
    "silu": lambda x, a: F.silu(x),
    "mish": lambda x, a: F.mish(x),
    "hardswish": lambda x, a: F.hardswish(x),
    "hardsigmoid": lambda x, a: F.hardsigmoid(x),
    "relu6": lambda x, a: F.relu6(x),
}


# attention
def draw_attention(g: Gen) -> Args:
    b, h = g.dim(1, 2, zero=True), g.dim(1, 3)
    lq, lk = g.dim(1, 150), g.dim(1, 150)
    d, dv = g.dim(1, 70), g.dim(1, 70)
    q, k, v = g.array((b, h, lq, d), special=False), g.array((b, h, lk, d), special=False), g.array((b, h, lk, dv))
    if q.size and g.flag(0.15):
        q = q.copy()
        q.flat[g.rng.integers(0, q.size)] = np.nan
    mask = None
    if g.flag(0.4):
        shape = g.data.draw(st.sampled_from([(lq, lk), (b, 1, 1, lk), (1, h, lq, lk), (b, h, lq, lk), (lk,)]))
        mask = g.array(shape, special=False)
        if g.flag(0.3):
            mask = np.where(g.rng.random(shape) < 0.3, -np.inf, mask).astype(g.dtype)
    causal = g.flag()
    return {"q": q, "k": k, "v": v, "causal": causal, "scale": 1 / math.sqrt(d), "mask": mask}


def bound_attention(a: Args, dt: np.dtype) -> Any:
    d, lk = a["q"].shape[-1], a["k"].shape[-2]
    score = (d + 2) * a["scale"] * absmax(a["q"]) * absmax(a["k"]) + absmax(a["mask"])
    return 8 * eps(dt) * (score + lk + 4) * absmax(a["v"]) + 1e-300


def torch_attention(a: Args) -> Any:
    q, k, v = t64(a["q"]), t64(a["k"]), t64(a["v"])
    lq, lk = q.shape[-2], k.shape[-2]
    m = torch.zeros(lq, lk, dtype=torch.float64)
    if a["mask"] is not None:
        m = m + t64(a["mask"])
    if a["causal"]:
        hidden = torch.ones(lq, lk, dtype=torch.bool).triu(1 + lk - lq)
        m = m.masked_fill(hidden, -math.inf)
    if q.shape[0] == 0:
        return None
    return F.scaled_dot_product_attention(q, k, v, attn_mask=m, scale=a["scale"])


# rope
def draw_rope(g: Gen) -> Args:
    seq, d = g.dim(1, 60), g.dim(1, 70)
    lead = tuple(g.dim(1, 3, zero=True) for _ in range(g.data.draw(st.integers(0, 2))))
    pos = np.arange(seq, dtype=np.float64) * g.data.draw(st.sampled_from([1.0, 0.5, 1000.0]))
    if g.flag(0.2):
        pos = g.rng.integers(-50, 10**6, seq).astype(np.int64)
    return {"x": g.array((*lead, seq, d)), "positions": pos, "base": g.data.draw(st.sampled_from([10000.0, 100.0]))}


def bound_rope(a: Args, dt: np.dtype) -> Any:
    x = np.abs(f64(a["x"]))
    row = np.where(np.isfinite(x), x, 0).max(axis=-1, keepdims=True, initial=0)
    # angles positions * base ** (-2i/d) may differ by an ulp of float64 (libm vs NumPy pow)
    pos = np.abs(np.asarray(a["positions"], np.float64))[:, None]
    return 8 * (eps(dt) + pos * eps(F64)) * row + 1e-300


TABLE: list[OpCase] = [
    OpCase("matmul", "matmul", draw_matmul, bound_matmul, (F32, F64),
           torch=lambda a: torch.matmul(t64(a["a"]), t64(a["b"])),
           large=lambda g: {"a": g.array((37, 1003)), "b": g.array((1003, 29))}),
    OpCase("conv2d", "conv2d", draw_conv, bound_conv, (F32, F64), torch=torch_conv),
    OpCase("batchnorm", "batchnorm", draw_bn, bound_bn, torch=torch_bn,
           large=lambda g: {"x": g.array((1100, 13)), "mean": g.array((13,)), "var": g.positive((13,)),
                            "gamma": g.array((13,)), "beta": None, "eps": 1e-3}),
    OpCase("layernorm", "layernorm", draw_ln, bound_ln, torch=torch_ln,
           large=lambda g: {"x": g.array((1200, 1001)), "gamma": g.array((1001,)), "beta": g.array((1001,)),
                            "eps": 1e-5, "n_axes": 1}),
    OpCase("rmsnorm", "rmsnorm", lambda g: draw_ln(g, rms=True), bound_rms, torch=torch_rms,
           large=lambda g: {"x": g.array((3, 1500)), "gamma": None, "eps": 1e-6, "n_axes": 1}),
    OpCase("max_pool2d", "max_pool2d", lambda g: draw_pool(g, "max"), lambda a, dt: 0.0, torch=torch_max,
           large=lambda g: {"x": g.array((2, 1001, 9, 64)), "kernel": (3, 3), "stride": (2, 1),
                            "padding": ((1, 1), (0, 2)), "dilation": (1, 2)}),
    OpCase("avg_pool2d", "avg_pool2d", lambda g: draw_pool(g, "avg"), bound_avg, torch=torch_avg),
    OpCase("global_avg_pool", "global_avg_pool", draw_gap, bound_gap,
           torch=lambda a: t64(a["x"]).mean((1, 2)),
           large=lambda g: {"x": g.array((3, 1024, 33, 41))}),
    OpCase("softmax", "softmax", draw_softmax, bound_softmax, torch=lambda a: torch.softmax(t64(a["x"]), a["axis"]),
           large=lambda g: {"x": g.array((1100, 1003), scale=10.0), "axis": -1}),
    OpCase("log_softmax", "log_softmax", draw_softmax, bound_log_softmax,
           torch=lambda a: torch.log_softmax(t64(a["x"]), a["axis"]),
           large=lambda g: {"x": g.array((7, 1001, 150)), "axis": 1}),
    *[
        OpCase("activation", f"activation[{name}]", draw_act(name), bound_act,
               torch=lambda a: _TORCH_ACT[a["name"]](t64(a["x"]), a["alpha"]),
               large=(lambda g, name=name: {"x": g.array((1024 * 1024 + 5,)), "name": name, "alpha": 0.1})
               if name in ("relu", "sigmoid", "silu") else None)
        for name in ACTIVATIONS
    ],
    OpCase("attention", "attention", draw_attention, bound_attention, torch=torch_attention,
           large=lambda g: {"q": g.array((1, 2, 1030, 40)), "k": g.array((1, 2, 1100, 40)),
                            "v": g.array((1, 2, 1100, 24)), "causal": True, "scale": 0.15, "mask": None}),
    OpCase("rope", "rope", draw_rope, bound_rope,
           large=lambda g: {"x": g.array((2, 1100, 64)), "positions": np.arange(1100), "base": 10000.0}),
]  # fmt: skip

CASES = {case.label: case for case in TABLE}


def test_table_covers_the_contract() -> None:
    assert {case.op for case in TABLE} == set(OPS)
    assert {case.label for case in TABLE if case.op == "activation"} == {f"activation[{n}]" for n in ACTIVATIONS}
    assert set(C_NN_OPS) <= set(OPS)


# -- running and comparing -----------------------------------------------------------------


def oracle(case: OpCase, args: Args) -> np.ndarray:
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return case.call(REF, {k: f64(v) for k, v in args.items()})


def assert_close(got: np.ndarray, want: np.ndarray, bound: Any, dtype: np.dtype, what: str) -> None:
    """NaN where the oracle is NaN, the same inf where it is inf, within ``bound`` elsewhere."""
    assert got.shape == want.shape, f"{what}: shape {got.shape}, expected {want.shape}"
    assert got.dtype == dtype, f"{what}: dtype {got.dtype}, expected {dtype}"
    g = got.astype(np.float64)
    with np.errstate(over="ignore"):
        w = want.astype(dtype).astype(np.float64)  # the oracle rounded to the output dtype
    # plus the rounding of the oracle to the dtype, and 16 smallest normals: results in the
    # subnormal range may flush to zero or lose bits
    tiny = 16 * float(ml_dtypes.finfo(dtype).tiny)
    bound = np.broadcast_to(np.asarray(bound, np.float64), w.shape) + np.abs(w - want) + tiny
    nan = np.isnan(w)
    bad = nan != np.isnan(g)
    inf = np.isinf(w)
    bad |= inf & (g != w)
    fin = ~nan & ~inf
    with np.errstate(invalid="ignore"):
        bad |= fin & ~(np.abs(g - w) <= bound)
    if bad.any():
        i = tuple(int(j) for j in np.argwhere(bad)[0])
        pytest.fail(
            f"{what}: {int(bad.sum())} of {bad.size} elements differ; first at {i}: got {g[i]!r}, "
            f"expected {w[i]!r} (exact {want[i]!r}), allowed error {bound[i]:.3g}"
        )


#: the native backends: every op must run natively on each (no fallback recorded)
NATIVE = ("c", "rust", "zig")
BACKEND_NAMES = ["numpy", *NATIVE]
#: the GPU backends: every op must run on the device too (gpu_libs decides skip or fail)
GPU = tuple(gpu_backends())
#: Hypothesis examples per op on a GPU backend. Measured on 2 cores with PoCL: the OpenCL part of
#: this file takes ~28 s with a cold PoCL kernel cache (~15 s of it compiling the programs once)
#: and ~8 s warm for this test, against ~7 s for the C backend's: as many examples as the CPU
#: backends; lower it here if CI time grows
GPU_EXAMPLES = EXAMPLES
_BACKENDS: dict[str, Any] = {}


def backend(name: str) -> Any:
    """The test's instance of backend ``name`` (its own ``fallbacks``); skips / fails if not built."""
    if name in GPU:
        if name not in _BACKENDS:
            _BACKENDS[name] = gpu_backend(name)  # skips / fails (AXIOM_REQUIRE_NATIVE / _CUDA) itself
        return _BACKENDS[name]
    if name not in _BACKENDS:
        try:
            be = get_backend(name)
            _BACKENDS[name] = type(be)() if name != "numpy" else be  # a fresh instance: its own fallbacks
        except (ImportError, OSError) as e:
            _BACKENDS[name] = e
    be = _BACKENDS[name]
    if isinstance(be, Exception):
        if REQUIRE_NATIVE:
            pytest.fail(f"the {name} backend is not available (AXIOM_REQUIRE_NATIVE=1): {be}")
        pytest.skip(f"the {name} backend is not available: {be}")
    return be


def run_case(name: str, case: OpCase, args: Args, dtype: np.dtype) -> None:
    be = backend(name)
    try:
        want = oracle(case, args)
    except ValueError:
        # the reference refuses some empty reductions (softmax over a length-0 axis): a backend
        # may refuse too, or return an empty result
        try:
            got = case.call(be, args)
        except ValueError:
            return
        assert got.size == 0, f"{name}: {case.label}: the reference refuses these arguments, got {got.shape}"
        return
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("error", FallbackWarning)
        got = case.call(be, args)
    if name in NATIVE or name in GPU:
        assert case.op not in be.fallbacks, f"{name} backend: {case.op} fell back: {be.fallbacks}"
    assert_close(got, want, case.bound(args, dtype), dtype, f"{name}: {case.label} ({dtype})")


def native_or_skip(name: str, case: OpCase) -> None:
    be = backend(name)
    if case.op not in be.implemented_ops():
        assert name not in NATIVE and name not in GPU, f"the {name} backend must implement {case.op} natively"
        pytest.skip(f"backend {name!r} does not implement {case.op}")


def test_native_backends_implement_the_whole_contract() -> None:
    for name in (*NATIVE, *GPU):
        try:
            be = backend(name)
        except pytest.skip.Exception:
            continue
        assert set(be.implemented_ops()) == set(OPS), name


@pytest.mark.parametrize("name", BACKEND_NAMES)
@pytest.mark.parametrize("label", list(CASES))
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
@given(data=st.data())
def test_op_matches_reference(name: str, label: str, data: st.DataObject) -> None:
    case = CASES[label]
    native_or_skip(name, case)
    dtype = data.draw(st.sampled_from(case.dtypes), label="dtype")
    run_case(name, case, case.draw(Gen(data, dtype)), dtype)


@pytest.mark.parametrize("name", GPU)
@pytest.mark.parametrize("label", list(CASES))
@settings(max_examples=GPU_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
@given(data=st.data())
def test_gpu_op_matches_reference(name: str, label: str, data: st.DataObject) -> None:
    """The table on the GPU backends: every op on the device, no fallback (GPU_EXAMPLES examples per op)."""
    case = CASES[label]
    native_or_skip(name, case)
    dtype = data.draw(st.sampled_from(case.dtypes), label="dtype")
    run_case(name, case, case.draw(Gen(data, dtype)), dtype)


@pytest.mark.parametrize("name", [n for n in BACKEND_NAMES if n != "numpy"] + list(GPU))
@pytest.mark.parametrize("label", [label for label, case in CASES.items() if case.large is not None])
@settings(max_examples=2, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
@given(data=st.data())
def test_op_large(name: str, label: str, data: st.DataObject) -> None:
    case = CASES[label]
    native_or_skip(name, case)
    dtype = data.draw(st.sampled_from((F32, F64)), label="dtype")
    run_case(name, case, case.large(Gen(data, dtype)), dtype)  # type: ignore[misc]


@pytest.mark.parametrize("label", [label for label, case in CASES.items() if case.torch is not None])
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
@given(data=st.data())
def test_c_backend_matches_torch(label: str, data: st.DataObject) -> None:
    """The C backend against PyTorch in float64, on finite inputs (NaN conventions differ at times)."""
    backend("c")  # skip / fail when not built
    case = CASES[label]
    dtype = data.draw(st.sampled_from((F32, F64)), label="dtype")
    args = case.draw(Gen(data, dtype))
    arrays = [v for v in args.values() if isinstance(v, np.ndarray)]
    if any(not np.isfinite(f64(v)).all() or v.size == 0 for v in arrays):
        return
    with np.errstate(all="ignore"):
        want = case.torch(args)  # type: ignore[misc]
    if want is None:
        return
    want = want.numpy()
    got = case.call(backend("c"), args)
    if case.op == "attention":
        # a query without a visible key: NaN in the reference and here, 0 in PyTorch ("safe softmax")
        keep = ~np.isnan(oracle(case, args))
        got, want = np.where(keep, got, 0).astype(got.dtype), np.where(keep, want, 0)
    assert_close(got, want, case.bound(args, dtype), dtype, f"c vs torch: {case.label} ({dtype})")


# -- the raw ABI of the NN kernels ----------------------------------------------------------


@dataclass
class AbiCase:
    """A valid call of one NN kernel and what each argument may not be."""

    args: Callable[[np.dtype], list[Any]]  # a valid call, in C order
    outputs: tuple[int, ...]  # indices of output arrays (must stay untouched on errors)
    optional: tuple[int, ...] = ()  # pointer arguments that may be NULL
    sizes: tuple[int, ...] = ()  # int64 arguments that must reject -1
    overflow: tuple[int, ...] = ()  # int64 arguments that must reject 2**62
    flags: dict[int, int] = field(default_factory=dict)  # int arguments and a bad value


def _a(dt: np.dtype, *shape: int) -> np.ndarray:
    return np.arange(1, math.prod(shape) + 1, dtype=dt).reshape(shape) / 7


def _pool_args(dt: np.dtype, backward: bool, avg: bool) -> list[Any]:
    x, y = _a(dt, 2, 5, 6, 3), np.zeros((2, 3, 3, 3), dt)
    geom = [2, 5, 6, 3, 2, 2, 2, 2, 1, 0, 0, 1]
    tail = [1] if avg else [1, 1]
    if avg:
        return [y + 1, np.zeros_like(x), *geom, *tail] if backward else [x, y, *geom, *tail]
    return [x, y + 1, np.zeros_like(x), *geom, *tail] if backward else [x, y, *geom, *tail]


ABI_CASES: dict[str, AbiCase] = {
    "batchnorm": AbiCase(lambda dt: [_a(dt, 4, 3), _a(dt, 3), _a(dt, 3), _a(dt, 3), _a(dt, 3), np.zeros((4, 3), dt),
                                     4, 3, 1e-5], (5,), optional=(3, 4), sizes=(6, 7), overflow=(6, 7)),
    "layernorm": AbiCase(lambda dt: [_a(dt, 4, 3), _a(dt, 3), _a(dt, 3), np.zeros((4, 3), dt), 4, 3, 1e-5], (3,),
                         optional=(1, 2), sizes=(4, 5), overflow=(4, 5)),
    "rmsnorm": AbiCase(lambda dt: [_a(dt, 4, 3), _a(dt, 3), np.zeros((4, 3), dt), 4, 3, 1e-5], (2,),
                       optional=(1,), sizes=(3, 4), overflow=(3, 4)),
    "batchnorm_backward": AbiCase(lambda dt: [_a(dt, 4, 3), _a(dt, 4, 3), _a(dt, 3), _a(dt, 3), _a(dt, 3),
                                              np.zeros((4, 3), dt), np.zeros(3, dt), np.zeros(3, dt), 4, 3, 1e-5],
                                  (5, 6, 7), optional=(4, 6, 7), sizes=(8, 9), overflow=(8, 9)),
    "layernorm_backward": AbiCase(lambda dt: [_a(dt, 4, 3), _a(dt, 4, 3), _a(dt, 3), np.zeros((4, 3), dt),
                                              np.zeros(3, dt), np.zeros(3, dt), 4, 3, 1e-5],
                                  (3, 4, 5), optional=(2, 4, 5), sizes=(6, 7), overflow=(6, 7)),
    "rmsnorm_backward": AbiCase(lambda dt: [_a(dt, 4, 3), _a(dt, 4, 3), _a(dt, 3), np.zeros((4, 3), dt),
                                            np.zeros(3, dt), 4, 3, 1e-5],
                                (3, 4), optional=(2, 4), sizes=(5, 6), overflow=(5, 6)),
    "max_pool2d": AbiCase(lambda dt: _pool_args(dt, False, False), (1,), sizes=tuple(range(2, 16)),
                          overflow=(2, 3, 4, 5)),
    "avg_pool2d": AbiCase(lambda dt: _pool_args(dt, False, True), (1,), sizes=tuple(range(2, 14)),
                          overflow=(2, 3, 4, 5), flags={14: 2}),
    "global_avg_pool": AbiCase(lambda dt: [_a(dt, 2, 5, 3), np.zeros((2, 3), dt), 2, 5, 3], (1,), sizes=(2, 3, 4),
                               overflow=(2, 3, 4)),
    "max_pool2d_backward": AbiCase(lambda dt: _pool_args(dt, True, False), (2,), sizes=tuple(range(3, 17)),
                                   overflow=(3, 4, 5, 6)),
    "avg_pool2d_backward": AbiCase(lambda dt: _pool_args(dt, True, True), (1,), sizes=tuple(range(2, 14)),
                                   overflow=(2, 3, 4, 5), flags={14: -1}),
    "softmax": AbiCase(lambda dt: [_a(dt, 2, 3, 4), np.zeros((2, 3, 4), dt), 2, 3, 4, 0], (1,), sizes=(2, 3, 4),
                       overflow=(2, 3, 4), flags={5: 2}),
    "softmax_backward": AbiCase(lambda dt: [_a(dt, 2, 3, 4), _a(dt, 2, 3, 4), np.zeros((2, 3, 4), dt), 2, 3, 4, 1],
                                (2,), sizes=(3, 4, 5), overflow=(3, 4, 5), flags={6: -1}),
    "activation": AbiCase(lambda dt: [_a(dt, 7), np.zeros(7, dt), 7, ACTIVATION_CODES["gelu"], 0.1], (1,), sizes=(2,),
                          overflow=(2,), flags={3: len(ACTIVATIONS)}),
    "activation_backward": AbiCase(lambda dt: [_a(dt, 7), _a(dt, 7), np.zeros(7, dt), 7, ACTIVATION_CODES["mish"],
                                               0.1], (2,), sizes=(3,), overflow=(3,), flags={4: len(ACTIVATIONS)}),
    "attention": AbiCase(lambda dt: [_a(dt, 1, 2, 3, 4), _a(dt, 1, 2, 5, 4), _a(dt, 1, 2, 5, 6), _a(dt, 3, 5),
                                     np.zeros((1, 2, 3, 6), dt), 1, 2, 3, 5, 4, 6, 0.5, 1, 0, 0, 5, 1],
                         (4,), optional=(3,), sizes=(5, 6, 7, 8, 9, 10, 13, 14, 15, 16), overflow=(5, 6, 7, 8, 9, 10),
                         flags={12: 2}),
    "attention_backward": AbiCase(lambda dt: [_a(dt, 1, 2, 3, 6), _a(dt, 1, 2, 3, 4), _a(dt, 1, 2, 5, 4),
                                              _a(dt, 1, 2, 5, 6), _a(dt, 3, 5), np.zeros((1, 2, 3, 4), dt),
                                              np.zeros((1, 2, 5, 4), dt), np.zeros((1, 2, 5, 6), dt), 1, 2, 3, 5, 4, 6,
                                              0.5, 1, 0, 0, 5, 1],
                                  (5, 6, 7), optional=(4,), sizes=(8, 9, 10, 11, 12, 13, 16, 17, 18, 19),
                                  overflow=(8, 9, 10, 11, 12, 13), flags={15: 2}),
    "rope": AbiCase(lambda dt: [_a(dt, 2, 3, 5), np.arange(3.0), np.zeros((2, 3, 5), dt), 2, 3, 5, 10000.0], (2,),
                    sizes=(3, 4, 5), overflow=(3, 4, 5)),
}  # fmt: skip


def test_abi_cases_cover_every_nn_kernel() -> None:
    assert set(ABI_CASES) == set(abi.NN_PATTERNS)


@pytest.mark.parametrize("dtype", [F32, F64], ids=["f32", "f64"])
@pytest.mark.parametrize("name", list(ABI_CASES))
def test_nn_kernel_rejects_bad_arguments(kernel_lib: ctypes.CDLL, name: str, dtype: np.dtype) -> None:
    """Wrong sizes, NULL pointers and bad flags give the documented code and write nothing (C, Rust, Zig)."""
    case = ABI_CASES[name]
    symbol = f"axiom_{name}_{'f32' if dtype == F32 else 'f64'}"
    fn = getattr(kernel_lib, symbol)  # load_kernel_library declared its arrays c_void_p: pass addresses
    argtypes = abi.SIGNATURES[symbol][1]

    def call(args: list[Any]) -> int:
        return fn(*[a.ctypes.data if isinstance(a, np.ndarray) else a for a in args])

    def check(args: list[Any], code: int, what: str) -> None:
        sentinel = [a.copy() if isinstance(a, np.ndarray) else None for a in args]
        for i in case.outputs:
            if isinstance(args[i], np.ndarray):
                args[i][...] = 42
                sentinel[i] = args[i].copy()
        got = call(args)
        assert got == code, f"{symbol} with {what}: returned {got}, expected {code}"
        for i in case.outputs:
            if code != abi.OK and isinstance(args[i], np.ndarray):
                np.testing.assert_array_equal(args[i], sentinel[i], err_msg=f"{symbol} with {what} wrote output {i}")

    assert call(case.args(dtype)) == abi.OK, f"{symbol}: the valid call failed"
    pointers = [
        i for i, t in enumerate(argtypes) if t in (ctypes.POINTER(ctypes.c_float), ctypes.POINTER(ctypes.c_double))
    ]
    for i in pointers:
        args = case.args(dtype)
        args[i] = None
        check(args, abi.OK if i in case.optional else abi.ERR_NULL, f"argument {i} NULL")
    for i in case.sizes:
        args = case.args(dtype)
        args[i] = -1
        check(args, abi.ERR_SIZE, f"argument {i} = -1")
    for i in case.overflow:
        for big in (2**62, 2**63 - 1):
            args = case.args(dtype)
            args[i] = big
            check(args, abi.ERR_SIZE, f"argument {i} = {big}")
    for i, bad in case.flags.items():
        args = case.args(dtype)
        args[i] = bad
        check(args, abi.ERR_SIZE, f"flag argument {i} = {bad}")
        args = case.args(dtype)
        for p in pointers:
            args[p] = None
        args[i] = bad
        check(args, abi.ERR_SIZE, f"flag argument {i} = {bad} with NULL pointers (flags are checked first)")
    # all dimensions 0 and NULL everywhere is a valid empty call
    args = case.args(dtype)
    for i in case.overflow:
        args[i] = 0
    for p in pointers:
        args[p] = None
    check(args, abi.OK, "zero dimensions and NULL pointers")


# -- Rust and Zig against C on the raw ABI: small, degenerate and bad arguments ---------------

ARENA = 4096  # elements of every array: sizes stay <= 3 and strides / pads small, so no call can overrun


@pytest.mark.parametrize("library_kind", ["rust", "zig"])
@pytest.mark.parametrize("name", list(ABI_CASES))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
@given(data=st.data())
def test_nn_kernel_agrees_with_c_on_any_small_arguments(
    library_kind: str, get_kernel_lib: Callable[[str], ctypes.CDLL], name: str, data: st.DataObject
) -> None:
    """Random sizes in -1..3, flags and enums in and out of range, NULL or not for every array: the
    library returns C's code, and writes exactly what C writes (every output array is compared
    whole, so a write outside the sizes shows too; nothing at all on an error)."""
    kernel_lib = get_kernel_lib(library_kind)
    dtype = data.draw(st.sampled_from([F32, F64]), label="dtype")
    symbol = f"axiom_{name}_{'f32' if dtype == F32 else 'f64'}"
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    outputs, optional = ABI_CASES[name].outputs, ABI_CASES[name].optional
    valid = data.draw(st.booleans(), label="valid")  # half the calls: sizes >= 0, flags in range, arrays present
    flags = len(ACTIVATIONS) if name.startswith("activation") else 2
    args: list[Any] = []
    for i, ch in enumerate(abi.NN_PATTERNS[name]):
        if ch in "pd":
            null = data.draw(st.integers(0, 9), label=f"null {i}") == 0 and (not valid or i in optional)
            arr = np.full(ARENA, 42.0, dtype) if i in outputs else rng.standard_normal(ARENA).astype(dtype)
            args.append(None if null else arr.astype(np.float64) if ch == "d" else arr)
        elif ch == "i":
            sizes = st.integers(0, 3) if valid else st.integers(-1, 3)
            args.append(data.draw(st.one_of(st.integers(1, 3), sizes), label=f"size {i}"))
        elif ch == "c":
            codes = st.integers(0, flags - 1) if valid else st.integers(-1, flags)
            args.append(data.draw(codes, label=f"flag {i}"))
        else:
            args.append(data.draw(st.sampled_from([1e-5, 0.3, 100.0]), label=f"scalar {i}"))

    def run(lib: ctypes.CDLL) -> tuple[int, list[np.ndarray]]:
        mine = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
        code = getattr(lib, symbol)(*[a.ctypes.data if isinstance(a, np.ndarray) else a for a in mine])
        return code, [mine[i] for i in outputs if isinstance(mine[i], np.ndarray)]

    want_code, want = run(get_kernel_lib("c"))
    got_code, got = run(kernel_lib)
    shown = [a if not isinstance(a, np.ndarray) else "array" for a in args]
    assert got_code == want_code, f"{symbol}{tuple(shown)}: {library_kind} returned {got_code}, C {want_code}"
    tol = dict(rtol=2e-4, atol=2e-5) if dtype == F32 else dict(rtol=1e-9, atol=1e-11)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, **tol, equal_nan=True, err_msg=f"{symbol}{tuple(shown)} ({library_kind})")
