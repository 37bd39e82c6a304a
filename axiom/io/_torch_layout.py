"""PyTorch -> axiom weight layouts: one place that knows how torch tensors map onto axiom layers.

torch is NCHW with ``Linear.weight`` ``(out, in)``; axiom is NHWC with ``Dense.weight`` ``(in, out)``
(see ``docs/interop-checkpoints.md``). The rules, per axiom layer type:

- :class:`~axiom.nn.Dense`: ``weight.T``; if it follows a ``Flatten`` of a ``C``-channel image, its
  input features are also reordered from torch's ``(C, H, W)`` flattening to axiom's ``(H, W, C)``
  (only ``C`` and ``H*W`` are needed, so no input size has to be known);
- :class:`~axiom.nn.Conv2d` / ``DepthwiseConv2d``: ``(C_out, C_in/g, kH, kW)`` ->
  ``(kH, kW, C_in/g, C_out)``;
- :class:`~axiom.nn.MultiHeadAttention`: torch's stacked ``in_proj_weight`` ``(3E, E)`` /
  ``in_proj_bias`` split into ``q_proj``, ``k_proj``, ``v_proj`` (each transposed), ``out_proj`` transposed;
- everything else (BatchNorm, LayerNorm, RMSNorm, Embedding, ...): same names, same arrays.

:func:`torch_state_to_axiom` walks an axiom model, asks for the torch keys each layer needs,
converts them, and reports missing keys, unexpected keys and shape mismatches by name.

Example:
    >>> import numpy as np
    >>> from axiom import Dense, ReLU, Sequential
    >>> model = Sequential(Dense(3, 2), ReLU())
    >>> torch_sd = {"0.weight": np.arange(6, dtype=np.float32).reshape(2, 3), "0.bias": np.zeros(2, np.float32)}
    >>> torch_state_to_axiom(model, torch_sd)["0.weight"].shape
    (3, 2)
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Mapping

import numpy as np

from axiom.nn.attention import MultiHeadAttention
from axiom.nn.conv import Conv2d
from axiom.nn.dense import Dense
from axiom.nn.layer import Layer
from axiom.nn.normalization import BatchNorm
from axiom.nn.pooling import GlobalAvgPool
from axiom.nn.reshape import Flatten

__all__ = [
    "StateMismatchError",
    "conv_weight_from_torch",
    "conv_weight_to_torch",
    "flatten_chw_to_hwc",
    "linear_weight_from_torch",
    "linear_weight_to_torch",
    "torch_state_to_axiom",
]


class StateMismatchError(ValueError):
    """A torch state dict that does not fit the axiom model: missing/unexpected keys or wrong shapes."""


def linear_weight_from_torch(w: np.ndarray) -> np.ndarray:
    """torch ``Linear.weight`` ``(out, in)`` -> axiom ``Dense.weight`` ``(in, out)`` (a contiguous copy).

    Example:
        >>> linear_weight_from_torch(np.zeros((2, 3))).shape
        (3, 2)
    """
    return np.ascontiguousarray(w.T)


def linear_weight_to_torch(w: np.ndarray) -> np.ndarray:
    """axiom ``Dense.weight`` ``(in, out)`` -> torch ``Linear.weight`` ``(out, in)``.

    Example:
        >>> linear_weight_to_torch(np.zeros((3, 2))).shape
        (2, 3)
    """
    return np.ascontiguousarray(w.T)


def conv_weight_from_torch(w: np.ndarray) -> np.ndarray:
    """torch ``Conv2d.weight`` ``(C_out, C_in/g, kH, kW)`` -> axiom ``(kH, kW, C_in/g, C_out)``.

    Example:
        >>> conv_weight_from_torch(np.zeros((8, 3, 5, 4))).shape
        (5, 4, 3, 8)
    """
    return np.ascontiguousarray(w.transpose(2, 3, 1, 0))


def conv_weight_to_torch(w: np.ndarray) -> np.ndarray:
    """axiom ``(kH, kW, C_in/g, C_out)`` -> torch ``(C_out, C_in/g, kH, kW)``.

    Example:
        >>> conv_weight_to_torch(np.zeros((5, 4, 3, 8))).shape
        (8, 3, 5, 4)
    """
    return np.ascontiguousarray(w.transpose(3, 2, 0, 1))


def flatten_chw_to_hwc(w_in_out: np.ndarray, channels: int) -> np.ndarray:
    """Reorder the input rows of an axiom Dense weight ``(C*H*W, out)`` from ``(C, H, W)`` to ``(H, W, C)`` order.

    A Linear after ``Flatten`` of an NCHW image sees features ``c*HW + p``; after an NHWC
    flatten the same feature sits at ``p*C + c``. Only ``C`` (and ``HW = in // C``) matter.

    Example:
        >>> w = np.arange(4.0).reshape(4, 1)        # C=2, HW=2: torch order c0p0 c0p1 c1p0 c1p1
        >>> flatten_chw_to_hwc(w, 2)[:, 0].tolist()  # axiom order  p0c0 p0c1 p1c0 p1c1
        [0.0, 2.0, 1.0, 3.0]
    """
    rows = w_in_out.shape[0]
    if channels <= 0 or rows % channels:
        raise StateMismatchError(
            f"Dense after Flatten: {rows} input features are not a multiple of the {channels} image channels"
        )
    hw = rows // channels
    return np.ascontiguousarray(w_in_out.reshape(channels, hw, -1).transpose(1, 0, 2).reshape(rows, -1))


def _leaves(layer: Layer, prefix: str = "") -> Iterator[tuple[str, Layer]]:
    """Leaf-most layers owning parameters/buffers directly, in forward order, with dotted prefixes."""
    own_tensors = any(True for _ in _own_names(layer))
    if isinstance(layer, MultiHeadAttention) or own_tensors or not layer.children():
        yield prefix, layer
        if isinstance(layer, MultiHeadAttention):
            return
    for name, child in layer.named_children():
        yield from _leaves(child, f"{prefix}{name}.")


def _own_names(layer: Layer) -> Iterator[str]:
    from axiom.nn.layer import Parameter

    for key, value in vars(layer).items():
        if isinstance(value, Parameter):
            yield key
    for key in layer._buffer_names:
        if getattr(layer, key) is not None:
            yield key


def torch_state_to_axiom(model: Layer, torch_state: Mapping[str, np.ndarray]) -> OrderedDict[str, np.ndarray]:
    """Convert a torch state dict (name -> NumPy array) into ``model``'s own state-dict names and layouts.

    Names are matched structurally (``"3.weight"`` is the weight of the 4th layer, as in
    ``torch.nn.Sequential``). Raises :class:`StateMismatchError` listing missing keys, unexpected
    keys, or the first shape mismatch (torch name, torch shape, expected torch shape).

    Example:
        >>> import numpy as np
        >>> from axiom import Dense
        >>> try:
        ...     torch_state_to_axiom(Dense(3, 2), {"weight": np.zeros((2, 3)), "extra": np.zeros(1)})
        ... except StateMismatchError as err:
        ...     print(err)
        torch state dict does not fit the model: missing keys ['bias']; unexpected keys ['extra']
    """
    out: OrderedDict[str, np.ndarray] = OrderedDict()
    used: set[str] = set()
    missing: list[str] = []
    channels: int | None = None  # image channels of the running tensor while it is 4-D (NHWC)
    flatten_channels: int | None = None

    def take(key: str, expected_torch: tuple[int, ...]) -> np.ndarray | None:
        if key not in torch_state:
            missing.append(key)
            return None
        value = np.asarray(torch_state[key])
        if value.shape != expected_torch:
            raise StateMismatchError(
                f"torch state dict: {key!r} has shape {tuple(value.shape)}, the model expects {expected_torch} "
                "(torch layout)"
            )
        used.add(key)
        return value

    model._check_built()
    for prefix, layer in _leaves(model):
        if isinstance(layer, MultiHeadAttention):
            e = layer.embed_dim
            w = take(f"{prefix}in_proj_weight", (3 * e, e))
            if w is not None:
                for i, name in enumerate(("q_proj", "k_proj", "v_proj")):
                    out[f"{prefix}{name}.weight"] = linear_weight_from_torch(w[i * e : (i + 1) * e])
            ow = take(f"{prefix}out_proj.weight", (e, e))
            if ow is not None:
                out[f"{prefix}out_proj.weight"] = linear_weight_from_torch(ow)
            if layer.q_proj.bias is not None:
                b = take(f"{prefix}in_proj_bias", (3 * e,))
                if b is not None:
                    for i, name in enumerate(("q_proj", "k_proj", "v_proj")):
                        out[f"{prefix}{name}.bias"] = np.ascontiguousarray(b[i * e : (i + 1) * e])
                ob = take(f"{prefix}out_proj.bias", (e,))
                if ob is not None:
                    out[f"{prefix}out_proj.bias"] = ob
            channels = flatten_channels = None
            continue
        for name in _own_names(layer):
            target = getattr(layer, name)
            key = f"{prefix}{name}"
            if isinstance(layer, Dense) and name == "weight":
                value = take(key, target.shape[::-1])
                if value is not None:
                    value = linear_weight_from_torch(value)
                    if flatten_channels is not None:
                        value = flatten_chw_to_hwc(value, flatten_channels)
            elif isinstance(layer, Conv2d) and name == "weight":
                kh, kw, cin, cout = target.shape
                value = take(key, (cout, cin, kh, kw))
                value = None if value is None else conv_weight_from_torch(value)
            else:
                value = take(key, target.shape)
            if value is not None:
                out[key] = value
        # track the running layout for the Flatten -> Dense reordering
        if isinstance(layer, Conv2d):
            channels = layer.out_channels
        elif isinstance(layer, BatchNorm) and channels is not None:
            channels = layer.num_features
        elif isinstance(layer, GlobalAvgPool):
            channels = None
        elif isinstance(layer, Flatten):
            flatten_channels, channels = channels, None
            continue
        elif isinstance(layer, Dense):
            channels = None
        if isinstance(layer, Dense):
            flatten_channels = None
    unexpected = [k for k in torch_state if k not in used]
    if missing or unexpected:
        raise StateMismatchError(
            f"torch state dict does not fit the model: missing keys {missing}; unexpected keys {unexpected}"
        )
    return out
