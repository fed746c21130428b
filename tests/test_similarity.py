"""The similarity measures, computed in compiled TensorFlow steps, against their NumPy / SciPy
implementation of before (tests/similarity_reference.py, the oracle) and scikit-image: the same
numbers to float64 rounding, on ties, constant maps, NaN, small maps and several channels; and
the compiled step of the randomization traced once per shape."""
import numpy as np
import pytest
import similarity_reference as reference
from skimage.metrics import structural_similarity

from cnn_helper import sanity_checks, similarity

TOLERANCE = {"rtol": 1e-10, "atol": 1e-12}


@pytest.fixture(scope="module")
def rng():
    return np.random.default_rng(3)


def test_rank_correlations_equal_scipy_with_ties_constant_rows_and_nan(rng):
    a = np.round(rng.standard_normal((6, 50)), 1)                 # many ties
    b = rng.random((6, 50))
    a[1] = 0.0                                                     # a constant row: NaN
    a[2, :10] = -0.0                                               # -0 ties with 0
    b[3, 7] = np.nan                                               # a NaN: NaN
    for ours, oracle in [(similarity.spearman_rows, reference.spearman_rows),
                         (similarity.pearson_rows, reference.pearson_rows)]:
        np.testing.assert_allclose(ours(a, b), oracle(a, b), **TOLERANCE)
        np.testing.assert_allclose(ours(b, a), oracle(b, a), **TOLERANCE)
    assert np.isnan(similarity.spearman_rows(a, b)[[1, 3]]).all()


def test_rows_of_every_length_share_one_trace(rng):
    for length in (30, 31, 57, 12, 99):                   # e.g. the ink pixels of each image
        a, b = rng.random((1, length)), rng.random((1, length))
        assert similarity.pearson_rows(a, b) == pytest.approx(reference.pearson_rows(a, b))
    assert similarity.compiled(similarity.pearson_of, True).experimental_get_tracing_count() <= 2


@pytest.mark.parametrize("shape, data_range", [((28, 28), None), ((28, 28), 1.0), ((5, 6), None),
                                               ((9, 30), 2.5)])
def test_ssim_equals_the_reference_and_scikit_image(rng, shape, data_range):
    a, b = rng.random((4,) + shape), rng.random((4,) + shape)
    b[1] = 0.25                                                    # a constant reference
    a[2] = b[2]
    np.testing.assert_allclose(similarity.ssims(a, b, data_range),
                               reference.ssims(a, b, data_range), **TOLERANCE)
    window = min(7, min(shape) - (1 - min(shape) % 2))             # shrunk to fit small maps
    assert similarity.ssim(a[0], b[0]) == pytest.approx(
        structural_similarity(a[0], b[0], data_range=np.ptp(b[0]), win_size=window), rel=1e-10)


@pytest.mark.parametrize("shape, cell, block, orientations", [
    ((28, 28), (4, 4), (2, 2), 9), ((30, 27), (8, 8), (3, 3), 9), ((33, 40), (5, 7), (2, 3), 6),
    ((2, 9), (1, 3), (1, 2), 4)])
def test_hog_equals_the_reference(rng, shape, cell, block, orientations):
    maps = rng.random((3,) + shape)
    maps[1, :, ::2] = 0.5                            # gradients exactly on the bin edge 0
    np.testing.assert_allclose(similarity.hog(maps, orientations, cell, block),
                               reference.hog(maps, orientations, cell, block), **TOLERANCE)
    np.testing.assert_allclose(
        similarity.hog_similarity(maps, maps[::-1], orientations, cell, block),
        reference.pearson_rows(reference.hog(maps, orientations, cell, block),
                               reference.hog(maps[::-1], orientations, cell, block)), **TOLERANCE)


def _maps(rng, shape):
    """Maps with what real ones hold: exact zeros (a ReLU's), ties, one all-zero map."""
    maps = rng.standard_normal(shape) * (rng.random(shape) > 0.4)
    maps[-1] = 0.0
    return maps.astype(np.float32)


@pytest.mark.parametrize("shape", [(6, 28, 28, 1), (4, 16, 20, 3), (3, 8, 8, 1)])
def test_the_four_measures_equal_the_reference(rng, shape):
    original, maps = _maps(rng, shape), _maps(rng, shape)
    ours, oracle = sanity_checks.similarities(original, maps), reference.similarities(original,
                                                                                      maps)
    for measure in sanity_checks.MEASURES:
        np.testing.assert_allclose(ours[measure], oracle[measure], **TOLERANCE,
                                   err_msg=measure)
    assert np.isnan(ours["spearman"][-1])                          # a zero map has no order


@pytest.fixture(scope="module")
def course(bundled, shipped_cnn):
    return shipped_cnn, np.asarray(bundled[1][0][:12])


def test_model_randomization_measures_equal_the_reference(course):
    model, x = course
    r = sanity_checks.model_randomization(model, x, 8, "guided_backprop", layers=["logits",
                                                                                  "conv3"])
    for step in range(2):
        oracle = reference.similarities(r.original, r.maps[step])
        for measure in sanity_checks.MEASURES:
            np.testing.assert_allclose(getattr(r, measure)[step], oracle[measure], **TOLERANCE)


def test_the_measures_of_a_step_are_traced_once_per_shape(course):
    model, x = course
    sanity_checks.model_randomization(model, x, 8, "gradient", layers=["logits", "dense"])
    step = similarity.compiled(sanity_checks._measured)   # internal contract: the fused step
    traced = step.experimental_get_tracing_count()
    again = sanity_checks.model_randomization(model, x, 3, "gradient_x_input")
    assert step.experimental_get_tracing_count() == traced
    np.testing.assert_allclose(again.spearman[0], sanity_checks.similarities(
        again.original, again.maps[0])["spearman"], **TOLERANCE)


@pytest.mark.parametrize("call, message", [
    (lambda: similarity.spearman_rows(np.ones((2, 3)), np.ones((2, 4))), r"\(2, 3\) and \(2, 4\)"),
    (lambda: similarity.pearson_rows(np.ones(3), np.ones(3)), "rows of two arrays"),
    (lambda: similarity.hog(np.ones((4, 8, 8)), pixels_per_cell=0), "pixels_per_cell"),
    (lambda: similarity.hog(np.ones((4, 8, 8)), orientations=2.5), "orientations"),
    (lambda: similarity.hog(np.ones((4, 8, 8))), "too small"),
    (lambda: similarity.ssims(np.ones((2, 8, 8)), np.ones((2, 8, 7))), "same shape"),
    (lambda: sanity_checks.similarities(np.ones((2, 8, 8, 1)), np.ones((2, 8, 7, 1))), "differ"),
    (lambda: sanity_checks.similarities(np.ones((2, 8, 8)), np.ones((2, 8, 8))), r"\(N, H, W, C\)"),
])
def test_bad_input_is_refused_by_name(call, message):
    with pytest.raises(ValueError, match=message):
        call()
