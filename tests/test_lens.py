"""The lens as a pure function (SPEC section 1), on synthetic and real maps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from alens_gui.core.errors import ClassSetError, LensError
from alens_gui.core.lens import AL, VAR, LensParams, preset, refine


def test_distribution_sums_to_one_and_refined_masks_below_chance(rng):
    base = rng.normal(size=(4, 32, 40)).astype(np.float32)
    out = refine(base)
    assert out.distribution.shape == base.shape
    np.testing.assert_allclose(out.distribution.sum(axis=0), 1.0, atol=1e-5)
    kept = out.refined != 0
    assert np.all(out.distribution[kept] > 0.25)
    assert np.all(out.refined[out.distribution <= 0.25] == 0)
    np.testing.assert_allclose(out.refined[kept], (base * out.distribution)[kept], rtol=1e-5)


def test_formula_matches_spec_exactly():
    a = torch.tensor([[[2.0]], [[1.0]], [[-1.0]]])
    temps = (1.0, 0.2, 0.01)
    expected = sum(torch.softmax(a.double() / t, dim=0) for t in temps) / 3
    out = refine(a, temperatures=temps)
    torch.testing.assert_close(out.distribution.double(), expected, rtol=1e-6, atol=1e-6)
    keep = expected > 1 / 3
    torch.testing.assert_close(out.refined.double(), a.double() * expected * keep, rtol=1e-6, atol=1e-6)
    assert out.refined[0, 0, 0] > 0 and out.refined[2, 0, 0] == 0


def test_tau_removes_more_pixels(rng):
    base = rng.normal(size=(3, 16, 16))
    n0 = np.count_nonzero(refine(base, tau=0.0).refined)
    n1 = np.count_nonzero(refine(base, tau=0.2).refined)
    assert n1 < n0


def test_presets():
    assert AL.temperatures == (1.0, 0.2, 0.01) and AL.tau == 0.0
    assert VAR.temperatures == (0.1,) and VAR.tau == 0.01
    assert preset("VAR") == VAR
    with pytest.raises(LensError, match="unknown lens preset"):
        preset("sharp")


def test_joint_maxabs_is_scale_invariant(rng):
    base = rng.normal(size=(3, 8, 8))
    a = refine(base, normalize="joint-maxabs").distribution
    b = refine(base * 1e4, normalize="joint-maxabs").distribution
    np.testing.assert_allclose(a, b, atol=1e-6)
    # without normalisation the scale changes the competition
    c = refine(base * 1e4, normalize="none").distribution
    assert not np.allclose(a, c, atol=1e-3)


def test_abs_softmax_input(rng):
    base = -np.abs(rng.normal(size=(2, 8, 8)))
    signed = refine(base, softmax_input="signed").distribution
    absd = refine(base, softmax_input="abs").distribution
    # the more negative class wins under abs and loses under signed
    more_negative = base[0] < base[1]
    assert np.all((signed[0] < 0.5)[more_negative])
    assert np.all((absd[0] > 0.5)[more_negative])


def test_channel_reduction():
    base = np.zeros((2, 3, 4, 4), np.float32)
    base[0, 0] = 1.0
    base[0, 1] = -2.0
    out_sum = refine(base, reduce="sum")
    out_abs = refine(base, reduce="abs-sum")
    assert out_sum.base.shape == (2, 4, 4)
    assert out_sum.base[0, 0, 0] == -1.0 and out_abs.base[0, 0, 0] == 3.0
    out_none = refine(base, reduce="none")
    assert out_none.distribution.shape == (2, 3, 4, 4)
    np.testing.assert_allclose(out_none.distribution.sum(0), 1.0, atol=1e-6)


def test_all_zero_and_identical_maps_have_defined_results():
    zeros = np.zeros((3, 5, 5), np.float32)
    out = refine(zeros)
    np.testing.assert_allclose(out.distribution, 1 / 3, atol=1e-6)
    assert not out.refined.any()
    same = np.ones((3, 5, 5), np.float32)
    assert not refine(same).refined.any()  # ties are not above chance


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((1, 4, 4)), "at least two classes"),
        (np.zeros((4, 4)), "shape"),
        (np.zeros((2, 0, 4)), "empty"),
        (np.array([[[np.nan]], [[1.0]]]), "non-finite"),
        (np.array([[[np.inf]], [[1.0]]]), "non-finite"),
        ([np.zeros((4, 4)), np.zeros((5, 4))], "same shape"),
    ],
)
def test_bad_maps_get_clear_errors(bad, message):
    with pytest.raises(LensError, match=message):
        refine(bad)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"temperatures": (0.0,)}, "positive"),
        ({"temperatures": ()}, "at least one temperature"),
        ({"tau": 2.0}, "tau"),
        ({"normalize": "max"}, "normalize"),
        ({"softmax_input": "square"}, "softmax_input"),
    ],
)
def test_bad_parameters(kwargs, message):
    with pytest.raises(LensError, match=message):
        LensParams(**kwargs)


def test_huge_values_stay_finite():
    base = np.array([[[1e30]], [[-1e30]], [[0.0]]])
    out = refine(base)
    assert np.isfinite(out.distribution).all() and np.isfinite(out.refined).all()


def test_class_sets():
    from alens_gui.core import classsets

    p = np.array([0.1, 0.5, 0.05, 0.3, 0.05])
    assert classsets.top_k(p, 2) == [1, 3]
    assert classsets.top_k(p, 2, with_lowest=True) == [1, 3, 4]
    assert classsets.best_vs_worst(p) == [1, 4]
    with pytest.raises(ClassSetError, match="K >= 2"):
        classsets.validate_classes([3], 5)
    with pytest.raises(ClassSetError, match="out of range"):
        classsets.validate_classes([1, 7], 5)
    with pytest.raises(ClassSetError, match="more than once"):
        classsets.validate_classes([1, 1], 5)
    assert classsets.parse_classes("cat, 3", ["dog", "cat", "x", "y"]) == [1, 3]
    with pytest.raises(ClassSetError, match="unknown class"):
        classsets.parse_classes("zebra", ["dog", "cat"])
