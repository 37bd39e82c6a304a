"""``from_pytorch``: one entry point for live torch modules and checkpoint files; ``to_pytorch`` back.

- a ``torch.nn.Module`` is converted layer by layer
  (:func:`axiom.io.pytorch_live.from_pytorch_module`, NCHW -> NHWC);
- a path (``str`` or ``os.PathLike``) is read by the safe checkpoint loader
  :func:`axiom.io.pytorch_ckpt.load_checkpoint` (no torch, no pickle code executed).

Example:
    >>> import numpy as np, torch
    >>> from axiom.io import from_pytorch, to_pytorch
    >>> net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Tanh()).eval()
    >>> model = from_pytorch(net)
    >>> x = np.ones((1, 3), np.float32)
    >>> bool(np.allclose(to_pytorch(model)(torch.from_numpy(x)).detach().numpy(), model(x).numpy()))
    True
"""

from __future__ import annotations

import importlib
import os
from typing import Any

from axiom.io.pytorch_export import to_pytorch
from axiom.io.pytorch_live import from_pytorch_module
from axiom.nn.layer import Layer

__all__ = ["from_pytorch", "to_pytorch"]


def _is_torch_module(obj: Any) -> bool:
    """True for a ``torch.nn.Module``, without importing torch when it was never imported."""
    return any(f"{c.__module__}.{c.__qualname__}" == "torch.nn.modules.module.Module" for c in type(obj).__mro__)


def from_pytorch(obj: Any, architecture: Any = None, *, input_shape: Any = None) -> Layer:
    """Convert a live ``torch.nn.Module`` or load a ``.pt``/``.pth``/``.ckpt``/descriptor file.

    ``architecture`` (``None``, a descriptor dict or an axiom model) only applies to paths and
    is passed to :func:`axiom.io.pytorch_ckpt.load_checkpoint`; ``input_shape`` (torch's layout,
    e.g. ``(None, 3, 32, 32)``) only applies to modules. Anything other than a module or a path
    raises ``TypeError``.

    Example:
        >>> import numpy as np, torch
        >>> net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU()).eval()
        >>> model = from_pytorch(net)
        >>> [type(layer).__name__ for layer in model]
        ['Dense', 'ReLU']
        >>> try:
        ...     from_pytorch(42)
        ... except TypeError as err:
        ...     print(err)
        from_pytorch expects a torch.nn.Module or a checkpoint path (str or os.PathLike), got int
    """
    if _is_torch_module(obj):
        if architecture is not None:
            raise ValueError("from_pytorch: architecture applies to checkpoint paths, not to a live torch module")
        return from_pytorch_module(obj, input_shape=input_shape)
    if isinstance(obj, str | os.PathLike):
        if input_shape is not None:
            raise ValueError(
                "from_pytorch: input_shape applies to live torch modules; a checkpoint path takes architecture"
            )
        try:
            ckpt = importlib.import_module("axiom.io.pytorch_ckpt")
        except ModuleNotFoundError as err:
            if err.name != "axiom.io.pytorch_ckpt":
                raise
            raise NotImplementedError(
                "from_pytorch(path): the checkpoint loader axiom.io.pytorch_ckpt is not available in this build"
            ) from err
        return ckpt.load_checkpoint(obj, architecture=architecture)
    raise TypeError(
        f"from_pytorch expects a torch.nn.Module or a checkpoint path (str or os.PathLike), got {type(obj).__name__}"
    )
