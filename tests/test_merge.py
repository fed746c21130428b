"""max_activation.merge and scan_part: partial scans of disjoint parts of a data set, merged.

The reference is a brute force written independently of the package: Python's ``sorted`` with the
key (-value, id) for High and (value, id) for Low, on every example of the union. Values are drawn
from a few integers, so ties are frequent and the tie rule (lower id first) is exercised.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cnn_helper import max_activation as ma
from cnn_helper.max_activation import Examples, LayerScan


def brute_force(values, locations, ids, count) -> LayerScan:
    """The scan of examples ``ids`` (values (C, n), locations (C, n, 2)) by sorting each channel."""
    high, low = [], []
    for c in range(values.shape[0]):
        rows = list(range(values.shape[1]))
        high.append(sorted(rows, key=lambda j: (-values[c, j], ids[j]))[:count])
        low.append(sorted(rows, key=lambda j: (values[c, j], ids[j]))[:count])

    def side(order):
        order = np.array(order, dtype=np.int64).reshape(values.shape[0], -1)
        return Examples(np.asarray(ids)[order], np.take_along_axis(values, order, 1),
                        np.take_along_axis(locations, order[:, :, None], 1))

    return LayerScan("conv", "max", len(ids), side(high), side(low))


def assert_same(a: LayerScan, b: LayerScan):
    assert a.n_scanned == b.n_scanned
    for x, y in ((a.high, b.high), (a.low, b.low)):
        np.testing.assert_array_equal(x.indices, y.indices)
        np.testing.assert_array_equal(x.values, y.values)
        np.testing.assert_array_equal(x.locations, y.locations)


@st.composite
def split_data(draw):
    """Values with ties for n examples and C channels, distinct ids, and a split in 3 parts."""
    n = draw(st.integers(3, 24))
    channels = draw(st.integers(1, 3))
    seed = draw(st.integers(0, 2 ** 31 - 1))
    rng = np.random.default_rng(seed)
    values = rng.integers(-2, 3, size=(channels, n)).astype(np.float32)
    locations = rng.integers(0, 5, size=(channels, n, 2))
    ids = rng.choice(10 * n, size=n, replace=False)
    cuts = np.sort(rng.choice(np.arange(1, n), size=2, replace=False))
    return values, locations, ids, np.split(rng.permutation(n), cuts), draw(st.integers(1, 6))


@settings(max_examples=60, deadline=None)
@given(split_data())
def test_merge_is_associative_commutative_and_exact(case):
    values, locations, ids, parts, count = case
    a, b, c = (brute_force(values[:, p], locations[:, p], ids[p], count) for p in parts)
    whole = brute_force(values, locations, ids, count)
    assert_same(ma.merge(a, b, count), ma.merge(b, a, count))
    left = ma.merge(ma.merge(a, b, count), c, count)
    assert_same(left, ma.merge(a, ma.merge(b, c, count), count))
    assert_same(left, ma.merge(ma.merge(c, a, count), b, count))
    assert_same(left, whole)


def test_merge_default_count_and_dicts():
    rng = np.random.default_rng(0)
    values = rng.integers(0, 3, size=(2, 30)).astype(np.float32)
    locations, ids = rng.integers(0, 4, size=(2, 30, 2)), np.arange(30)
    cut = brute_force(values[:, :20], locations[:, :20], ids[:20], 4)     # keeps 4 of 20: cut
    short = brute_force(values[:, 20:23], locations[:, 20:23], ids[20:23], 4)   # keeps all 3
    assert_same(ma.merge(cut, short), brute_force(values[:, :23], locations[:, :23], ids[:23], 4))
    both = ma.merge({"conv": short}, {"conv": brute_force(values[:, 23:], locations[:, 23:],
                                                             ids[23:], 7)})
    assert both["conv"].count == 10                   # no part was cut: all 3 + 7 kept
    assert_same(both["conv"], brute_force(values[:, 20:], locations[:, 20:], ids[20:], 10))


def test_merge_refuses_what_it_cannot_merge():
    rng = np.random.default_rng(1)
    values, locations = rng.normal(size=(2, 10)).astype(np.float32), np.zeros((2, 10, 2), int)
    a = brute_force(values[:, :5], locations[:, :5], np.arange(5), 2)
    b = brute_force(values[:, 5:], locations[:, 5:], np.arange(5, 10), 3)
    with pytest.raises(ValueError, match="different counts"):
        ma.merge(a, b)
    with pytest.raises(ValueError, match="keeps only its top 2"):
        ma.merge(a, b, count=3)
    with pytest.raises(ValueError, match=r"examples \[.*\] are in both parts"):
        ma.merge(a, a, count=2)
    with pytest.raises(ValueError, match="scan different features"):
        ma.merge(a, LayerScan("other", "max", 5, b.high, b.low), count=2)
    with pytest.raises(TypeError, match="b must be a LayerScan"):
        ma.merge(a, "b")
    with pytest.raises(ValueError, match="same layers"):
        ma.merge({"conv": a}, {"conv2": b})


def test_scan_parts_with_ids_merge_to_the_scan(shipped_cnn, bundled):
    """Parts of real data, their examples given ids (ascending with the position, so that ties,
    frequent on the Low side where ReLU maps are 0, are ranked alike), scanned part by part
    and merged in another order: the scan of the whole, its positions mapped to the ids."""
    (x, _), _ = bundled
    x = x[:700]
    layers = ["conv1", "conv3"]
    whole = ma.scan(shipped_cnn, x, layers, count=5, batch_size=128, progress=False)
    ids = np.sort(np.random.default_rng(0).choice(10_000, size=700, replace=False))
    cuts = [slice(0, 3), slice(3, 400), slice(400, 700)]
    parts = [ma.scan_part(shipped_cnn, x[s], ids[s], layers, count=5, batch_size=64)
             for s in cuts]
    merged = ma.merge(ma.merge(parts[2], parts[0], count=5), parts[1], count=5)
    for name in layers:
        assert merged[name].n_scanned == 700
        for got, ref in ((merged[name].high, whole[name].high), (merged[name].low,
                                                                  whole[name].low)):
            np.testing.assert_array_equal(got.indices, ids[ref.indices])
            np.testing.assert_array_equal(got.values, ref.values)
            np.testing.assert_array_equal(got.locations, ref.locations)


def test_scan_part_errors(shipped_cnn, bundled):
    (x, _), _ = bundled
    with pytest.raises(ValueError, match="ids must be distinct"):
        ma.scan_part(shipped_cnn, x[:3], [1, 1, 2], "conv1")
    with pytest.raises(ValueError, match="one id per example"):
        ma.scan_part(shipped_cnn, x[:3], [1, 2], "conv1")
    with pytest.raises(TypeError, match="ids must be integers"):
        ma.scan_part(shipped_cnn, x[:2], [0.5, 1.5], "conv1")
    with pytest.raises(ValueError, match="one image"):
        ma.scan_part(shipped_cnn, x[0], [0], "conv1")
