"""What every graph pass returns: :class:`PassResult`, the record of what it changed.

Example:
    >>> r = PassResult("remove_dead_layers", ["1: Dropout(p=0.5) removed (identity in eval mode)"])
    >>> r.changed, str(r)
    (True, 'remove_dead_layers: 1 change')
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from axiom.nn.layer import Layer
from axiom.shapes import Dim, Shape, normalize_shape


@dataclass
class PassResult:
    """One graph pass as applied: its ``name`` and one line per rewrite in ``changes``.

    Each change names the position of the layer in the model (``"2.0"``: child 0 of child 2,
    the dotted names of ``state_dict``) as it was before the pass ran.

    Example:
        >>> PassResult("fold_batchnorm", []).changed
        False
    """

    name: str
    changes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """True if the pass rewrote anything."""
        return bool(self.changes)

    def __str__(self) -> str:
        n = len(self.changes)
        return f"{self.name}: {n} change{'' if n == 1 else 's'}"


def model_input_shape(model: Layer, input_shape: Sequence[Dim | None] | None = None) -> Shape:
    """The input shape passes reason with: ``input_shape`` if given, else what the model states.

    Example:
        >>> from axiom import Dense, Sequential
        >>> model_input_shape(Sequential(Dense(4, 2))), model_input_shape(Dense(4, 2), (None, 4))
        (('batch', 4), ('batch', 4))
    """
    if input_shape is not None:
        return normalize_shape(input_shape)
    return tuple(model.default_input_shape())
