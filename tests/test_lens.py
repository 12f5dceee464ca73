"""The lens as a pure function (SPEC section 1), on synthetic and real maps."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from alens_gui.core.errors import ClassSetError, LensError
from alens_gui.core.lens import (
    AL,
    NORMALIZE_CHOICES,
    SOFTMAX_INPUT_CHOICES,
    TIE_MARGIN,
    VAR,
    LensParams,
    preset,
    refine,
)


def reference(base: np.ndarray, params: LensParams = AL) -> tuple[np.ndarray, np.ndarray]:
    """SPEC section 1, steps 2-4, written out plainly in float64: (distribution, refined)."""
    a = np.asarray(base, dtype=np.float64)
    if params.softmax_input == "abs":
        a = np.abs(a)
    if params.normalize == "joint-maxabs" and np.abs(a).max() > 0:
        a = a / np.abs(a).max()
    s = np.zeros_like(a)
    for t in params.temperatures:
        z = a / t
        e = np.exp(z - z.max(axis=0))
        s += e / e.sum(axis=0)
    s /= len(params.temperatures)
    keep = s > 1.0 / a.shape[0] + params.tau + TIE_MARGIN
    return s, np.asarray(base, dtype=np.float64) * s * keep


def threshold(k: int, params: LensParams) -> float:
    return 1.0 / k + params.tau + TIE_MARGIN


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


LENS_VARIANTS = {
    "al": AL,
    "al-joint-maxabs": AL.with_(normalize="joint-maxabs"),
    "al-abs": AL.with_(softmax_input="abs"),
    "one-temperature": LensParams(temperatures=(0.1,), tau=0.0),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("lens", list(LENS_VARIANTS))
@pytest.mark.parametrize("kind", ["identical", "zeros"])
@pytest.mark.parametrize("k", [2, 3, 5, 10, 20])
def test_a_tie_keeps_nothing(rng, k, kind, lens, dtype):
    """K equal maps: S is 1/K plus rounding everywhere, and no pixel is above chance (SPEC 1.4)."""
    one = rng.normal(size=(24, 32)) * 5 if kind == "identical" else np.zeros((24, 32))
    base = np.broadcast_to(one, (k, 24, 32)).astype(dtype)
    out = refine(base, LENS_VARIANTS[lens])
    np.testing.assert_allclose(out.distribution, 1.0 / k, atol=1e-7)
    assert not out.refined.any()
    assert out.refined.dtype == dtype


@pytest.mark.parametrize("k", [2, 3, 5, 10, 20])
def test_a_real_gap_above_the_margin_is_kept(k):
    """One class ahead by 0.01 (logit 1 at t = 0.01) wins its pixel; the tie beside it keeps nothing."""
    base = np.zeros((k, 2, 2), np.float32)
    base[0, 0, 0] = 0.01
    out = refine(base)
    assert out.refined[0, 0, 0] > 0 and np.count_nonzero(out.refined) == 1
    assert out.distribution[0, 0, 0] > threshold(k, AL) + 1e-3


@pytest.mark.parametrize("lens", list(LENS_VARIANTS))
@pytest.mark.parametrize("scale", [1e-3, 0.1, 1.0, 30.0, 1e4])
def test_float32_lens_matches_the_float64_formula(rng, lens, scale):
    """The fast float32 path gives the SPEC formula's float64 results to 1e-6."""
    params = LENS_VARIANTS[lens]
    base = (rng.normal(size=(10, 64, 64)) * scale).astype(np.float32)
    out = refine(base, params)
    s64, r64 = reference(base, params)
    assert out.distribution.dtype == out.refined.dtype == np.float32
    np.testing.assert_allclose(out.distribution, s64, atol=1e-6, rtol=0)
    # a pixel within rounding of the threshold may fall either way; there are few
    clear = np.abs(s64 - threshold(10, params)) > 1e-6
    assert clear.mean() > 0.99
    np.testing.assert_allclose(out.refined[clear], r64[clear], atol=1e-6 * np.abs(base).max(), rtol=0)
    # float64 maps run in float64
    out64 = refine(base.astype(np.float64), params)
    np.testing.assert_allclose(out64.distribution, s64, atol=1e-12, rtol=0)


def test_torch_in_torch_out_numpy_in_numpy_out_and_the_input_is_untouched(rng):
    base = rng.normal(size=(3, 8, 8)).astype(np.float32)
    keep = base.copy()
    out = refine(base)
    assert all(isinstance(v, np.ndarray) for v in out)
    np.testing.assert_array_equal(base, keep)
    t = torch.from_numpy(base.copy())
    tout = refine(t)
    assert all(isinstance(v, torch.Tensor) for v in tout)
    torch.testing.assert_close(t, torch.from_numpy(keep), atol=0, rtol=0)
    np.testing.assert_array_equal(tout.refined.numpy(), out.refined)
    half = refine(t.half())
    assert half.refined.dtype == torch.float16 and half.distribution.dtype == torch.float16
    ints = refine(np.arange(2 * 3 * 3).reshape(2, 3, 3))
    assert ints.distribution.dtype == np.float32


def test_tiny_temperatures_and_huge_maps_stay_finite():
    base = np.array([[[3e38]], [[-3e38]], [[3e38]]], np.float32)
    out = refine(base, temperatures=(1e-30,))
    assert np.isfinite(out.distribution).all() and np.isfinite(out.refined).all()
    np.testing.assert_allclose(out.distribution[:, 0, 0], [0.5, 0.0, 0.5], atol=1e-30)  # the winners share it
    out = refine(np.array([[[1e-45]], [[0.0]]], np.float32), temperatures=(1e-300,), normalize="joint-maxabs")
    np.testing.assert_allclose(out.distribution[:, 0, 0], [1.0, 0.0], atol=1e-30)


# ---------------------------------------------------------------------------------
# Properties over random maps (hypothesis)
# ---------------------------------------------------------------------------------
_values = st.one_of(st.sampled_from([0.0, 1.0, -2.0]), st.floats(-30, 30, width=32))  # ties come up often


@st.composite
def maps_and_params(draw):
    k = draw(st.integers(2, 8))
    shape = (k, draw(st.integers(1, 6)), draw(st.integers(1, 6)))
    base = draw(hnp.arrays(np.float32, shape, elements=_values))
    temps = draw(st.one_of(st.just(AL.temperatures), st.just(VAR.temperatures),
                           st.lists(st.floats(0.01, 10.0), min_size=1, max_size=4)))
    params = LensParams(temperatures=tuple(temps), tau=draw(st.floats(-0.1, 0.3)),
                        normalize=draw(st.sampled_from(NORMALIZE_CHOICES)),
                        softmax_input=draw(st.sampled_from(SOFTMAX_INPUT_CHOICES)))
    return base, params


PROPERTY_SETTINGS = settings(max_examples=150, deadline=None)


@PROPERTY_SETTINGS
@given(maps_and_params())
def test_property_distribution_sums_to_one(case):
    base, params = case
    s = refine(base, params).distribution
    assert np.all(s >= 0) and np.all(s <= 1)
    np.testing.assert_allclose(s.sum(axis=0), 1.0, atol=1e-5)


@PROPERTY_SETTINGS
@given(maps_and_params())
def test_property_refined_is_zero_exactly_where_s_is_not_above_chance(case):
    base, params = case
    out = refine(base, params)
    above = out.distribution > np.float32(threshold(base.shape[0], params))
    assert not out.refined[~above].any()
    np.testing.assert_array_equal(out.refined[above], (base * out.distribution)[above])


@PROPERTY_SETTINGS
@given(maps_and_params(), st.randoms(use_true_random=False))
def test_property_permuting_the_classes_permutes_the_outputs(case, rnd):
    base, params = case
    perm = list(range(base.shape[0]))
    rnd.shuffle(perm)
    out, pout = refine(base, params), refine(base[perm], params)
    np.testing.assert_allclose(pout.distribution, out.distribution[perm], atol=1e-6)
    np.testing.assert_array_equal(pout.base, base[perm])
    clear = np.abs(out.distribution[perm] - threshold(base.shape[0], params)) > 1e-5
    np.testing.assert_allclose(pout.refined[clear], out.refined[perm][clear], rtol=1e-5, atol=1e-6)


@PROPERTY_SETTINGS
@given(maps_and_params(), st.floats(1e-3, 1e3))
def test_property_joint_maxabs_ignores_a_common_scale(case, c):
    base, params = case
    nonzero = np.abs(base[base != 0])
    assume(nonzero.size == 0 or nonzero.min() > 1e-30)  # c * base must not underflow in float32
    params = params.with_(normalize="joint-maxabs")
    out, scaled = refine(base, params), refine(base * np.float32(c), params)
    np.testing.assert_allclose(scaled.distribution, out.distribution, atol=1e-5)
    clear = np.abs(out.distribution - threshold(base.shape[0], params)) > 1e-4
    np.testing.assert_allclose(scaled.refined[clear], c * out.refined[clear], rtol=1e-4,
                               atol=1e-6 * c * float(np.abs(base).max()))


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
