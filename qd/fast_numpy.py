"""numpy's own float64 inner loops (exp, sin, cos, arctan2, matmul), callable from numba kernels.

The compiled evaluation kernels (:mod:`qd.fast_maze`, :mod:`qd.fast_arm`, :mod:`qd.fast_controller`) must round
exactly as the Gymnasium envs do, and the envs compute with numpy. On CPUs with AVX-512, numpy's float64
``exp`` and ``arctan2`` are its own SIMD code, which differs from the C library's in the last bit for a few
percent of arguments, and ``x @ W`` is a BLAS ``gemv`` whose summation order depends on the CPU's kernel;
numba compiles calls to the C library and plain loops. One last-bit difference in the robot's heading is
enough to make two trajectories drift apart, so the kernels call numpy's loops where the results could differ.

numpy keeps the inner loop of every legacy ufunc in its ``PyUFuncObject`` (``functions``, ``data`` and
``types`` of ``numpy/ufuncobject.h``, a public and stable struct). :func:`numpy_loops` reads the float64
loops' addresses from it and ``_call_loop`` calls one from compiled code with numpy's calling convention
``loop(char **args, npy_intp *dimensions, npy_intp *steps, void *data)``; the addresses travel as arguments,
so the kernels stay cacheable (``cache=True``). Where numpy's loop agrees with the C library on a sample of
arguments (it then *is* the C library's function, as for ``sin`` and ``cos`` here), the kernels call the C
library inline, which is faster; :data:`LIBM_SIN` and friends say which. The numba helpers (``_np_sin``,
``_np_arctan2``, ``_np_matvec``, ...) are private: the kernels of :mod:`qd.fast_controller`, :mod:`qd.fast_maze`
and :mod:`qd.fast_arm` are their only callers.

The loops are checked against numpy itself when they are first looked up (:func:`numpy_loops`): a layout that
does not match, or a loop that does not reproduce numpy's results, raises :class:`NumpyLoopsUnavailable`,
and the evaluators then keep to the envs (:mod:`qd.fast_evaluation`).
"""

from __future__ import annotations

import ctypes
import functools
import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

__all__ = [
    "EXP", "SIN", "COS", "ARCTAN2", "MATMUL", "LIBM_EXP", "LIBM_SIN", "LIBM_COS", "LIBM_ARCTAN2", "SCRATCH_SIZE",
    "NumpyLoopsUnavailable", "numpy_loops",
]

EXP, SIN, COS, ARCTAN2, MATMUL = 0, 2, 4, 6, 8
"""Offsets of each loop's (function address, data pointer) pair in the table of :func:`numpy_loops`."""
LIBM_EXP, LIBM_SIN, LIBM_COS, LIBM_ARCTAN2 = 10, 11, 12, 13
"""Offsets of the flags (1 or 0): numpy's float64 loop agrees with the C library's function."""
_TABLE_SIZE = 14
SCRATCH_SIZE = 16
"""Length of the ``np.intp`` scratch array the helpers below take: the ``args``, ``dimensions`` and ``steps``
arrays of one loop call (at most 3 + 4 + 9 entries, for matmul)."""
_ITEM = 8
"""Bytes per float64."""


class NumpyLoopsUnavailable(RuntimeError):
    """numpy's inner loops cannot be located or do not reproduce numpy's results in this installation."""


class _UFuncHead(ctypes.Structure):
    """The leading fields of numpy's ``PyUFuncObject`` (``numpy/ufuncobject.h``), up to ``types``."""

    _fields_ = [
        ("ob_refcnt", ctypes.c_ssize_t), ("ob_type", ctypes.c_void_p),
        ("nin", ctypes.c_int), ("nout", ctypes.c_int), ("nargs", ctypes.c_int), ("identity", ctypes.c_int),
        ("functions", ctypes.POINTER(ctypes.c_void_p)), ("data", ctypes.POINTER(ctypes.c_void_p)),
        ("ntypes", ctypes.c_int), ("reserved1", ctypes.c_int),
        ("name", ctypes.c_char_p), ("types", ctypes.POINTER(ctypes.c_char)),
    ]


def _float64_loop(ufunc: np.ufunc) -> tuple[int, int]:
    """Address of ``ufunc``'s all-float64 inner loop and of its data pointer.

    Raises:
        NumpyLoopsUnavailable: when the struct does not look like ``ufunc`` or has no all-float64 loop.
    """
    head = _UFuncHead.from_address(id(ufunc))
    name = head.name.decode() if head.name else ""
    if name != ufunc.__name__ or (head.nin, head.nout) != (ufunc.nin, ufunc.nout) or head.ntypes != ufunc.ntypes:
        raise NumpyLoopsUnavailable(f"numpy.{ufunc.__name__}'s struct does not have the expected layout.")
    double = np.dtype(np.float64).num
    for index in range(head.ntypes):
        if all(ord(head.types[index * head.nargs + k]) == double for k in range(head.nargs)):
            function = head.functions[index]
            if not function:
                break
            return int(function), int(head.data[index] or 0)
    raise NumpyLoopsUnavailable(f"numpy.{ufunc.__name__} has no float64 inner loop in its struct.")


@intrinsic
def _call_loop(typingctx, function, data, args, dimensions, steps):  # noqa: ANN001, ANN201 - numba intrinsic
    """Call the numpy inner loop at address ``function`` (all arguments are addresses, as integers)."""
    signature = types.void(types.intp, types.intp, types.intp, types.intp, types.intp)

    def codegen(context, builder, sig, llargs):  # noqa: ANN001, ANN202 - llvmlite callback
        bytes_pointer = ir.IntType(8).as_pointer()
        intp_pointer = context.get_value_type(types.intp).as_pointer()
        loop_type = ir.FunctionType(ir.VoidType(), [bytes_pointer.as_pointer(), intp_pointer, intp_pointer,
                                                    bytes_pointer])
        loop = builder.inttoptr(llargs[0], loop_type.as_pointer())
        builder.call(loop, [builder.inttoptr(llargs[2], bytes_pointer.as_pointer()),
                            builder.inttoptr(llargs[3], intp_pointer), builder.inttoptr(llargs[4], intp_pointer),
                            builder.inttoptr(llargs[1], bytes_pointer)])
        return context.get_dummy_value()

    return signature, codegen


@njit(cache=True)
def _np_unary_n(table: np.ndarray, which: int, source: int, target: int, n: int, scratch: np.ndarray) -> None:
    """numpy's float64 loop ``which`` (e.g. :data:`EXP`) on ``n`` contiguous values at address ``source``."""
    base = scratch.ctypes.data
    scratch[0], scratch[1] = source, target  # args
    scratch[2] = n  # dimensions
    scratch[3], scratch[4] = _ITEM, _ITEM  # steps
    _call_loop(table[which], table[which + 1], base, base + 2 * _ITEM, base + 3 * _ITEM)


@njit(cache=True)
def _np_unary(table: np.ndarray, which: int, x: float, scratch: np.ndarray, values: np.ndarray) -> float:
    values[0] = x
    address = values.ctypes.data
    _np_unary_n(table, which, address, address + _ITEM, 1, scratch)
    return values[1]


@njit(cache=True)
def _np_sin(table: np.ndarray, x: float, scratch: np.ndarray, values: np.ndarray) -> float:
    """``np.sin(x)`` for one float64 (``values``: float64 scratch of length >= 3)."""
    if table[LIBM_SIN]:
        return math.sin(x)
    return _np_unary(table, SIN, x, scratch, values)


@njit(cache=True)
def _np_cos(table: np.ndarray, x: float, scratch: np.ndarray, values: np.ndarray) -> float:
    """``np.cos(x)`` for one float64 (``values``: float64 scratch of length >= 3)."""
    if table[LIBM_COS]:
        return math.cos(x)
    return _np_unary(table, COS, x, scratch, values)


@njit(cache=True)
def _np_arctan2(table: np.ndarray, y: float, x: float, scratch: np.ndarray, values: np.ndarray) -> float:
    """``np.arctan2(y, x)`` for one pair of float64 (``values``: float64 scratch of length >= 3)."""
    if table[LIBM_ARCTAN2]:
        return math.atan2(y, x)
    values[0], values[1] = y, x
    base, address = scratch.ctypes.data, values.ctypes.data
    scratch[0], scratch[1], scratch[2] = address, address + _ITEM, address + 2 * _ITEM  # args
    scratch[3] = 1  # dimensions
    scratch[4], scratch[5], scratch[6] = _ITEM, _ITEM, _ITEM  # steps
    _call_loop(table[ARCTAN2], table[ARCTAN2 + 1], base, base + 3 * _ITEM, base + 4 * _ITEM)
    return values[2]


@njit(cache=True)
def _np_arctan2_n(table: np.ndarray, y: np.ndarray, x: np.ndarray, out: np.ndarray, n: int,
                  scratch: np.ndarray) -> None:
    """``out[:n] = np.arctan2(y[:n], x[:n])`` for contiguous float64 arrays (one loop call, as numpy's)."""
    if table[LIBM_ARCTAN2]:
        for k in range(n):
            out[k] = math.atan2(y[k], x[k])
        return
    base = scratch.ctypes.data
    scratch[0], scratch[1], scratch[2] = y.ctypes.data, x.ctypes.data, out.ctypes.data  # args
    scratch[3] = n  # dimensions
    scratch[4], scratch[5], scratch[6] = _ITEM, _ITEM, _ITEM  # steps
    _call_loop(table[ARCTAN2], table[ARCTAN2 + 1], base, base + 3 * _ITEM, base + 4 * _ITEM)


@njit(cache=True)
def _np_matvec(table: np.ndarray, x: int, weight: int, out: int, rows: int, cols: int, scratch: np.ndarray) -> None:
    """``out = x @ W`` as numpy computes it, for contiguous float64 ``x`` (rows,), ``W`` (rows, cols), ``out``.

    The matmul loop gets the dimensions and strides numpy's ``x @ W`` gives it, so it takes the same branch
    (BLAS ``gemv``, or ``dot`` for one column) with the same arguments.
    """
    base = scratch.ctypes.data
    scratch[0], scratch[1], scratch[2] = x, weight, out  # args
    scratch[3], scratch[4], scratch[5], scratch[6] = 1, 1, rows, cols  # dimensions: outer, m, n, p
    scratch[7], scratch[8], scratch[9] = 0, 0, 0  # outer steps
    scratch[10], scratch[11] = rows * _ITEM, _ITEM  # x: m, n
    scratch[12], scratch[13] = cols * _ITEM, _ITEM  # W: n, p
    scratch[14], scratch[15] = cols * _ITEM, _ITEM  # out: m, p
    _call_loop(table[MATMUL], table[MATMUL + 1], base, base + 3 * _ITEM, base + 7 * _ITEM)


@njit(cache=True)
def _np_dot(table: np.ndarray, x: int, y: int, n: int, scratch: np.ndarray, values: np.ndarray) -> float:
    """``x.dot(y)`` as numpy computes it, for contiguous float64 vectors of length ``n`` at addresses x, y."""
    _np_matvec(table, x, y, values.ctypes.data, n, 1, scratch)
    return values[0]


@njit(cache=True)
def _check_unary(table: np.ndarray, which: int, x: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """numpy's loop ``which`` on every value of ``x``, one call per value (as the kernels call it)."""
    out = np.empty_like(x)
    for i in range(x.size):
        _np_unary_n(table, which, x.ctypes.data + i * _ITEM, out.ctypes.data + i * _ITEM, 1, scratch)
    return out


@njit(cache=True)
def _check_binary(table: np.ndarray, y: np.ndarray, x: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    out = np.empty_like(x)
    values = np.empty(3)
    for i in range(x.size):
        out[i] = _np_arctan2(table, y[i], x[i], scratch, values)
    return out


@njit(cache=True)
def _libm(which: int, x: np.ndarray) -> np.ndarray:
    out = np.empty_like(x)
    for i in range(x.size):
        if which == EXP:
            out[i] = math.exp(x[i])
        elif which == SIN:
            out[i] = math.sin(x[i])
        else:
            out[i] = math.cos(x[i])
    return out


@njit(cache=True)
def _libm_atan2(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    out = np.empty_like(x)
    for i in range(x.size):
        out[i] = math.atan2(y[i], x[i])
    return out


@njit(cache=True)
def _check_matvec(table: np.ndarray, xs: np.ndarray, weights: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    out = np.empty((xs.shape[0], weights.shape[2]))
    for k in range(xs.shape[0]):
        _np_matvec(table, xs[k].ctypes.data, weights[k].ctypes.data, out[k].ctypes.data, weights.shape[1],
                  weights.shape[2], scratch)
    return out


@njit(cache=True)
def _check_dot(table: np.ndarray, v: np.ndarray, scratch: np.ndarray, values: np.ndarray) -> float:
    return _np_dot(table, v.ctypes.data, v.ctypes.data, v.size, scratch, values)


_CHECK_SAMPLES = 4096
"""Arguments per function in the start-up check (numpy against its looked-up loop, and against the C library)."""


@functools.cache
def numpy_loops() -> np.ndarray:
    """The int64 table of numpy's float64 loops and of the C-library flags, checked against numpy.

    Raises:
        NumpyLoopsUnavailable: when a loop cannot be found or does not reproduce numpy's own results.
    """
    table = np.zeros(_TABLE_SIZE, dtype=np.int64)
    for offset, ufunc in ((EXP, np.exp), (SIN, np.sin), (COS, np.cos), (ARCTAN2, np.arctan2), (MATMUL, np.matmul)):
        table[offset], table[offset + 1] = _float64_loop(ufunc)
    scratch = np.zeros(SCRATCH_SIZE, dtype=np.intp)
    rng = np.random.default_rng(0)
    # wide and narrow ranges: the kernels take exp of pre-activations and trig of headings / joint angles
    x = np.concatenate([rng.uniform(-40.0, 40.0, _CHECK_SAMPLES // 2), rng.uniform(-4.0, 4.0, _CHECK_SAMPLES // 2)])
    y = rng.uniform(-700.0, 700.0, x.size)
    for offset, ufunc in ((EXP, np.exp), (SIN, np.sin), (COS, np.cos)):
        expected = ufunc(x)
        scalars = np.array([ufunc(np.float64(v)) for v in x[:256]])
        if not (np.array_equal(_check_unary(table, offset, x, scratch), expected)
                and np.array_equal(scalars, expected[:256])):
            raise NumpyLoopsUnavailable(f"numpy.{ufunc.__name__}'s loop does not reproduce numpy's results.")
        table[LIBM_EXP + offset // 2] = int(np.array_equal(_libm(offset, x), expected))
    expected = np.arctan2(y, x)
    scalars = np.array([np.arctan2(np.float64(b), np.float64(a)) for b, a in zip(y[:256], x[:256])])
    check = table.copy()
    check[LIBM_ARCTAN2] = 0
    if not (np.array_equal(_check_binary(check, y, x, scratch), expected) and np.array_equal(scalars, expected[:256])):
        raise NumpyLoopsUnavailable("numpy.arctan2's loop does not reproduce numpy's results.")
    table[LIBM_ARCTAN2] = int(np.array_equal(_libm_atan2(y, x), expected))
    for rows, cols in ((5, 5), (5, 2), (20, 5), (5, 20), (29, 10), (10, 8), (2, 1)):
        xs, weights = rng.uniform(-3.0, 3.0, (64, rows)), rng.uniform(-1.0, 1.0, (64, rows, cols))
        expected = np.stack([xs[k] @ weights[k] for k in range(len(xs))])
        if not np.array_equal(_check_matvec(table, xs, weights, scratch), expected):
            raise NumpyLoopsUnavailable("numpy.matmul's loop does not reproduce numpy's x @ W.")
    values = np.empty(3)
    for n in (2, 3, 20):
        v = rng.uniform(-2.0, 2.0, n)
        if _check_dot(table, v, scratch, values) != v.dot(v):
            raise NumpyLoopsUnavailable("numpy.matmul's loop does not reproduce numpy's v.dot(v).")
    return table
