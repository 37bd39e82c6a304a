"""Launchers of ``cuda/layout.cu``: the data movement of device-resident compiled models.

``add`` (residual connections), ``copy_block`` (concatenation along any axis), ``permute_0213``
(attention head split / merge), ``permute`` (any axis order, e.g. the NCHW / NHWC moves of
imported models) and ``gather_rows`` (embedding lookups), float32 / float64. Every
launcher checks that the sizes it is given fit the arrays, so a wrong size is a ``ValueError``
and never an out-of-bounds access on the device.
"""

from __future__ import annotations

import numpy as np

from axiom.backends.gpu.ops import blocks, check_array, check_sizes, i32, i64, launcher
from axiom.backends.gpu.runtime import DeviceArray, DeviceRuntime

LOCAL = 256
#: tile of the transposing permutation (``LAY_TILE`` x ``LAY_ROWS`` work-items, see layout.cu)
TILE, TILE_ROWS = 32, 8
#: the most axes ``permute`` takes (``PERM_MAX_DIMS`` in layout.cu) after merging axes that stay together
PERM_MAX_DIMS = 6


def merged_permutation(shape: tuple[int, ...], perm: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``(shape, perm)`` with size-1 axes dropped and axes that stay adjacent and in order merged.

    ``x.transpose(perm)`` equals ``x.reshape(new_shape).transpose(new_perm)`` reshaped back, with
    as few axes as possible (a NCHW -> NHWC move of a batch is 3 axes, whatever the batch shape).

    Example:
        >>> merged_permutation((2, 3, 4, 5), (0, 2, 3, 1))
        ((2, 3, 20), (0, 2, 1))
        >>> merged_permutation((2, 1, 4), (1, 0, 2))
        ((8,), (0,))
    """
    if sorted(perm) != list(range(len(shape))):
        raise ValueError(f"permute: {perm} is not a permutation of the axes of shape {shape}")
    kept = [a for a in range(len(shape)) if shape[a] != 1]  # size-1 axes move nothing
    before = dict(zip(kept[1:], kept))  # each kept axis -> the kept axis before it in src
    groups: list[list[int]] = []
    for a in (a for a in perm if shape[a] != 1):  # in dst order: join the group that ends with a's src predecessor
        if groups and before.get(a) == groups[-1][-1]:
            groups[-1].append(a)
        else:
            groups.append([a])
    order = sorted(range(len(groups)), key=lambda g: groups[g][0])  # groups in src order
    new_shape = tuple(int(np.prod([shape[a] for a in groups[g]])) for g in order)
    rank = {g: i for i, g in enumerate(order)}
    return (new_shape or (1,)), (tuple(rank[g] for g in range(len(groups))) or (0,))


@launcher("add")
def add(rt: DeviceRuntime, dt: np.dtype, a: DeviceArray, b: DeviceArray, y: DeviceArray, n: int) -> None:
    """``y[e] = a[e] + b[e]`` for ``e < n`` (``y`` may be ``a`` or ``b``).

    Example:
        >>> from axiom.backends.gpu.opencl_runtime import OpenCLRuntime
        >>> a, b = np.array([1.0, 2.0], np.float32), np.array([10.0, 20.0], np.float32)
        >>> rt = OpenCLRuntime.first_device_or_none()
        >>> if rt is not None:
        ...     da = rt.to_device(a)
        ...     add(rt, a.dtype, da, rt.to_device(b), da, 2)                 # in place: da += b
        ...     a = rt.to_host(da)
        ... else:
        ...     a += b
        >>> a.tolist()
        [11.0, 22.0]
    """
    check_sizes("add", n=n)
    for what, arr in (("a", a), ("b", b), ("y", y)):
        check_array("add", what, arr, n, dt)
    rt.launch("layout", "axiom_add", dt, (blocks(n, LOCAL),), (LOCAL,), a, b, y, i64(n))


@launcher("copy_block")
def copy_block(
    rt: DeviceRuntime,
    dt: np.dtype,
    src: DeviceArray,
    dst: DeviceArray,
    outer: int,
    src_cols: int,
    dst_cols: int,
    dst_offset: int,
) -> None:
    """``dst[o * dst_cols + dst_offset + j] = src[o * src_cols + j]`` for ``o < outer``, ``j < src_cols``.

    Example:
        >>> from axiom.backends.gpu.opencl_runtime import OpenCLRuntime
        >>> left, right = np.array([1, 2], np.float32), np.array([3, 4], np.float32)   # two (2, 1) columns
        >>> rt = OpenCLRuntime.first_device_or_none()
        >>> if rt is not None:
        ...     both = rt.empty((2, 2), left.dtype)
        ...     copy_block(rt, left.dtype, rt.to_device(left), both, 2, 1, 2, 0)    # columns [0, 1) of 2
        ...     copy_block(rt, left.dtype, rt.to_device(right), both, 2, 1, 2, 1)   # columns [1, 2) of 2
        ...     print(rt.to_host(both).tolist())
        ... else:
        ...     print(np.stack([left, right], axis=1).tolist())
        [[1.0, 3.0], [2.0, 4.0]]
    """
    check_sizes("copy_block", outer=outer, src_cols=src_cols, dst_cols=dst_cols, dst_offset=dst_offset)
    if outer * src_cols == 0:
        return
    if dst_offset + src_cols > dst_cols:
        raise ValueError(f"copy_block: columns [{dst_offset}, {dst_offset + src_cols}) do not fit {dst_cols} columns")
    check_array("copy_block", "src", src, outer * src_cols, dt)
    check_array("copy_block", "dst", dst, outer * dst_cols, dt)
    args = (src, dst, i32(outer), i32(src_cols), i32(dst_cols), i32(dst_offset))
    rt.launch("layout", "axiom_copy_block", dt, (blocks(outer * src_cols, LOCAL),), (LOCAL,), *args)


@launcher("permute_0213")
def permute_0213(
    rt: DeviceRuntime, dt: np.dtype, src: DeviceArray, dst: DeviceArray, d0: int, d1: int, d2: int, d3: int
) -> None:
    """``dst (d0, d2, d1, d3) = src (d0, d1, d2, d3)`` with axes 1 and 2 swapped.

    Example:
        >>> from axiom.backends.gpu.opencl_runtime import OpenCLRuntime
        >>> src = np.arange(8, dtype=np.float32).reshape(1, 2, 2, 2)
        >>> rt = OpenCLRuntime.first_device_or_none()
        >>> if rt is not None:
        ...     dst = rt.empty((1, 2, 2, 2), np.float32)
        ...     permute_0213(rt, src.dtype, rt.to_device(src), dst, 1, 2, 2, 2)   # rows of d3 = 2 move together
        ...     dst = rt.to_host(dst)
        ... else:
        ...     dst = src.transpose(0, 2, 1, 3)
        >>> dst.ravel().tolist()
        [0.0, 1.0, 4.0, 5.0, 2.0, 3.0, 6.0, 7.0]
    """
    check_sizes("permute_0213", d0=d0, d1=d1, d2=d2, d3=d3)
    n = d0 * d1 * d2 * d3
    check_array("permute_0213", "src", src, n, dt)
    check_array("permute_0213", "dst", dst, n, dt)
    if n == 0:
        return
    if d3 == 1 and d1 > 1 and d2 > 1:
        # a plain batched transpose: element-wise, either the loads or the stores would be strided
        groups = (-(-d2 // TILE), -(-d1 // TILE), min(d0, 65535))
        if groups[1] <= 65535:
            args = (src, dst, i32(d0), i32(d1), i32(d2))
            rt.launch("layout", "axiom_permute_0213_tiled", dt, groups, (TILE, TILE_ROWS, 1), *args)
            return
    args = (src, dst, i32(d0), i32(d1), i32(d2), i32(d3))
    rt.launch("layout", "axiom_permute_0213", dt, (blocks(n, LOCAL),), (LOCAL,), *args)


@launcher("gather_rows")
def gather_rows(
    rt: DeviceRuntime,
    dt: np.dtype,
    table: DeviceArray,
    idx: DeviceArray,
    y: DeviceArray,
    n_idx: int,
    rows: int,
    dim: int,
) -> None:
    """``y[i, :] = table[idx[i], :]`` (``idx`` int32); an index outside ``[0, rows)`` gives a NaN row.

    Example:
        >>> from axiom.backends.gpu.opencl_runtime import OpenCLRuntime
        >>> table, idx = np.arange(6, dtype=np.float32).reshape(3, 2), np.array([2, 0, 5], np.int32)   # 5: no such row
        >>> rt = OpenCLRuntime.first_device_or_none()
        >>> if rt is not None:
        ...     y = rt.empty((3, 2), np.float32)
        ...     gather_rows(rt, table.dtype, rt.to_device(table), rt.to_device(idx), y, 3, 3, 2)
        ...     print(rt.to_host(y).tolist())
        ... else:
        ...     print([[4.0, 5.0], [0.0, 1.0], [float("nan")] * 2])
        [[4.0, 5.0], [0.0, 1.0], [nan, nan]]
    """
    check_sizes("gather_rows", n_idx=n_idx, rows=rows, dim=dim)
    check_array("gather_rows", "table", table, rows * dim, dt)
    check_array("gather_rows", "idx", idx, n_idx, np.dtype(np.int32))
    check_array("gather_rows", "y", y, n_idx * dim, dt)
    args = (table, idx, y, i32(n_idx), i32(rows), i32(dim))
    rt.launch("layout", "axiom_gather_rows", dt, (blocks(n_idx * dim, LOCAL),), (LOCAL,), *args)


@launcher("permute")
def permute(
    rt: DeviceRuntime, dt: np.dtype, src: DeviceArray, dst: DeviceArray, shape: tuple[int, ...], perm: tuple[int, ...]
) -> None:
    """``dst = src.reshape(shape).transpose(perm)`` (contiguous): any axis order, like ``numpy.transpose``.

    Axes that move together are merged first (:func:`merged_permutation`); at most
    :data:`PERM_MAX_DIMS` axes may remain (else ValueError).

    Example:
        >>> from axiom.backends.gpu.opencl_runtime import OpenCLRuntime
        >>> src = np.arange(24, dtype=np.float32).reshape(2, 3, 4)       # e.g. (batch, C, W) -> (batch, W, C)
        >>> rt = OpenCLRuntime.first_device_or_none()
        >>> if rt is not None:
        ...     dst = rt.empty((2, 4, 3), np.float32)
        ...     permute(rt, src.dtype, rt.to_device(src), dst, (2, 3, 4), (0, 2, 1))
        ...     dst = rt.to_host(dst)
        ... else:
        ...     dst = src.transpose(0, 2, 1)
        >>> bool((dst == src.transpose(0, 2, 1)).all())
        True
    """
    shape, perm = tuple(int(d) for d in shape), tuple(int(p) for p in perm)
    check_sizes("permute", **{f"d{i}": d for i, d in enumerate(shape)})
    n = int(np.prod(shape)) if shape else 1
    check_array("permute", "src", src, n, dt)
    check_array("permute", "dst", dst, n, dt)
    if n == 0:
        return
    dims, order = merged_permutation(shape, perm)
    if len(dims) > PERM_MAX_DIMS:
        raise ValueError(f"permute: {len(dims)} axes remain after merging {shape} by {perm}; at most {PERM_MAX_DIMS}")
    strides = [int(np.prod(dims[a + 1 :])) for a in range(len(dims))]  # src strides of the merged axes
    pad = PERM_MAX_DIMS - len(order)
    out = [1] * pad + [dims[a] for a in order]
    src_strides = [0] * pad + [strides[a] for a in order]
    args = (src, dst, i64(n), *(i32(d) for d in out), *(i64(s) for s in src_strides))
    rt.launch("layout", "axiom_permute", dt, (blocks(n, LOCAL),), (LOCAL,), *args)
