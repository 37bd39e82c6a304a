"""``compile()`` and :class:`CompiledModel`: an optimized private copy of a model bound to a backend.

Example:
    >>> import numpy as np
    >>> from axiom import Sequential, Dense, BatchNorm, Dropout, Softmax, relu
    >>> from axiom.compiler import compile
    >>> model = Sequential(Dense(8, 16), BatchNorm(), Dropout(0.1), Dense(16, 4, relu), Softmax())
    >>> compiled = compile(model, backend="numpy")
    >>> [layer.name for layer in compiled.model]   # BatchNorm folded, Dropout removed, Dense pair merged
    ['Dense', 'Softmax']
    >>> x = np.random.default_rng(0).standard_normal((2, 8)).astype(np.float32)
    >>> compiled(x).shape, compiled.max_error(x) < 1e-5
    ((2, 4), True)
    >>> len(model)                                              # the model itself is untouched
    5
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from axiom.autograd import no_grad
from axiom.backends import KernelBackend, ReferenceBackend, use_backend
from axiom.backends.gpu.errors import DeviceError
from axiom.compiler.backend_choice import choose_backend
from axiom.compiler.coprocessor import Coprocessor
from axiom.compiler.passes import (
    PassResult,
    cast_precision,
    fold_batchnorm,
    fold_constants,
    fuse_activations,
    inline_sequential,
    precision_dtypes,
    remove_dead_layers,
)
from axiom.compiler.passes._graph import leaf_count, tensor_count
from axiom.compiler.passes.base import model_input_shape
from axiom.nn.containers import Sequential
from axiom.nn.layer import Layer
from axiom.shapes import Dim, Shape, ShapeError, format_shape, is_known
from axiom.tensor import Tensor, as_tensor, float32, float64, is_floating

#: The optimization levels ``compile()`` accepts.
OPTIMIZE_LEVELS: tuple[str, ...] = ("none", "default", "aggressive")

GraphPass = Callable[[Layer, Shape], tuple[Layer, PassResult]]

#: Passes of ``optimize="default"``, in order (each runs once).
DEFAULT_PASSES: tuple[GraphPass, ...] = (inline_sequential, remove_dead_layers, fold_batchnorm, fold_constants)
#: Passes of ``optimize="aggressive"``, repeated until a round changes nothing (at most ``MAX_ROUNDS``).
AGGRESSIVE_PASSES: tuple[GraphPass, ...] = (*DEFAULT_PASSES, fuse_activations)
MAX_ROUNDS = 8


def _is_gpu(backend: KernelBackend) -> bool:
    """Whether ``backend`` drives a device (imported lazily: no GPU package is needed otherwise)."""
    from axiom.backends.gpu.backend import GPUBackend

    return isinstance(backend, GPUBackend)


def _check_choice(value: Any, what: str, choices: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"unknown {what} {value!r}; expected one of {', '.join(map(repr, choices))}")
    return value


def _unbuilt_error(model: Layer) -> ValueError:
    lazy = next(
        (layer for layer in model.modules() if not layer.built and all(c.built for c in layer.children())), model
    )
    return ValueError(
        f"compile: {lazy.name} is not built yet (its input size is inferred from the first input); pass "
        "compile(model, input_shape=...) with the model's input shape, e.g. "
        f"{format_shape(lazy.default_input_shape())} with the sizes filled in, or run one batch through the model first"
    )


def optimize_model(model: Layer, input_shape: Shape, optimize: str) -> tuple[Layer, list[PassResult]]:
    """Run the graph passes of ``optimize`` on ``model`` in place; one merged PassResult per pass.

    Example:
        >>> from axiom import Sequential, Dense, ReLU
        >>> model, results = optimize_model(Sequential(Dense(2, 4), ReLU()), ("batch", 2), "aggressive")
        >>> model.layers, [r.name for r in results if r.changed]
        ([Dense(2, 4, relu)], ['fuse_activations'])
    """
    _check_choice(optimize, "optimize level", OPTIMIZE_LEVELS)
    if optimize == "none":
        return model, []
    passes = AGGRESSIVE_PASSES if optimize == "aggressive" else DEFAULT_PASSES
    merged: dict[str, PassResult] = {}
    for _ in range(MAX_ROUNDS if optimize == "aggressive" else 1):
        changed = False
        for graph_pass in passes:
            model, result = graph_pass(model, input_shape)
            merged.setdefault(result.name, PassResult(result.name)).changes.extend(result.changes)
            changed = changed or result.changed
        if not changed:
            break
    return model, list(merged.values())


class CompiledModel:
    """A model compiled for one backend, optimization level and precision (see :func:`compile`).

    Attributes: ``model`` (the optimized axiom model, a private copy), ``backend`` (the
    backend instance this compiled model owns), ``optimize``, ``precision``, ``input_shape``,
    ``passes`` (a :class:`~axiom.compiler.passes.PassResult` per pass run, with its changes),
    ``plan`` (the :class:`~axiom.compiler.device_plan.DevicePlan` on a GPU backend, else None),
    ``weight_dtype`` / ``activation_dtype`` (what ``precision`` stores). Calls run in eval
    mode with ``backend`` active; inputs are cast to ``activation_dtype`` and outputs come back
    as float32 (Tensors). Inputs must have the compiled ``input_shape``: its rank and every
    known size (the passes rely on it); symbolic dims such as ``"batch"`` take any size.

    Example:
        >>> import numpy as np
        >>> from axiom import Sequential, Dense, relu
        >>> compiled = compile(Sequential(Dense(3, 4, relu), Dense(4, 2)), backend="numpy", precision="bfloat16")
        >>> compiled
        CompiledModel(Sequential, backend='numpy', optimize='default', precision='bfloat16')
        >>> y = compiled(np.ones((5, 3), np.float32))
        >>> y.shape, y.dtype.name, compiled.output_shape()
        ((5, 2), 'float32', ('batch', 2))
    """

    def __init__(
        self,
        model: Layer,
        backend: KernelBackend,
        optimize: str = "default",
        precision: str = "float32",
        input_shape: Sequence[Dim | None] | None = None,
    ) -> None:
        _check_choice(optimize, "optimize level", OPTIMIZE_LEVELS)
        self.weight_dtype, self.activation_dtype = precision_dtypes(precision)
        if not isinstance(model, Layer):
            raise TypeError(f"compile: expects an axiom Layer or model, got {type(model).__name__}")
        if not isinstance(backend, KernelBackend):
            raise TypeError(f"compile: backend must be a KernelBackend, got {type(backend).__name__}")
        self.backend = backend
        self.optimize = optimize
        self.precision = precision
        # the reference: the model as given, frozen now (in eval mode, built), never run optimized
        snapshot = copy.deepcopy(model).eval()
        shape = model_input_shape(snapshot, input_shape)
        if not snapshot.built:
            snapshot.build(shape)
            if not snapshot.built:
                raise _unbuilt_error(snapshot)
        if input_shape is not None and isinstance(snapshot, Sequential):
            snapshot.input_shape = shape
        self.input_shape: Shape = shape
        self._output_shape: Shape = snapshot.output_shape(shape)
        self._source_dtype = snapshot.param_dtype() or float32
        self._snapshot = snapshot
        self._reference: Layer | None = None
        # passes fold in float64 and the precision cast rounds once
        work, self.passes = optimize_model(copy.deepcopy(snapshot).to(float64), shape, optimize)
        work, cast = cast_precision(work, precision, source=self._source_dtype)
        self.passes.append(cast)
        if tuple(work.output_shape(shape)) != tuple(self._output_shape):  # a pass bug, never a user error
            raise RuntimeError(
                f"compile: the optimized model's output shape {format_shape(work.output_shape(shape))} differs from "
                f"the model's {format_shape(self._output_shape)}"
            )
        self.model: Layer = work.eval()
        #: the device plan (GPU backends only): weights resident on the device, see axiom.compiler.device_plan
        self.plan: Any = None
        #: the CPU backend that took over after a device failure at run time (None until then)
        self.cpu_backend: KernelBackend | None = None
        if _is_gpu(backend):
            from axiom.compiler.device_plan import DevicePlan

            self.plan = DevicePlan(self.model, backend, shape, self.activation_dtype)

    # -- running --------------------------------------------------------------------------------
    def __call__(self, x: Any) -> Tensor:
        """Run the optimized model on ``x`` with this model's backend active; float32 output.

        On a GPU backend the device plan runs it (one upload, the kernels, one download); a
        ``DeviceError`` during the call hands this call and later ones to the CPU backend
        ``"auto"`` (recorded in ``fallbacks["device"]``, warned once).

        Example:
            >>> import numpy as np
            >>> from axiom import Dense
            >>> compile(Dense(3, 2), backend="numpy")(np.ones((4, 3))).dtype.name   # float64 in, cast at the edge
            'float32'
        """
        t = x if isinstance(x, Tensor) else as_tensor(x)
        self._check_shape(t.shape)
        if not self.model.accepts_integers and is_floating(t.dtype) and t.dtype != self.activation_dtype:
            t = Tensor(t.data.astype(self.activation_dtype))
        if self.plan is not None:
            if not self.model.accepts_integers:
                self.model.check_input(t)  # the CPU path's TypeError for integer input
            try:
                return Tensor(self.plan.run(t.data))
            except DeviceError as err:
                self._device_failed(err)
        backend = self.cpu_backend if self.cpu_backend is not None else self.backend
        with use_backend(backend), no_grad():  # a compiled model is for inference: no tape
            y = self.model(t)
        if is_floating(y.dtype) and y.dtype != float32:
            y = Tensor(y.data.astype(float32))
        return y

    def _device_failed(self, err: Exception) -> None:
        """The device failed at run time: record it, warn once, and run this call and later ones on the CPU."""
        self.cpu_backend = choose_backend("auto")
        self.backend.record_fallback(  # type: ignore[attr-defined]
            "device",
            f"failed at run time ({err}); this call and later ones run on the CPU ({self.cpu_backend.name} backend)",
        )
        self.plan = None

    def _check_shape(self, shape: tuple[int, ...]) -> None:
        expected = self.input_shape
        if len(shape) != len(expected) or any(is_known(d) and d != n for d, n in zip(expected, shape)):
            raise ShapeError(
                "CompiledModel",
                expected,
                shape,
                "a compiled model runs on the input shape it was compiled for (rank and known sizes); "
                "compile(model, input_shape=...) states another",
            )

    def reference(self) -> Layer:
        """The model as it was given to ``compile()``, in float64 and eval mode (made once, then cached).

        Example:
            >>> from axiom import Dense
            >>> compile(Dense(3, 2), backend="numpy").reference().weight.dtype.name
            'float64'
        """
        if self._reference is None:
            self._reference = copy.deepcopy(self._snapshot).to(float64)
        return self._reference

    def max_error(self, x: Any) -> float:
        """``max |compiled(x) - model(x)|``, the model run unoptimized in float64 on the NumPy reference.

        Returns ``nan`` if either output has a NaN, 0.0 for an empty batch.

        Example:
            >>> import numpy as np
            >>> from axiom import Sequential, Dense, BatchNorm
            >>> compiled = compile(Sequential(Dense(4, 4), BatchNorm()), backend="numpy", precision="float16")
            >>> x = np.random.default_rng(1).standard_normal((8, 4)).astype(np.float32)
            >>> 0 < compiled.max_error(x) < 1e-2
            True
        """
        t = x if isinstance(x, Tensor) else as_tensor(x)
        x64 = t.data if self._snapshot.accepts_integers or not is_floating(t.dtype) else t.data.astype(float64)
        with use_backend(ReferenceBackend()):
            expected = self.reference()(x64).data.astype(float64)
        got = self(t).data.astype(float64)
        if got.size == 0:
            return 0.0
        return float(np.max(np.abs(got - expected)))

    # -- description ----------------------------------------------------------------------------
    @property
    def fallbacks(self) -> dict[str, str]:
        """Ops that ran on the NumPy reference instead of the backend so far: ``{op: reason}`` (a copy).

        Filled in as ops run (each op is warned about once, with a ``FallbackWarning``); empty for
        the NumPy backend and for ops the backend runs itself.

        Example:
            >>> from axiom import Dense
            >>> compile(Dense(3, 2), backend="numpy").fallbacks
            {}
        """
        return dict(getattr(self.backend, "fallbacks", {}))

    def output_shape(self, input_shape: Sequence[Dim | None] | None = None) -> Shape:
        """Output shape for ``input_shape`` (default: the compiled input shape); symbolic dims allowed.

        Example:
            >>> from axiom import Dense
            >>> c = compile(Dense(3, 2), backend="numpy")
            >>> c.output_shape(), c.output_shape((16, 3))
            (('batch', 2), (16, 2))
        """
        if input_shape is None:
            return self._output_shape
        return self.model.output_shape(model_input_shape(self.model, input_shape))

    def summary(self) -> str:
        """A human-readable report: backend, precision, shapes, layer counts, passes and fallbacks.

        Example:
            >>> from axiom import Sequential, Dense, Dropout
            >>> print(compile(Sequential(Dense(3, 4), Dropout(0.5), Dense(4, 2)), backend="numpy").summary())
            CompiledModel of Sequential
              backend    numpy (ReferenceBackend)
              precision  float32: weights float32, activations float32, outputs float32
              optimize   default
              shapes     (batch, 3) -> (batch, 2)
              layers     3 -> 1
              values     26 -> 8 (float32 -> float32)
              passes     inline_sequential: 0 changes
                         remove_dead_layers: 1 change
                           1: Dropout(p=0.5) removed (identity in eval mode)
                         fold_batchnorm: 0 changes
                         fold_constants: 1 change
                           0 + 1: Dense(3, 4) and Dense(4, 2) folded into Dense(3, 2)
                         cast_precision: 0 changes
              fallbacks  none so far
        """
        be = self.backend
        native = getattr(be, "implemented_ops", lambda: ())()
        be_text = f"{be.name} ({type(be).__name__}"
        if hasattr(be, "fallbacks"):
            be_text += f"; native ops: {', '.join(native) or 'none'}; the rest run on the NumPy reference"
        lines = [
            f"CompiledModel of {self._snapshot.name}",
            f"  backend    {be_text})",
            f"  precision  {self.precision}: weights {self.weight_dtype.name}, "
            f"activations {self.activation_dtype.name}, outputs float32",
            f"  optimize   {self.optimize}",
            f"  shapes     {format_shape(self.input_shape)} -> {format_shape(self._output_shape)}",
            f"  layers     {leaf_count(self._snapshot)} -> {leaf_count(self.model)}",
            f"  values     {tensor_count(self._snapshot):,} -> {tensor_count(self.model):,} "
            f"({self._source_dtype.name} -> {self.weight_dtype.name})",
        ]
        if self.plan is not None:
            plan = self.plan
            on_cpu = len(plan.cpu_steps)
            lines.append(
                f"  device     {plan.device_name}: {len(plan.steps)} steps"
                + (f" ({on_cpu} on the CPU)" if on_cpu else "")
                + f", {plan.weight_bytes:,} bytes of weights resident ({plan.dtype.name}); "
                "1 upload + 1 download per call" + (" plus a round trip per CPU step" if on_cpu else "")
            )
            lines.extend(f"               {line}" for line in plan.describe())
        elif self.cpu_backend is not None:
            lines.append(f"  device     failed at run time: running on the CPU ({self.cpu_backend.name} backend)")
        for i, result in enumerate(self.passes):
            lines.append(f"  {'passes' if i == 0 else '':9}  {result}")
            lines.extend(f"               {change}" for change in result.changes)
        fallbacks = self.fallbacks
        if not fallbacks:
            lines.append("  fallbacks  none so far")
        for i, (op, reason) in enumerate(sorted(fallbacks.items())):
            lines.append(f"  {'fallbacks' if i == 0 else '':9}  {op}: {reason}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (
            f"CompiledModel({self._snapshot.name}, backend={self.backend.name!r}, "
            f"optimize={self.optimize!r}, precision={self.precision!r})"
        )


def compile(
    model: Layer,
    backend: str | KernelBackend | Coprocessor = "auto",
    optimize: str = "default",
    precision: str = "float32",
    *,
    input_shape: Sequence[Dim | None] | None = None,
) -> CompiledModel:
    """Compile ``model`` for a backend, an optimization level and a precision.

    - ``backend``: ``"auto"`` (the fastest CPU backend here: ``"c"`` if built, else
      ``"numpy"``; never a GPU), ``"c"``, ``"rust"``, ``"zig"``, ``"numpy"``, ``"cuda"``,
      ``"opencl"``, another registered name, a ``KernelBackend`` object, or a
      :class:`~axiom.compiler.coprocessor.Coprocessor` (what :func:`detect_coprocessor`
      returns). A name gets a fresh instance, owned by the compiled model (its own
      ``fallbacks``). Unknown names raise ``ValueError`` naming the choices; a backend that
      cannot run here raises ``BackendUnavailableError`` (never a silent fallback to another
      backend). On a GPU backend the model runs device-resident
      (:mod:`axiom.compiler.device_plan`): weights uploaded once, activations kept on the
      device, one upload and one download per call; layers without a device kernel run on the
      CPU (recorded in ``fallbacks``), and a device failing at run time (a ``DeviceError``)
      hands that call and later ones to the CPU backend ``"auto"`` (recorded under
      ``"device"`` and warned once).
    - ``optimize``: ``"none"``; ``"default"`` (inline nested Sequentials, remove dead layers,
      fold BatchNorm, fold constants); ``"aggressive"`` (also fuse activation layers into the
      Dense/Conv2d before them, and repeat until nothing changes).
    - ``precision``: ``"float32"``, ``"float16"``, ``"bfloat16"`` or ``"mixed"`` (see
      :mod:`axiom.compiler.passes.precision`); applied at every optimization level.
    - ``input_shape``: the model input (``None`` or a symbol for free dims); default: what the
      model states (``Sequential(..., input_shape=...)`` or its first layer's expectation).
      Needed for a model whose lazy layers are not built yet. The compiled model accepts
      inputs of this rank and these known sizes only, since passes rely on it (a ``Reshape``
      to the input's own shape is dropped, for instance).

    The model itself is never modified: compilation works on a deep copy, in eval mode.

    Example:
        >>> import numpy as np
        >>> from axiom import Sequential, Dense, Conv2d, BatchNorm, Flatten, relu
        >>> net = Sequential(Conv2d(3, 8, 3), BatchNorm(), Flatten(), Dense(10, relu), input_shape=(None, 8, 8, 3))
        >>> fast = compile(net, backend="numpy", optimize="aggressive")
        >>> [layer.name for layer in fast.model]
        ['Conv2d', 'Flatten', 'Dense']
        >>> try:
        ...     compile(net, optimize="max")
        ... except ValueError as err:
        ...     print(err)
        unknown optimize level 'max'; expected one of 'none', 'default', 'aggressive'
    """
    _check_choice(optimize, "optimize level", OPTIMIZE_LEVELS)
    precision_dtypes(precision)  # ValueError naming the choices, before any work
    if not isinstance(model, Layer):
        raise TypeError(f"compile: expects an axiom Layer or model, got {type(model).__name__}")
    return CompiledModel(model, choose_backend(backend), optimize, precision, input_shape)
