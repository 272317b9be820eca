"""Products whose every bit is the same whatever the batch, the BLAS kernel or its threads.

A BLAS kernel sums a dot product in an order that depends on the matrix shapes, on where a row sits in the matrix
and on how the work is split over threads (OpenBLAS's Haswell kernel changes the last bits of a query's cosines
when other queries join it). So a score would depend on the batch it travels in. Here both factors lie on a
fixed-point grid instead: stored vectors (norm at most 1 after a power-of-two scale) on multiples of 2^-VIEW_BITS,
queries (unit length) on multiples of 2^-QUERY_BITS. Every product of two grid values is then a multiple of
2^-(VIEW_BITS + QUERY_BITS), and every partial sum, whatever its order, is such a multiple below 2^24 of them
(Cauchy-Schwarz: the sum of |a_i b_i| is at most |a| |b| <= 1 + rounding), so float32 holds it exactly: any kernel
returns the exact dot product of the two grid vectors. Snapping moves a cosine by about 1e-4 (standard deviation;
storing vectors as float16 would move it more).
"""

from __future__ import annotations

import numpy as np

VIEW_BITS = 12
QUERY_BITS = 11
# room for the norm that rounding adds (at most 0.5 * 2^-11 * sqrt(dims): 0.008 for 1,024 dims)
NORM_SLACK = 1.0 + 2.0**-6


def snap(vectors: np.ndarray, bits: int) -> np.ndarray:
    """Rows of norm at most ~1 rounded to multiples of 2^-bits (float32); a larger row is an error."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.size and float(np.max(np.einsum("ij,ij->i", vectors, vectors, dtype=np.float64))) > NORM_SLACK**2:
        raise ValueError("rows on the exact grid need a norm of at most 1 (scale them first: exact.Scaled)")
    step = np.float32(2.0**bits)
    return np.rint(vectors * step) / step


def queries(vectors: np.ndarray) -> np.ndarray:
    """Unit-length query rows on the query grid."""
    return snap(vectors, QUERY_BITS)


def stored(vectors: np.ndarray) -> np.ndarray:
    """Unit-length stored rows (index views) on the stored grid; idempotent."""
    return snap(vectors, VIEW_BITS)


class Scaled:
    """Columns of any norm (a classifier head's weights, a projection basis) for exact products with unit-length
    queries: each column scaled by a power of two to a norm of at most 1 and snapped, scaled back after the product
    (a power of two: exact)."""

    def __init__(self, columns: np.ndarray) -> None:
        columns = np.asarray(columns, dtype=np.float32)
        norms = np.linalg.norm(columns.astype(np.float64), axis=0)
        exponents = np.ceil(np.log2(np.maximum(norms, 2.0**-60) / NORM_SLACK)).astype(np.int32)
        exponents = np.maximum(exponents, 0)  # columns shorter than 1 stay as they are
        self.scale = np.ldexp(np.ones(len(norms), dtype=np.float32), exponents)
        self.columns = np.ascontiguousarray(stored((columns / self.scale).T).T)

    def times(self, vectors: np.ndarray) -> np.ndarray:
        """unit-length vectors @ the columns, exactly (as the snapped columns hold them)."""
        return (queries(vectors) @ self.columns) * self.scale
