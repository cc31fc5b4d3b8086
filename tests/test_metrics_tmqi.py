"""TMQI (Yeganeh & Wang 2013): known answers, the literal MATLAB transcription, properties, layouts, errors."""

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import beta as beta_dist

from hdrkit.errors import HdrkitError
from hdrkit.metrics import TONE_MAPPING_METRICS, TMQIScore, tmqi, tmqi_score
from hdrkit.metrics.tmqi import (
    NATURAL_MEAN,
    NATURAL_MEAN_SD,
    NATURAL_STD_BETA,
    NATURAL_STD_SCALE,
    TMQI_A,
    TMQI_ALPHA,
    TMQI_BETA,
    TMQI_MIN_SIZE,
    _gaussian_taps,
    _local_moments,
    csf_mannos,
    statistical_naturalness,
    structural_fidelity,
)

_spec = importlib.util.spec_from_file_location("tmqi_reference", Path(__file__).parent / "reference" / "tmqi_reference.py")
ref = importlib.util.module_from_spec(_spec)
sys.modules["tmqi_reference"] = ref
_spec.loader.exec_module(ref)

# Frozen output of `python tests/reference/tmqi_reference.py` (the literal numpy/scipy transcription of
# TMQI.m, no hdrkit code) on `tmqi_reference.known_pair()`: a 181x203 textured, tinted HDR scene over
# ~12 stops and its Reinhard-global / gamma 2.2 tone map.
KNOWN_Q = 0.878952788640892
KNOWN_S = 0.8641322219202912
KNOWN_N = 0.4484854783199365
KNOWN_S_LEVELS = (0.924474645147458, 0.9045656069579913, 0.9048643138243437, 0.8526299208007067, 0.7071440254459581)

MODE_SD = NATURAL_STD_SCALE * (NATURAL_STD_BETA[0] - 1) / (sum(NATURAL_STD_BETA) - 2)


def known_pair_torch():
    hdr, ldr = ref.known_pair()
    return torch.from_numpy(hdr).permute(2, 0, 1), torch.from_numpy(ldr).permute(2, 0, 1)


def block_image(mean, sd, blocks=(3, 4)):
    """(1, 1, 11 bh, 11 bw) luminance whose every 11x11 block has this mean and sample sd (60 up, 60 down, 1 at the mean)."""
    vals = np.full(121, float(mean))
    vals[:60] += sd
    vals[60:120] -= sd
    block = vals.reshape(11, 11)
    return torch.from_numpy(np.tile(block, blocks))[None, None]


def textured_scene(h=192, w=224, seed=0, stops=1.0):
    """(3, h, w) float64 HDR with contrast at every scale of the TMQI pyramid (1/f-like log luminance).

    ``stops`` scales the log2 amplitudes (1: about 20 stops from darkest to brightest)."""
    g = torch.Generator().manual_seed(seed)
    log2_lum = torch.zeros(1, 1, h, w, dtype=torch.float64)
    for cells, amp in ((4, 3.0), (8, 2.0), (16, 1.5), (32, 1.0), (64, 0.8), (128, 0.6)):
        noise = torch.randn(1, 1, cells, cells, generator=g, dtype=torch.float64)
        log2_lum += stops * amp * torch.nn.functional.interpolate(noise, size=(h, w), mode="bicubic", align_corners=False)
    tint = torch.tensor([1.1, 1.0, 0.8], dtype=torch.float64).view(3, 1, 1)
    return torch.exp2(log2_lum[0]) * tint


def simple_tonemap(hdr, key=0.18, gamma=2.2):
    """Reinhard global L / (1 + L) after a key, colour by ratio, gamma: (3, H, W) -> (3, H, W) in [0, 1]."""
    lum = (hdr * torch.tensor([0.2126, 0.7152, 0.0722], dtype=hdr.dtype).view(3, 1, 1)).sum(0, keepdim=True)
    lm = key / torch.exp(torch.log(lum).mean()) * lum
    return (hdr * (lm / (1 + lm) / lum)).clamp(0, 1) ** (1 / gamma)


def test_known_pair_frozen_reference():
    hdr, ldr = known_pair_torch()
    r = tmqi_score(hdr, ldr)
    assert isinstance(r, TMQIScore)
    assert r.q == pytest.approx(KNOWN_Q, abs=1e-9)
    assert r.s == pytest.approx(KNOWN_S, abs=1e-9)
    assert r.n == pytest.approx(KNOWN_N, abs=1e-9)
    assert r.s_levels == pytest.approx(KNOWN_S_LEVELS, abs=1e-9)
    assert tmqi(hdr, ldr) == pytest.approx(KNOWN_Q, abs=1e-9)
    # and the combination rule with the published constants
    assert r.q == pytest.approx(0.8012 * r.s**0.3046 + 0.1988 * r.n**0.7088, abs=1e-12)


def test_reference_script_still_gives_the_frozen_numbers():
    q, s, n, s_local = ref.tmqi(*ref.known_pair())
    assert (q, s, n) == pytest.approx((KNOWN_Q, KNOWN_S, KNOWN_N), abs=1e-12)
    assert tuple(s_local) == pytest.approx(KNOWN_S_LEVELS, abs=1e-12)


@pytest.mark.parametrize("size,gamma,key", [((161, 161), 2.2, 0.18), ((200, 175), 1.0, 0.09), ((176, 230), 3.0, 0.5)])
def test_matches_literal_matlab_transcription(size, gamma, key):
    hdr = textured_scene(*size, seed=sum(size))
    ldr = simple_tonemap(hdr, key, gamma)
    ours = tmqi_score(hdr, ldr)
    q, s, n, s_local = ref.tmqi(hdr.permute(1, 2, 0).numpy(), ldr.permute(1, 2, 0).numpy())
    assert ours.q == pytest.approx(q, abs=1e-8)
    assert ours.s == pytest.approx(s, abs=1e-8)
    assert ours.n == pytest.approx(n, abs=1e-10)
    assert ours.s_levels == pytest.approx(tuple(s_local), abs=1e-8)


def test_published_constants():
    assert (TMQI_A, TMQI_ALPHA, TMQI_BETA) == (0.8012, 0.3046, 0.7088)
    assert (NATURAL_MEAN, NATURAL_MEAN_SD, NATURAL_STD_BETA, NATURAL_STD_SCALE) == (115.94, 27.99, (4.4, 10.1), 64.29)
    # Mannos CSF as TMQI.m writes it, at the finest scale's 16 cycles/degree
    assert csf_mannos(16.0) == pytest.approx(100 * 2.6 * (0.0192 + 0.114 * 16) * math.exp(-((0.114 * 16) ** 1.1)))
    assert TMQI_MIN_SIZE == 161


def test_naturalness_peaks_at_the_published_mean_and_mode():
    assert MODE_SD == pytest.approx(17.487, abs=1e-3)
    assert float(statistical_naturalness(block_image(NATURAL_MEAN, MODE_SD))[0]) == pytest.approx(1.0, abs=1e-12)
    # one sd of the brightness Gaussian away: exp(-1/2)
    off_mean = float(statistical_naturalness(block_image(NATURAL_MEAN + NATURAL_MEAN_SD, MODE_SD))[0])
    assert off_mean == pytest.approx(math.exp(-0.5), abs=1e-12)
    # contrast away from the mode: the Beta(4.4, 10.1) density ratio (scipy, not our closed form)
    for sd in (5.0, 30.0, 50.0):
        expected = beta_dist.pdf(sd / 64.29, 4.4, 10.1) / beta_dist.pdf(3.4 / 12.5, 4.4, 10.1)
        assert float(statistical_naturalness(block_image(NATURAL_MEAN, sd))[0]) == pytest.approx(expected, rel=1e-9)
    # a flat image and an image whose block sd is beyond the Beta support score 0
    assert float(statistical_naturalness(block_image(NATURAL_MEAN, 0.0))[0]) == 0.0
    assert float(statistical_naturalness(block_image(127.5, 70.0))[0]) == 0.0


def test_naturalness_zero_pads_partial_blocks_like_blkproc():
    c = 100.0
    img = torch.full((1, 1, 11, 13), c, dtype=torch.float64)
    # block 1: constant (sd 0); block 2: 22 pixels of c and 99 zeros of padding, sample sd c * sqrt(18 / 120)
    d = (0.0 + c * math.sqrt(18 / 120)) / 2
    x, m = d / 64.29, 3.4 / 12.5
    expected = (x / m) ** 3.4 * ((1 - x) / (1 - m)) ** 9.1 * math.exp(-0.5 * ((c - 115.94) / 27.99) ** 2)
    assert float(statistical_naturalness(img)[0]) == pytest.approx(expected, rel=1e-12)


def test_identical_structure_scores_near_one():
    hdr = textured_scene(seed=3, stops=0.25)  # a low-contrast scene, so a linear display map shows all of it
    lum = (hdr * torch.tensor([0.2126, 0.7152, 0.0722], dtype=hdr.dtype).view(3, 1, 1)).sum(0, keepdim=True)
    # LDR luminance an increasing affine function of HDR luminance: correlation 1 in every window
    ldr = (0.05 + 0.9 * lum / lum.max()).expand(3, -1, -1)
    r = tmqi_score(hdr, ldr)
    assert r.s > 0.97 and min(r.s_levels) > 0.95
    assert r.q >= TMQI_A * r.s**TMQI_ALPHA


def test_stable_local_moments_on_flat_bright_regions():
    """A flat region at the top of the 2^32 HDR scale has zero local deviation (E[x^2] - E[x]^2 gives ~100 there)."""
    g = _gaussian_taps(torch.device("cpu"))
    x = torch.full((1, 1, 40, 40), 4294967295.0 * 0.937, dtype=torch.float64)
    var_x, var_y, cov = _local_moments(x, x.clone(), g)
    assert var_x.abs().max() < 1e-3 and cov.abs().max() < 1e-3
    # while on texture the two-pass moments equal the textbook formula
    t = torch.rand(1, 1, 40, 40, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    u = 0.3 * t + torch.rand(1, 1, 40, 40, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    w = torch.outer(g, g).view(1, 1, 11, 11)
    conv = lambda z: torch.nn.functional.conv2d(z, w)  # noqa: E731
    vt, vu, ctu = _local_moments(t, u, g)
    assert torch.allclose(vt, conv(t * t) - conv(t) ** 2, atol=1e-12)
    assert torch.allclose(vu, conv(u * u) - conv(u) ** 2, atol=1e-12)
    assert torch.allclose(ctu, conv(t * u) - conv(t) * conv(u), atol=1e-12)


def test_flat_hdr_and_flat_ldr_agree_exactly():
    """Where both images are flat, every window scores (2p^2 + C1)/(2p^2 + C1) * C2/C2 = 1, also at the top
    of the 2^32 HDR scale (where E[x^2] - E[x]^2 would leave deviations of ~10 and call the HDR visible)."""
    l_hdr = torch.full((1, 1, 176, 192), 0.937 * (2.0**32 - 1), dtype=torch.float64)
    l_ldr = torch.full((1, 1, 176, 192), 200.0, dtype=torch.float64)
    s, s_levels = structural_fidelity(l_hdr, l_ldr)
    assert float(s[0]) == pytest.approx(1.0, abs=1e-12)
    assert torch.allclose(s_levels, torch.ones_like(s_levels), atol=1e-12)
    # a visible LDR texture over a flat HDR is penalised at every scale
    g = torch.Generator().manual_seed(4)
    textured = l_ldr + 20 * torch.nn.functional.interpolate(torch.randn(1, 1, 44, 48, generator=g, dtype=torch.float64),
                                                             size=(176, 192), mode="nearest")
    assert float(structural_fidelity(l_hdr, textured)[0][0]) < 0.1


def test_degradation_lowers_the_score():
    hdr = textured_scene(seed=7)
    ldr = simple_tonemap(hdr)
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(ldr.shape, generator=g, dtype=ldr.dtype)
    q = [tmqi_score(hdr, (ldr + sd * noise).clamp(0, 1)) for sd in (0.0, 0.02, 0.05, 0.1, 0.2)]
    assert all(a.s > b.s for a, b in zip(q, q[1:]))
    assert all(a.q > b.q for a, b in zip(q, q[1:]))
    blurred = []
    for sigma in (0.5, 1.5, 3.0, 6.0):
        k = int(3 * sigma) * 2 + 1
        x = torch.arange(k, dtype=ldr.dtype) - k // 2
        taps = torch.exp(-0.5 * (x / sigma) ** 2)
        taps = taps / taps.sum()
        b = torch.nn.functional.conv2d(torch.nn.functional.pad(ldr[:, None], (k // 2,) * 4, mode="replicate"),
                                       taps.view(1, 1, 1, k))
        b = torch.nn.functional.conv2d(b, taps.view(1, 1, k, 1))[:, 0]
        blurred.append(tmqi_score(hdr, b).s)
    assert tmqi_score(hdr, ldr).s > blurred[0] and all(a > b for a, b in zip(blurred, blurred[1:]))


def test_range_and_hdr_scale_invariance():
    hdr, ldr = known_pair_torch()
    r = tmqi_score(hdr, ldr)
    assert 0 <= r.q <= 1 and 0 <= r.s <= 1 and 0 <= r.n <= 1
    scaled = tmqi_score(hdr * 731.5, ldr)
    assert scaled.q == pytest.approx(r.q, abs=1e-6) and scaled.n == r.n
    for other in (ldr ** 2, ldr ** 0.5, torch.zeros_like(ldr), torch.ones_like(ldr)):
        v = tmqi_score(hdr, other)
        assert 0 <= v.q <= 1 and 0 <= v.n <= 1


def test_anti_correlated_image_gives_nan_like_the_reference():
    hdr = textured_scene(seed=9)
    inverted = 1 - simple_tonemap(hdr)
    r = tmqi_score(hdr, inverted)
    assert min(r.s_levels) < 0 and math.isnan(r.s) and math.isnan(r.q)
    with np.errstate(invalid="ignore"):  # the reference raises a negative base to a fractional power
        assert math.isnan(ref.tmqi(hdr.permute(1, 2, 0).numpy(), inverted.permute(1, 2, 0).numpy())[1])


def test_layouts_batches_and_registry():
    hdr, ldr = known_pair_torch()
    single = tmqi_score(hdr, ldr)
    as_numpy = tmqi_score(hdr.permute(1, 2, 0).numpy().astype(np.float32), ldr.permute(1, 2, 0).numpy())
    assert as_numpy.q == pytest.approx(single.q, abs=1e-6)
    batch = tmqi_score(torch.stack([hdr, hdr]), torch.stack([ldr, ldr ** 1.3]))
    assert batch.q.shape == (2,) and batch.s_levels.shape == (2, 5)
    assert batch.q[0] == pytest.approx(single.q, abs=1e-12)
    assert batch.q[1] == pytest.approx(tmqi(hdr, ldr ** 1.3), abs=1e-12)
    w = torch.tensor([0.2126, 0.7152, 0.0722], dtype=hdr.dtype).view(3, 1, 1)
    grey = tmqi_score((hdr * w).sum(0, keepdim=True), (ldr * w).sum(0, keepdim=True))
    assert grey.q == pytest.approx(single.q, abs=1e-12)
    assert TONE_MAPPING_METRICS["tmqi"] is tmqi


def test_errors():
    hdr, ldr = known_pair_torch()
    with pytest.raises(HdrkitError, match="at least 161x161"):
        tmqi(hdr[:, :160], ldr[:, :160])
    with pytest.raises(HdrkitError, match=r"\[0, 1\]"):
        tmqi(hdr, ldr * 255)
    with pytest.raises(HdrkitError, match="same layout and size"):
        tmqi(hdr, ldr[:, :, :-1])
    with pytest.raises(HdrkitError, match="NaN"):
        bad = hdr.clone()
        bad[0, 0, 0] = float("nan")
        tmqi(bad, ldr)
    with pytest.raises(HdrkitError, match="channel-first"):
        tmqi(hdr.permute(1, 2, 0), ldr.permute(1, 2, 0))
