"""The Layer base class: structural parameters, shape rules, train/eval, state dicts.

A layer declares its shape rule in :meth:`Layer.output_shape` (works on symbolic shapes and
raises :class:`~axiom.shapes.ShapeError`), creates parameters in ``__init__`` or, when its
input size is not given, in :meth:`Layer.build`, and computes in :meth:`Layer.forward`.
Parameters, buffers and sub-layers are discovered from attributes, as in tinygrad: no
registration calls are needed except :meth:`Layer.register_buffer` for non-trainable state.

Layers start in **eval** mode (deterministic inference: Dropout off, BatchNorm uses running
statistics); ``model.train()`` switches training behaviour on.

Example:
    >>> import numpy as np
    >>> from axiom import Dense
    >>> layer = Dense(3, 2)
    >>> sorted(layer.state_dict())
    ['bias', 'weight']
    >>> layer(np.ones((4, 3), np.float32)).shape
    (4, 2)
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from axiom.shapes import Dim, Shape, ShapeError, format_shape
from axiom.tensor import FLOAT_DTYPES, Tensor, as_dtype, as_tensor, is_floating


class Parameter(Tensor):
    """A trainable tensor (``requires_grad=True``) owned by a layer.

    Example:
        >>> p = Parameter(np.zeros((2, 3)), dtype="float32")
        >>> p.shape, p.dtype.name, p.requires_grad
        ((2, 3), 'float32', True)
    """

    def __init__(self, data: Any, dtype: Any = None) -> None:
        super().__init__(data, dtype=dtype, requires_grad=True)


class IncompatibleKeys(NamedTuple):
    """What ``load_state_dict(strict=False)`` could not match.

    Example:
        >>> from axiom import Dense
        >>> Dense(2, 3).load_state_dict({"weight": np.zeros((2, 3)), "scale": np.ones(3)}, strict=False)
        IncompatibleKeys(missing_keys=['bias'], unexpected_keys=['scale'])
    """

    missing_keys: list[str]
    unexpected_keys: list[str]


class Layer:
    """Base class of every layer and container.

    Subclasses implement :meth:`output_shape` and :meth:`forward`, and :meth:`build` when
    some parameter sizes come from the input. ``expects`` is the human description of the
    input used in error messages, e.g. ``"(batch, features)"``.

    Example:
        >>> class Double(Layer):
        ...     def forward(self, x: Tensor) -> Tensor:
        ...         return x * 2
        >>> Double()(np.array([[1.0, 2.0]], np.float32)).numpy().tolist()
        [[2.0, 4.0]]
    """

    __array_ufunc__ = None  # so ``ndarray >> layer`` reaches Layer.__rrshift__
    accepts_integers = False  # Embedding overrides: it takes indices

    def __init__(self) -> None:
        self.training = False
        self._buffer_names: list[str] = []
        self._dtype: np.dtype = np.dtype(np.float32)

    # -- shape contract ------------------------------------------------------------
    @property
    def name(self) -> str:
        return type(self).__name__

    def expects(self) -> str:
        """The expected input, for messages (override in subclasses)."""
        return "(batch, ...)"

    def default_input_shape(self) -> Shape:
        """The most specific input shape this layer can state without seeing data."""
        return ("batch", "features")

    def output_shape(self, input_shape: Sequence[Dim]) -> Shape:
        """Shape of the output for ``input_shape`` (symbolic dims allowed); raises ShapeError."""
        return tuple(input_shape)

    @property
    def built(self) -> bool:
        """False while a lazy layer waits for its input size."""
        return True

    def build(self, input_shape: Sequence[Dim]) -> None:
        """Create parameters whose size comes from the input (lazy layers override)."""

    def shape_error(self, received: Sequence[Dim], detail: str = "", expected: str | None = None) -> ShapeError:
        """A ShapeError naming this layer and its expectation."""
        return ShapeError(self.name, expected or self.expects(), received, detail)

    def require_rank(self, shape: Sequence[Dim], rank: int) -> None:
        if len(shape) != rank:
            raise self.shape_error(shape, f"rank {rank} expected, got rank {len(shape)}")

    # -- running -------------------------------------------------------------------
    def forward(self, x: Tensor) -> Tensor:
        raise NotImplementedError(f"{self.name} does not implement forward()")

    def __call__(self, x: Any) -> Tensor:
        x = self.check_input(x)
        self.output_shape(x.shape)  # raises ShapeError naming this layer
        if not self.built:
            self.build(x.shape)
        return self.forward(x)

    def check_input(self, x: Any) -> Tensor:
        """Turn ``x`` into a Tensor and check its dtype; raise TypeError naming the layer."""
        if not isinstance(x, Tensor | np.ndarray | np.generic | list | tuple | float | int):
            raise TypeError(f"{self.name}: expects a Tensor or NumPy array but receives {type(x).__name__}")
        t = as_tensor(x)
        if self.accepts_integers:
            return t
        if not is_floating(t.dtype):
            names = ", ".join(d.name for d in FLOAT_DTYPES)
            raise TypeError(f"{self.name}: expects a floating-point tensor ({names}) but receives {t.dtype.name}")
        pdtype = self.param_dtype()
        if pdtype is not None and t.dtype != pdtype:
            raise TypeError(
                f"{self.name}: input dtype {t.dtype.name} does not match parameter dtype {pdtype.name}; "
                f"cast the input or call model.to({t.dtype.name!r})"
            )
        return t

    def param_dtype(self) -> np.dtype | None:
        for _, p in self.named_parameters():
            return p.dtype
        return None

    def __rshift__(self, other: Any) -> Layer:
        """``layer_a >> layer_b`` builds ``Sequential(layer_a, layer_b)``."""
        from axiom.nn.containers import Sequential

        if not isinstance(other, Layer):
            return NotImplemented
        left = list(self.layers) if type(self) is Sequential else [self]  # type: ignore[attr-defined]
        right = list(other.layers) if type(other) is Sequential else [other]  # type: ignore[attr-defined]
        return Sequential(*left, *right)

    def __rrshift__(self, x: Any) -> Tensor:
        """``x >> layer`` applies the layer to data ``x``."""
        return self(x)

    # -- structure -----------------------------------------------------------------
    def register_buffer(self, name: str, value: Any) -> None:
        """Non-trainable state saved in the state dict (e.g. BatchNorm running stats)."""
        setattr(self, name, None if value is None else as_tensor(value))
        if name not in self._buffer_names:
            self._buffer_names.append(name)

    def named_children(self) -> Iterator[tuple[str, Layer]]:
        for key, value in vars(self).items():
            if isinstance(value, Layer):
                yield key, value
            elif isinstance(value, list | tuple) and value and all(isinstance(v, Layer) for v in value):
                prefix = "" if key == "layers" else f"{key}."
                for i, v in enumerate(value):
                    yield f"{prefix}{i}", v

    def children(self) -> list[Layer]:
        return [child for _, child in self.named_children()]

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        for key, value in vars(self).items():
            if isinstance(value, Parameter):
                yield prefix + key, value
        for name, child in self.named_children():
            yield from child.named_parameters(f"{prefix}{name}.")

    def parameters(self) -> list[Parameter]:
        return [p for _, p in self.named_parameters()]

    def zero_grad(self) -> None:
        """Forget every parameter's accumulated gradient (``p.grad = None``).

        Example:
            >>> from axiom import Dense
            >>> layer = Dense(2, 1)
            >>> layer(np.ones((1, 2), np.float32)).sum().backward()
            >>> layer.weight.grad is not None
            True
            >>> layer.zero_grad(); layer.weight.grad is None
            True
        """
        for p in self.parameters():
            p.grad = None

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, Tensor]]:
        for key in self._buffer_names:
            value = getattr(self, key)
            if value is not None:
                yield prefix + key, value
        for name, child in self.named_children():
            yield from child.named_buffers(f"{prefix}{name}.")

    def modules(self) -> Iterator[Layer]:
        """This layer and every layer below it, depth first."""
        yield self
        for child in self.children():
            yield from child.modules()

    def _check_built(self) -> None:
        for layer in self.modules():
            # Name the deepest unbuilt layer (the lazy one), not the containers above it.
            if not layer.built and all(child.built for child in layer.children()):
                raise RuntimeError(
                    f"{layer.name} is not built yet: its input size is inferred from the first input; "
                    "run a batch through the model or give Sequential(..., input_shape=...) first"
                )

    # -- state ---------------------------------------------------------------------
    def state_dict(self) -> OrderedDict[str, np.ndarray]:
        """Parameters and buffers by dotted name (``"0.weight"``), as NumPy arrays (copies)."""
        self._check_built()
        out: OrderedDict[str, np.ndarray] = OrderedDict()
        for name, t in self.named_parameters():
            out[name] = t.data.copy()
        for name, t in self.named_buffers():
            out[name] = t.data.copy()
        return out

    def load_state_dict(self, state: Mapping[str, Any], strict: bool = True) -> IncompatibleKeys:
        """Copy arrays into parameters and buffers; shapes must match exactly.

        With ``strict=True`` (default) missing or unexpected keys raise ``KeyError`` naming them.
        """
        self._check_built()
        targets: dict[str, Tensor] = dict(self.named_parameters())
        targets.update(self.named_buffers())
        missing = [k for k in targets if k not in state]
        unexpected = [k for k in state if k not in targets]
        if strict and (missing or unexpected):
            raise KeyError(f"load_state_dict: missing keys {missing}, unexpected keys {unexpected}")
        # Check every shape before assigning anything, so a bad entry leaves the model untouched.
        values: dict[str, np.ndarray] = {}
        for key, target in targets.items():
            if key not in state:
                continue
            value = np.asarray(state[key].data if isinstance(state[key], Tensor) else state[key])
            if value.shape != target.shape:
                raise ValueError(
                    f"load_state_dict: {key!r} has shape {format_shape(value.shape)}, "
                    f"the model expects {format_shape(target.shape)}"
                )
            values[key] = value
        for key, value in values.items():
            targets[key].data = value.astype(targets[key].dtype, copy=True)
        return IncompatibleKeys(missing, unexpected)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Save the state dict as a safetensors file."""
        from axiom.nn.state import save_safetensors

        save_safetensors(self.state_dict(), path)

    def load(self, path: str | os.PathLike[str], strict: bool = True) -> IncompatibleKeys:
        """Load a safetensors file written by :meth:`save` (or any tool) into this model."""
        from axiom.nn.state import load_safetensors

        return self.load_state_dict(load_safetensors(path), strict=strict)

    # -- modes and dtypes ------------------------------------------------------------
    def train(self, mode: bool = True) -> Layer:
        """Training behaviour on (Dropout active, BatchNorm uses batch statistics)."""
        for layer in self.modules():
            layer.training = mode
        return self

    def eval(self) -> Layer:
        """Inference behaviour (the default)."""
        return self.train(False)

    def to(self, dtype: Any) -> Layer:
        """Cast every floating parameter and buffer to ``dtype`` in place; returns self."""
        dt = as_dtype(dtype)
        if not is_floating(dt):
            raise TypeError(f"{self.name}.to: expects a floating dtype, got {dt.name}")
        for layer in self.modules():
            layer.cast_(dt)
        return self

    def cast_(self, dtype: np.dtype) -> None:
        """Cast this layer's own floating parameters and buffers (not children's)."""
        for value in vars(self).values():
            if isinstance(value, Tensor) and is_floating(value.dtype):
                value.data = value.data.astype(dtype)
        self._dtype = dtype

    # -- display -------------------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        children = list(self.named_children())
        if not children:
            return f"{self.name}({self.extra_repr()})"
        lines = [f"  ({name}): " + repr(child).replace("\n", "\n  ") for name, child in children]
        return f"{self.name}(\n" + "\n".join(lines) + "\n)"


class ShapePreservingLayer(Layer):
    """Base for layers whose output has the input's shape (activations, Dropout): any rank >= 1.

    Example:
        >>> ShapePreservingLayer().output_shape(("batch", 7))
        ('batch', 7)
    """

    def expects(self) -> str:
        return "(batch, ...)"

    def output_shape(self, input_shape: Sequence[Dim]) -> Shape:
        if len(input_shape) < 1:
            raise self.shape_error(input_shape, "a scalar has no batch axis")
        return tuple(input_shape)
