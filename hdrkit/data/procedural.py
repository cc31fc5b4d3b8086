"""A built-in, procedurally generated HDR test scene (no downloaded data).

The scene is an outdoor view: a sky gradient with clouds and a bright sun disk, hills, a textured
ground, a brick building with dark interior windows, a few lamp-lit windows and a very dark doorway,
a glossy sphere, a striped box and a checkerboard sign. Radiance spans more than 20 stops
(sun ~5e3, sky ~1, lit ground ~0.2, interiors ~1e-3, doorway ~1e-4). Generation uses only numpy
and OpenCV resampling driven by a seeded ``numpy.random.Generator``, so the same seed always gives
the same image.

The fractal texture is value noise summed over octaves ("fBm"), after Perlin, "An image
synthesizer", SIGGRAPH 1985, and Musgrave et al., "Texturing and Modeling", 1994.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from hdrkit.errors import HdrkitError

__all__ = ["procedural_scene", "fractal_noise"]

SUN_RADIANCE = 5.0e3
"""Sun disk radiance relative to the zenith-ish sky (~1): about 12 stops above the sky."""

INTERIOR_RADIANCE = 2.0e-3
"""Unlit interior seen through windows, ~9 stops below the sky."""

DOORWAY_RADIANCE = 1.5e-4
"""The darkest region (an open doorway), ~13 stops below the sky."""


def fractal_noise(
    rng: np.random.Generator,
    height: int,
    width: int,
    octaves: int = 6,
    base_cells: float = 4.0,
    persistence: float = 0.5,
    aspect: float = 1.0,
) -> np.ndarray:
    """Fractal value noise: (H, W) float32, zero mean, unit standard deviation.

    Args:
        rng: numpy generator (consumed).
        height, width: output size.
        octaves: number of octaves, each with twice the frequency of the previous.
        base_cells: grid cells along the longer side at the lowest octave.
        persistence: amplitude ratio between octaves.
        aspect: > 1 stretches features horizontally (clouds).
    """
    out = np.zeros((height, width), np.float32)
    amp = 1.0
    longest = max(height, width)
    for o in range(octaves):
        cells = base_cells * 2**o
        gw = max(2, int(round(cells * width / longest / aspect)) + 2)
        gh = max(2, int(round(cells * height / longest)) + 2)
        grid = rng.standard_normal((gh, gw)).astype(np.float32)
        out += amp * cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
        amp *= persistence
        if cells > longest / 2:
            break
    out -= out.mean()
    return out / max(float(out.std()), 1e-12)


def _smoothstep(e0, e1, x):
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _box(xx, yy, x0, y0, x1, y1, soft=0.75):
    """Anti-aliased coverage of the axis-aligned box [x0, x1] x [y0, y1]."""
    cx = _smoothstep(-soft, soft, xx - x0) * _smoothstep(-soft, soft, x1 - xx)
    cy = _smoothstep(-soft, soft, yy - y0) * _smoothstep(-soft, soft, y1 - yy)
    return cx * cy


def _blend(img, alpha, value):
    a = alpha[..., None]
    img *= 1 - a
    img += a * value


def procedural_scene(height: int = 512, width: int = 768, seed: int = 0) -> torch.Tensor:
    """Render the built-in HDR scene.

    Args:
        height, width: output size in pixels (each at least 64).
        seed: layout, colours and textures are drawn from ``numpy.random.default_rng(seed)``.

    Returns:
        hdr: (3, H, W) float32 linear RGB radiance, strictly positive. Arbitrary scale: the sky near
        the zenith is ~0.5-1, the sun disk ~5e3; use ``hdrkit.data.synthetic.normalize_scene`` to
        place it for a bracket.
    """
    if height < 64 or width < 64:
        raise HdrkitError(f"procedural_scene needs height and width >= 64, got {height}x{width}")
    rng = np.random.default_rng(seed)
    h, w = int(height), int(width)
    s = min(h, w)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.zeros((h, w, 3), np.float32)

    # layout choices
    building_left = bool(rng.integers(2))
    sun_x = w * (rng.uniform(0.62, 0.85) if building_left else rng.uniform(0.15, 0.38))
    sun_y = h * rng.uniform(0.08, 0.22)
    sun_r = 0.02 * s
    horizon = 0.5 * h + 0.04 * h * fractal_noise(rng, 1, w, octaves=5, base_cells=3)[0]
    horizon = np.round(horizon * 4) / 4

    # sky: zenith-to-horizon gradient, sun glow, clouds
    t = np.clip(yy / horizon[None, :], 0, 1) ** 0.8
    zenith = np.array([0.18, 0.34, 0.85], np.float32)
    hor = np.array([0.75, 0.82, 0.95], np.float32) * 1.3
    sky = zenith * (1 - t[..., None]) + hor * t[..., None]
    d = np.hypot(xx - sun_x, yy - sun_y)
    glow = 25.0 * np.exp(-d / (0.025 * w)) + 1.2 * np.exp(-d / (0.18 * w))
    sky += glow[..., None] * np.array([1.0, 0.85, 0.6], np.float32)
    cn = fractal_noise(rng, h, w, octaves=6, base_cells=3, aspect=2.5)
    cover = _smoothstep(0.2, 1.4, cn) * np.clip(1.2 - yy / np.maximum(horizon[None, :], 1), 0, 1)
    shade = 1.0 + 0.5 * _smoothstep(-1.0, 1.5, fractal_noise(rng, h, w, octaves=5, base_cells=6))
    cloud = (1.0 + 3.0 * np.exp(-d / (0.12 * w)))[..., None] * shade[..., None] * np.array([0.95, 0.95, 1.0], np.float32)
    sky = sky * (1 - cover[..., None]) + cloud * cover[..., None]
    sun = _smoothstep(sun_r + 0.8, sun_r - 0.8, d)
    limb = 1.0 - 0.4 * np.clip(d / sun_r, 0, 1) ** 2
    sky += (SUN_RADIANCE * limb * sun)[..., None] * np.array([1.0, 0.95, 0.85], np.float32)
    sky_alpha = _smoothstep(0.75, -0.75, yy - horizon[None, :])
    img += sky * sky_alpha[..., None]

    # ground: grass/dirt mix with fine texture, lit by the sun, darker towards the bottom-near field
    mix = _smoothstep(-0.4, 0.6, fractal_noise(rng, h, w, octaves=4, base_cells=3))
    grass = np.array([0.09, 0.16, 0.04], np.float32)
    dirt = np.array([0.24, 0.17, 0.10], np.float32)
    fine = np.exp(0.5 * fractal_noise(rng, h, w, octaves=8, base_cells=32, persistence=0.7))
    depth = np.clip((yy - horizon[None, :]) / (h - horizon[None, :] + 1), 0, 1)
    ground = (grass * (1 - mix[..., None]) + dirt * mix[..., None]) * fine[..., None]
    ground *= (1.4 - 0.5 * depth)[..., None]
    # a path towards the horizon
    path_c = sun_x * 0.3 + w * 0.35
    path = _smoothstep(1.5, -1.5, np.abs(xx - path_c - (yy - h) * 0.3) - (0.02 * w + 0.12 * w * depth))
    ground = ground * (1 - path[..., None]) + (np.array([0.35, 0.32, 0.28], np.float32) * fine[..., None]) * path[..., None]
    _blend(img, 1 - sky_alpha, 0)
    img += ground * (1 - sky_alpha)[..., None]

    # building with a brick facade, windows (dark interiors, some lamp-lit) and a doorway
    bw = w * rng.uniform(0.28, 0.36)
    bx0 = w * rng.uniform(0.04, 0.1) if building_left else w - w * rng.uniform(0.04, 0.1) - bw
    bx1 = bx0 + bw
    by0 = h * rng.uniform(0.12, 0.2)
    by1 = h * 0.78
    side_w = 0.07 * w
    sx0, sx1 = (bx1, bx1 + side_w) if building_left else (bx0 - side_w, bx0)
    brick_h = max(3.0, 0.018 * s)
    brick_w = 2.2 * brick_h
    row = np.floor(yy / brick_h)
    xoff = xx + (row % 2) * brick_w / 2
    mortar = np.minimum(np.abs((yy % brick_h) - 0.5), np.abs((xoff % brick_w) - 0.5))
    mortar_a = _smoothstep(1.0, 0.3, mortar)
    brick_id = (row * 131 + np.floor(xoff / brick_w)) % 7
    brick_tone = 0.85 + 0.05 * brick_id[..., None]
    brick = np.array([0.45, 0.24, 0.16], np.float32) * brick_tone * np.exp(0.15 * fractal_noise(rng, h, w, 6, 32))[..., None]
    facade = brick * (1 - mortar_a[..., None]) + np.array([0.5, 0.48, 0.45], np.float32) * mortar_a[..., None]
    front = _box(xx, yy, bx0, by0, bx1, by1)
    _blend(img, front, 0)
    img += facade * 1.5 * front[..., None]
    side = _box(xx, yy, sx0, by0 + 0.02 * h, sx1, by1)
    _blend(img, side, 0)
    img += facade * 0.12 * side[..., None]
    roof = _box(xx, yy, min(bx0, sx0) - 3, by0 - 0.025 * h, max(bx1, sx1) + 3, by0)
    _blend(img, roof, np.array([0.05, 0.05, 0.06], np.float32))

    interior_tex = np.exp(0.6 * fractal_noise(rng, h, w, 5, 12))[..., None]
    n_cols, n_rows = 3, 3
    win_w = bw / (n_cols * 1.8)
    win_h = (by1 - by0) * 0.16
    lit = rng.random((n_rows, n_cols)) < 0.3
    for r in range(n_rows):
        for c in range(n_cols):
            x0 = bx0 + bw * (c + 0.5) / n_cols - win_w / 2
            y0 = by0 + (by1 - by0) * (0.08 + 0.22 * r)
            frame = _box(xx, yy, x0 - 2, y0 - 2, x0 + win_w + 2, y0 + win_h + 2)
            _blend(img, frame, np.array([0.7, 0.7, 0.68], np.float32))
            glass = _box(xx, yy, x0, y0, x0 + win_w, y0 + win_h)
            if lit[r, c]:
                falloff = np.exp(-np.hypot(xx - x0 - win_w / 2, yy - y0) / (0.6 * win_h))
                val = np.array([1.0, 0.7, 0.35], np.float32) * (0.05 + 1.5 * falloff[..., None]) * interior_tex
            else:
                val = np.array([0.9, 0.95, 1.0], np.float32) * INTERIOR_RADIANCE * interior_tex
            _blend(img, glass, 0)
            img += glass[..., None] * val
            mullion = glass * np.maximum(_box(xx, yy, x0 + win_w / 2 - 1, y0, x0 + win_w / 2 + 1, y0 + win_h),
                                         _box(xx, yy, x0, y0 + win_h / 2 - 1, x0 + win_w, y0 + win_h / 2 + 1))
            _blend(img, mullion, np.array([0.6, 0.6, 0.58], np.float32))
    dw = bw * 0.16
    dx0 = bx0 + bw * 0.5 - dw / 2
    door = _box(xx, yy, dx0, by1 - (by1 - by0) * 0.25, dx0 + dw, by1)
    door_val = DOORWAY_RADIANCE * (0.5 + 1.5 * _smoothstep(by1 - (by1 - by0) * 0.25, by1, yy))[..., None] * interior_tex
    _blend(img, door, 0)
    img += door[..., None] * door_val

    # shadow of the building on the ground, away from the sun
    shadow_dir = 1.0 if building_left else -1.0
    base = bx1 if building_left else bx0
    sh = _smoothstep(2, -2, (xx - base) * shadow_dir - 0.25 * w * np.clip((yy - by1 + 0.15 * h) / (0.2 * h), 0, 1))
    sh *= _smoothstep(by1 - 0.2 * h, by1 - 0.1 * h, yy) * (1 - sky_alpha) * (1 - front) * (1 - side)
    sh *= _smoothstep(-2, 2, (xx - base) * shadow_dir)
    img *= (1 - 0.8 * sh)[..., None]

    # objects on the ground: a glossy sphere, a striped box, a checkerboard sign
    light = np.array([(sun_x - w / 2) / w, -0.8, 0.5], np.float32)
    light /= np.linalg.norm(light)
    free_x = (bx1 + side_w + 0.05 * w, w * 0.95) if building_left else (w * 0.05, bx0 - side_w - 0.05 * w)
    span = free_x[1] - free_x[0]
    # sphere
    r_s = 0.09 * s
    cx, cy = free_x[0] + span * rng.uniform(0.1, 0.3), h * rng.uniform(0.78, 0.86)
    shadow = _smoothstep(1.0, 0.6, np.hypot((xx - cx + light[0] * r_s) / (1.3 * r_s), (yy - cy - r_s * 0.9) / (0.35 * r_s)))
    img *= (1 - 0.7 * shadow)[..., None]
    nx, ny = (xx - cx) / r_s, (yy - cy) / r_s
    inside = _smoothstep(1.0 + 1 / r_s, 1.0 - 1 / r_s, np.hypot(nx, ny))
    nz = np.sqrt(np.clip(1 - nx**2 - ny**2, 0, 1))
    lam = np.clip(nx * light[0] + ny * light[1] + nz * light[2], 0, None)
    half = light + np.array([0, 0, 1], np.float32)
    half /= np.linalg.norm(half)
    spec = np.clip(nx * half[0] + ny * half[1] + nz * half[2], 0, 1) ** 200
    colour = rng.permutation(np.array([[0.6, 0.08, 0.05], [0.05, 0.2, 0.6], [0.55, 0.45, 0.05]], np.float32))[0]
    sphere = colour * (0.05 + 1.3 * lam[..., None]) + 400.0 * spec[..., None]
    _blend(img, inside, 0)
    img += inside[..., None] * sphere
    # striped box: front face lit, top face brighter, dark side
    bw2, bh2 = 0.14 * s, 0.11 * s
    bx, by = free_x[0] + span * rng.uniform(0.45, 0.6), h * rng.uniform(0.66, 0.72)
    col = rng.permutation(np.array([[0.1, 0.3, 0.6], [0.6, 0.2, 0.5], [0.1, 0.45, 0.2]], np.float32))
    stripes = (np.floor((xx - bx) / (0.02 * s)) % 2)[..., None]
    face = col[0] * (1 - stripes) + col[1] * stripes
    front_box = _box(xx, yy, bx, by, bx + bw2, by + bh2)
    img *= (1 - 0.6 * _box(xx, yy, bx + bw2 * 0.3, by + bh2, bx + bw2 * 1.4, by + bh2 + 0.05 * s, soft=4))[..., None]
    _blend(img, front_box, 0)
    img += front_box[..., None] * face * 0.9
    top = _box(xx, yy, bx + 0.04 * s, by - 0.04 * s, bx + bw2 + 0.04 * s, by) * np.clip((xx - bx - (by - yy)) + 1, 0, 1)
    _blend(img, top, col[0] * 1.4)
    side_box = _box(xx, yy, bx + bw2, by - 0.04 * s, bx + bw2 + 0.04 * s, by + bh2) * np.clip((by + bh2 - yy) - (xx - bx - bw2) + 1, 0, 1)
    _blend(img, side_box, col[0] * 0.15)
    # checkerboard sign on a pole
    px_, py_ = free_x[0] + span * rng.uniform(0.75, 0.9), h * rng.uniform(0.45, 0.5)
    sw = 0.16 * s
    pole = _box(xx, yy, px_ + sw / 2 - 2, py_ + sw, px_ + sw / 2 + 2, py_ + sw + 0.15 * h)
    _blend(img, pole, np.array([0.15, 0.15, 0.15], np.float32))
    board = _box(xx, yy, px_, py_, px_ + sw, py_ + sw)
    cell = sw / 6
    checker = ((np.floor((xx - px_) / cell) + np.floor((yy - py_) / cell)) % 2)[..., None]
    tones = checker * np.array([0.85, 0.85, 0.8], np.float32) + (1 - checker) * np.array([0.03, 0.03, 0.035], np.float32)
    _blend(img, board, tones * 1.2)

    img = np.maximum(img, 1e-5).astype(np.float32)
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))
