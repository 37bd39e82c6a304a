"""Canonical JSON for certificates: sorted keys, no whitespace, every float stored exactly.

A float is written as its ``float.hex()`` string (``"0x1.8000000000000p+0"`` is 1.5), so a
checker reads back bit-exactly the float64 value that was written (a float32 value is stored
as the float64 it widens to, which is exact). Integers, strings, booleans and ``null`` stay as
they are; NaN and infinities are written ``"nan"``, ``"inf"``, ``"-inf"`` (``float.hex``
spelling). The same object always gives the same bytes, which is what hashes and signatures
are taken over.

Example:
    >>> canonical_json({"b": 1.5, "a": [1, "x", None]})
    '{"a":[1,"x",null],"b":"0x1.8000000000000p+0"}'
    >>> hex_to_float("0x1.8000000000000p+0")
    1.5
"""

from __future__ import annotations

import json
import math
from fractions import Fraction
from typing import Any

import numpy as np

__all__ = ["canonical_json", "encode_floats", "hex_to_float", "hex_to_fraction", "hexes"]


def encode_floats(obj: Any) -> Any:
    """``obj`` with every float (Python or NumPy, also inside arrays) replaced by its hex string.

    Example:
        >>> encode_floats({"x": np.array([0.5, 2.0], np.float32), "n": 3})
        {'x': ['0x1.0000000000000p-1', '0x1.0000000000000p+1'], 'n': 3}
    """
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, int | np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        return float(obj).hex()
    if isinstance(obj, np.ndarray):
        return encode_floats(obj.tolist())
    if isinstance(obj, dict):
        return {str(k): encode_floats(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [encode_floats(v) for v in obj]
    raise TypeError(f"canonical JSON: cannot encode {type(obj).__name__}")


def canonical_json(obj: Any) -> str:
    """The canonical text of ``obj`` (floats as hex strings, sorted keys, compact separators).

    Example:
        >>> canonical_json([0.1])
        '["0x1.999999999999ap-4"]'
    """
    return json.dumps(encode_floats(obj), sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def hex_to_float(s: Any) -> float:
    """The float of a hex string written by :func:`canonical_json` (ints are accepted too).

    Example:
        >>> hex_to_float("-0x1.0000000000000p+1"), hex_to_float(3)
        (-2.0, 3.0)
    """
    if isinstance(s, bool):
        raise ValueError("a number was expected, got a boolean")
    if isinstance(s, int):
        return float(s)
    if not isinstance(s, str):
        raise ValueError(f"a hex float string was expected, got {type(s).__name__}")
    return float.fromhex(s)


def hex_to_fraction(s: Any) -> Fraction:
    """The exact rational value of a stored finite float.

    Example:
        >>> hex_to_fraction("0x1.8000000000000p+0")
        Fraction(3, 2)
    """
    x = hex_to_float(s)
    if not math.isfinite(x):
        raise ValueError(f"a finite number was expected, got {s!r}")
    return Fraction(x)


def hexes(values: Any) -> np.ndarray:
    """A (nested) list of stored floats as a float64 array.

    Example:
        >>> hexes([["0x1p+0", "0x1p+1"]]).tolist()
        [[1.0, 2.0]]
    """
    arr = np.asarray(values, dtype=object)
    return np.vectorize(hex_to_float, otypes=[np.float64])(arr) if arr.size else arr.astype(np.float64)
