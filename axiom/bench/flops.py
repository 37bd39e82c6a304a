"""FLOP and byte counts of the benchmarked kernels (the formulas of the performance anchors).

Compute-bound ops are reported in GFLOP/s and as a share of the measured fp32 peak;
memory-bound ops in GB/s, counting the bytes of the input and the output once each.

Example:
    >>> matmul_flops(256, 256, 256) / 1e6
    33.554432
    >>> conv2d_flops(32, 28, 28, 3, 32, 3, 3)
    43352064
"""

from __future__ import annotations


def matmul_flops(m: int, k: int, n: int) -> int:
    """``2 m k n``: one multiply and one add per term of an ``(m x k) @ (k x n)`` product.

    Example:
        >>> matmul_flops(32, 784, 256)
        12845056
    """
    return 2 * m * k * n


def conv2d_flops(n: int, h_out: int, w_out: int, c_in: int, c_out: int, kh: int, kw: int, groups: int = 1) -> int:
    """``2 N H_out W_out C_out (C_in / groups) kH kW`` (the bias is not counted).

    Example:
        >>> conv2d_flops(8, 32, 32, 64, 128, 3, 3) / 1e9
        1.207959552
        >>> conv2d_flops(1, 4, 4, 8, 8, 3, 3, groups=8)  # depthwise: one input channel per output
        2304
    """
    if groups <= 0 or c_in % groups:
        raise ValueError(f"conv2d_flops: groups={groups} must be positive and divide c_in={c_in}")
    return 2 * n * h_out * w_out * c_out * (c_in // groups) * kh * kw


def attention_flops(batch: int, heads: int, seq_q: int, seq_k: int, head_dim: int, causal: bool = False) -> int:
    """``4 B H L_q L_k D`` (``q k^T`` and ``p v``; the softmax is not counted); causal credits half.

    Example:
        >>> attention_flops(1, 8, 512, 512, 64) / 1e9
        0.536870912
        >>> attention_flops(1, 8, 512, 512, 64, causal=True) * 2 == attention_flops(1, 8, 512, 512, 64)
        True
    """
    flops = 4 * batch * heads * seq_q * seq_k * head_dim
    return flops // 2 if causal else flops


def io_bytes(*arrays_or_nbytes: object) -> int:
    """Bytes read plus bytes written: the sum of ``nbytes`` of the arrays given (or plain ints).

    Example:
        >>> import numpy as np
        >>> x = np.zeros((4096, 768), np.float32)
        >>> io_bytes(x, x) / 1e6     # softmax: read x once, write a result of the same size
        25.165824
    """
    total = 0
    for item in arrays_or_nbytes:
        total += int(item) if isinstance(item, int) else int(item.nbytes)  # type: ignore[attr-defined]
    return total


def gflops(flops: int | None, ms: float | None) -> float | None:
    """GFLOP/s of ``flops`` done in ``ms`` milliseconds (``None`` when either is missing).

    Example:
        >>> gflops(2_000_000_000, 20.0)
        100.0
    """
    if flops is None or ms is None or ms <= 0:
        return None
    return flops / (ms * 1e-3) / 1e9


def gbps(nbytes: int | None, ms: float | None) -> float | None:
    """GB/s (10^9 bytes per second) of ``nbytes`` moved in ``ms`` milliseconds.

    Example:
        >>> gbps(25_165_824, 2.0)
        12.582912
    """
    if nbytes is None or ms is None or ms <= 0:
        return None
    return nbytes / (ms * 1e-3) / 1e9
