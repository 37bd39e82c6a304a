"""The reverse-mode autograd tape behind :class:`~axiom.tensor.Tensor`.

Every differentiable op computes its result on NumPy arrays and calls :func:`record` with the
input tensors and a *backward rule*: a function from the output's gradient (an array of the
output's shape) to one gradient per input (an array of that input's shape, or ``None``). The
tape is the graph of these nodes; :func:`backward` walks it once in reverse topological
order, summing the gradients that reach each tensor, and **adds** the total into the
``.grad`` of every leaf with ``requires_grad`` (so gradients accumulate over calls until
``zero_grad``). Nothing is recorded inside :class:`no_grad` or when no input requires a
gradient, so inference pays nothing.

Example:
    >>> import numpy as np
    >>> from axiom import Tensor
    >>> x = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    >>> y = (x * x).sum()
    >>> y.backward()
    >>> x.grad.numpy().tolist()
    [2.0, 4.0, 6.0]
    >>> with no_grad():
    ...     (x * 2).requires_grad
    False
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

if TYPE_CHECKING:
    from axiom.tensor import Tensor

BackwardRule = Callable[[np.ndarray], Sequence["np.ndarray | None"]]
_F = TypeVar("_F", bound=Callable[..., Any])

_state = threading.local()


def is_grad_enabled() -> bool:
    """Whether new ops are recorded on the tape (per thread; on by default).

    Example:
        >>> is_grad_enabled()
        True
    """
    return getattr(_state, "enabled", True)


class _GradMode:
    """Context manager and decorator setting the grad mode for its body.

    Works as ``with no_grad():``, ``@no_grad()`` and bare ``@no_grad``. The previous mode is
    saved on a per-thread stack, so one instance may be entered again (nested, or in another
    thread) without losing the mode to restore.
    """

    enabled = False

    def __new__(cls, fn: Callable[..., Any] | None = None) -> Any:
        if fn is None:
            return super().__new__(cls)
        return cls()(fn)  # bare @no_grad on a function

    def __enter__(self) -> None:
        if not hasattr(_state, "saved"):
            _state.saved = []
        _state.saved.append(is_grad_enabled())
        _state.enabled = self.enabled

    def __exit__(self, *exc: object) -> None:
        _state.enabled = _state.saved.pop()

    def __call__(self, fn: _F) -> _F:
        mode = type(self)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with mode():
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


class no_grad(_GradMode):  # noqa: N801 - the name users know from PyTorch
    """Record nothing inside the block (or the decorated function): for evaluation and updates.

    Example:
        >>> from axiom import Tensor
        >>> w = Tensor([1.0], requires_grad=True)
        >>> with no_grad():
        ...     y = w * 3
        >>> y.requires_grad
        False
    """

    enabled = False


class enable_grad(_GradMode):  # noqa: N801
    """Record again inside a :class:`no_grad` block.

    Example:
        >>> from axiom import Tensor
        >>> w = Tensor([1.0], requires_grad=True)
        >>> with no_grad(), enable_grad():
        ...     (w * 3).requires_grad
        True
    """

    enabled = True


class Node:
    """One recorded op: its input tensors and the rule mapping the output gradient to theirs.

    Example:
        >>> from axiom import Tensor
        >>> y = Tensor([2.0], requires_grad=True) * 3
        >>> y.grad_fn.name
        'mul'
    """

    __slots__ = ("backward", "name", "parents")

    def __init__(self, parents: tuple[Tensor | None, ...], backward: BackwardRule, name: str) -> None:
        self.parents = parents
        self.backward = backward
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.name} backward>"


def record(data: np.ndarray, parents: Sequence[Tensor | None], backward: BackwardRule, name: str) -> Tensor:
    """Wrap ``data`` in a Tensor and, if grad mode is on and a parent needs it, put a node on the tape.

    ``backward(grad_out)`` must return one entry per parent (``None`` for a parent without a
    gradient); each array is summed into that parent's gradient.

    Example:
        >>> from axiom import Tensor
        >>> x = Tensor([1.0, -2.0], requires_grad=True)
        >>> y = record(np.abs(x.data), [x], lambda g: [g * np.sign(x.data)], "abs")
        >>> y.sum().backward(); x.grad.numpy().tolist()
        [1.0, -1.0]
    """
    from axiom.tensor import Tensor

    out = Tensor(data)
    if is_grad_enabled() and any(p is not None and p.requires_grad for p in parents):
        out.requires_grad = True
        out.grad_fn = Node(tuple(parents), backward, name)
    return out


def needs_grad(*tensors: Any) -> bool:
    """True when grad mode is on and one of ``tensors`` requires a gradient (rules use it to skip work).

    Example:
        >>> from axiom import Tensor
        >>> needs_grad(Tensor([1.0])), needs_grad(Tensor([1.0], requires_grad=True))
        (False, True)
    """
    return is_grad_enabled() and any(getattr(t, "requires_grad", False) for t in tensors)


def _topological_order(root: Tensor) -> list[Tensor]:
    """Tensors reachable from ``root`` through recorded nodes, each after every tensor it feeds."""
    order: list[Tensor] = []
    seen: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(root, False)]
    while stack:
        t, expanded = stack.pop()
        if expanded:
            order.append(t)
            continue
        if id(t) in seen:
            continue
        seen.add(id(t))
        stack.append((t, True))
        if t.grad_fn is not None:
            for p in t.grad_fn.parents:
                if p is not None and p.requires_grad and id(p) not in seen:
                    stack.append((p, False))
    order.reverse()  # root first
    return order


def backward(root: Tensor, grad: Any = None, retain_graph: bool = False) -> None:
    """Backpropagate from ``root``: add d root / d leaf (times ``grad``) into every leaf's ``.grad``.

    ``grad`` defaults to 1 for a one-element ``root``; otherwise it must have ``root``'s shape.
    The graph is freed afterwards unless ``retain_graph`` (so a second call raises).

    Example:
        >>> from axiom import Tensor
        >>> w = Tensor([[1.0, 2.0]], requires_grad=True)
        >>> out = w @ Tensor([[3.0], [4.0]])
        >>> backward(out); backward(w @ Tensor([[1.0], [1.0]]))   # gradients accumulate
        >>> w.grad.numpy().tolist()
        [[4.0, 5.0]]
    """
    from axiom.tensor import Tensor

    if not root.requires_grad:
        raise RuntimeError(
            "backward: this tensor does not require a gradient (no input had requires_grad=True, "
            "or it was computed under no_grad())"
        )
    if grad is None:
        if root.size != 1:
            raise RuntimeError(
                f"backward: grad can be implied only for a one-element output; this one has shape {root.shape}. "
                "Pass grad= with that shape (or reduce the output, e.g. loss.mean())"
            )
        seed = np.ones(root.shape, root.dtype)
    else:
        seed = np.asarray(grad.data if isinstance(grad, Tensor) else grad)
        if seed.shape != root.shape:
            raise ValueError(f"backward: grad has shape {seed.shape}; expected the output's shape {root.shape}")
        seed = seed.astype(root.dtype, copy=False)
    grads: dict[int, np.ndarray] = {id(root): seed}
    for t in _topological_order(root):
        g = grads.pop(id(t), None)
        if g is None:
            continue
        node = t.grad_fn
        if node is None or t._retains_grad:
            _accumulate(t, g)
        if node is None:
            continue
        if node.backward is None:  # type: ignore[comparison-overlap]
            raise RuntimeError(
                "backward: the graph was already freed by an earlier backward(); pass retain_graph=True "
                "to the first call to backpropagate through it twice"
            )
        parent_grads = node.backward(g)
        if len(parent_grads) != len(node.parents):
            raise RuntimeError(f"{node.name}: backward rule returned {len(parent_grads)} gradients")
        for p, pg in zip(node.parents, parent_grads, strict=True):
            if p is None or pg is None or not p.requires_grad:
                continue
            pg = np.asarray(pg)
            if pg.shape != p.shape:
                raise RuntimeError(f"{node.name}: backward rule gave a gradient of shape {pg.shape} for {p.shape}")
            key = id(p)
            grads[key] = pg if key not in grads else grads[key] + pg
        if not retain_graph:
            node.backward = None  # type: ignore[assignment]


def _accumulate(t: Tensor, g: np.ndarray) -> None:
    from axiom.tensor import Tensor

    if t.grad is None:
        t.grad = Tensor(np.array(g, dtype=t.dtype, copy=True))  # one copy: never alias an array a rule may hold
    else:
        # a new array, not +=: an optimizer or the user may hold the old one
        t.grad.data = t.grad.data + g.astype(t.dtype, copy=False)
