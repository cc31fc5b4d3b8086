import math

import numpy as np
import pytest
import torch

from hdrkit.camera.exposure import NoiseModel, linearize
from hdrkit.camera.response import SRGBResponse
from hdrkit.data.procedural import fractal_noise, procedural_scene
from hdrkit.data.synthetic import normalize_scene, random_homography, synthesize_bracket
from hdrkit.errors import HdrkitError


@pytest.fixture(scope="module")
def scene():
    return normalize_scene(procedural_scene(128, 192, seed=2))


def test_procedural_deterministic_and_seed_dependent():
    a = procedural_scene(96, 128, seed=5)
    b = procedural_scene(96, 128, seed=5)
    c = procedural_scene(96, 128, seed=6)
    assert a.shape == (3, 96, 128) and a.dtype == torch.float32
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_procedural_dynamic_range():
    x = procedural_scene(256, 384, seed=0)
    assert torch.isfinite(x).all() and (x > 0).all()
    lum = x.amax(0).flatten()
    stops = math.log2(float(lum.max()) / float(torch.quantile(lum, 0.001)))
    assert stops > 16
    # the sun is small: the 99th percentile is within a few stops of the sky
    assert float(torch.quantile(lum, 0.99)) < 100


def test_fractal_noise_stats():
    n = fractal_noise(np.random.default_rng(0), 64, 80)
    assert n.shape == (64, 80)
    assert abs(n.mean()) < 1e-5 and abs(n.std() - 1) < 1e-4


def test_normalize_scene_quantile(scene):
    peak = scene.amax(0).flatten()
    assert abs(float(torch.quantile(peak, 0.995)) - 1.0) < 1e-4
    y, s = normalize_scene(scene * 7.0, return_scale=True)
    assert abs(s - 1 / 7.0) < 1e-4 and torch.allclose(y, scene, rtol=1e-4)
    with pytest.raises(HdrkitError):
        normalize_scene(torch.zeros(3, 4, 4))


def test_static_bracket_matches_formation_model(scene):
    b = synthesize_bracket(scene, exposure_times=(0.01, 0.04, 0.16), bits=16)
    assert b.ldr.shape == (3, 3, 128, 192) and b.reference == 1
    assert torch.allclose(b.exposure_times, torch.tensor([1.0, 4.0, 16.0]))
    assert float(b.ldr.min()) >= 0 and float(b.ldr.max()) <= 1
    assert b.masks.sum() == 0
    assert torch.equal(b.homographies, torch.eye(3, dtype=torch.float64).expand(3, 3, 3))
    assert torch.equal(b.hdr_gt, scene)
    # the shortest frame clips only ~0.5 % of pixels
    clipped = (b.ldr[0].amax(0) >= 1).float().mean()
    assert 0.001 < clipped < 0.02
    # unclipped pixels invert to the GT
    lin = linearize(b.ldr[None], b.exposure_times[None])[0]
    ok = (b.ldr < 0.95) & (b.ldr > 0.05)
    rel = ((lin - b.hdr_gt[None]).abs() / b.hdr_gt[None])[ok]
    assert float(rel.max()) < 0.01


def test_determinism_and_seed(scene):
    kw = dict(global_motion_px=3.0, moving_objects=2, nonrigid_px=2.0, noise=NoiseModel((1e-4,) * 3, (1e-6,) * 3))
    a = synthesize_bracket(scene, seed=11, **kw)
    b = synthesize_bracket(scene, seed=11, **kw)
    c = synthesize_bracket(scene, seed=12, **kw)
    assert torch.equal(a.ldr, b.ldr) and torch.equal(a.masks, b.masks)
    assert not torch.equal(a.ldr, c.ldr)


def test_moving_objects_masks(scene):
    b = synthesize_bracket(scene, moving_objects=2, object_motion_px=(20, 30), seed=4)
    assert b.masks[b.reference].sum() == 0
    for i in (0, 2):
        m = b.masks[i, 0] > 0
        assert m.any()
        diff = (b.hdr_frames[i] - b.hdr_gt).abs().amax(0)
        # moved pixels are exactly where frames differ from the reference (no global motion here)
        assert float(diff[~m].max()) == 0.0
        assert float((diff[m] > 0).float().mean()) > 0.5
    assert torch.equal(b.hdr_gt, b.hdr_frames[1])


def test_global_motion_homography(scene):
    b = synthesize_bracket(scene, global_motion_px=5.0, seed=1)
    h0 = b.homographies[0].numpy()
    corners = np.array([[0, 0, 1], [191, 0, 1], [0, 127, 1], [191, 127, 1.0]]).T
    moved = h0 @ corners
    moved = moved[:2] / moved[2]
    disp = np.hypot(*(moved - corners[:2]))
    assert 0.5 < disp.max() < 12
    # the warped frame, warped back, matches the reference away from borders
    import cv2
    f = b.hdr_frames[0].numpy().transpose(1, 2, 0)
    back = cv2.warpPerspective(f, np.linalg.inv(h0), (192, 128), flags=cv2.INTER_LINEAR)
    gt = b.hdr_gt.numpy().transpose(1, 2, 0)
    inner = (slice(16, -16), slice(16, -16))
    rel = np.abs(np.log(np.maximum(back[inner], 1e-6)) - np.log(np.maximum(gt[inner], 1e-6)))
    assert np.median(rel) < 0.05


def test_random_homography_identity():
    assert np.array_equal(random_homography(np.random.default_rng(0), 10, 10, 0.0), np.eye(3))


def test_jpeg_and_response(scene):
    b = synthesize_bracket(scene, jpeg_quality=70, response=SRGBResponse(), seed=0)
    assert b.ldr.shape == (3, 3, 128, 192)
    q = b.ldr * 255
    assert torch.allclose(q, q.round(), atol=1e-4)
    with pytest.raises(HdrkitError):
        synthesize_bracket(scene, jpeg_quality=70, bits=16)


def test_bad_inputs(scene):
    with pytest.raises(HdrkitError):
        synthesize_bracket(scene[None])
    with pytest.raises(HdrkitError):
        synthesize_bracket(scene, exposure_times=(1, -1))
    with pytest.raises(HdrkitError):
        synthesize_bracket(scene, reference=5)
