"""Exact products (index.exact): whatever the kernel, the order or the batch, the same bits as the exact dot
product of the snapped vectors."""

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from escotag.encoders import l2_normalize
from escotag.index import exact


def _unit(rng, n, dims):
    return l2_normalize(rng.standard_normal((n, dims)).astype(np.float32))


@pytest.mark.parametrize("dims", [192, 384, 768, 1024])
def test_products_on_the_grid_are_exact_in_any_shape(dims):
    rng = np.random.default_rng(dims)
    views, queries = exact.stored(_unit(rng, 3000, dims)), exact.queries(_unit(rng, 67, dims))
    truth = (views.astype(np.float64) @ queries.T.astype(np.float64)).astype(np.float32)  # exact in float64 too
    for threads in (1, None):
        with threadpool_limits(threads, user_api="blas"):
            np.testing.assert_array_equal(views @ queries.T, truth)
            np.testing.assert_array_equal(queries @ views.T, truth.T)
            np.testing.assert_array_equal(views @ queries[5], truth[:, 5])  # matrix-vector: another routine
            np.testing.assert_array_equal(views @ queries[::-1].T, truth[:, ::-1])
    original = _unit(rng, 200, dims)
    assert np.abs((exact.queries(original) * original).sum(1) - 1).max() < 1e-3  # snapping barely moves a vector
    np.testing.assert_array_equal(exact.stored(views), views)  # idempotent: cached views stay as they are


def test_scaled_columns_of_any_norm():
    rng = np.random.default_rng(1)
    weights = rng.standard_normal((192, 500)).astype(np.float32) * rng.uniform(0.01, 40, 500).astype(np.float32)
    scaled = exact.Scaled(weights)
    assert set(np.log2(scaled.scale)) <= set(range(0, 12)) and scaled.scale.max() > 1
    queries = _unit(rng, 33, 192)
    got = scaled.times(queries)
    np.testing.assert_array_equal(np.concatenate([scaled.times(queries[i : i + 1]) for i in range(33)]), got)
    assert (np.abs(got - queries @ weights) <= 2e-3 * np.linalg.norm(weights, axis=0)).all()  # as cosines: ~1e-4
    with pytest.raises(ValueError, match="norm of at most 1"):
        exact.queries(queries * 2)
