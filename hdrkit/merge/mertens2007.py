"""Exposure fusion (Mertens, Kautz & Van Reeth 2007): blend a bracket directly into an LDR image.

Each frame gets a per-pixel quality weight ``C^wc * S^ws * E^we`` (contrast: absolute Laplacian of
the grey image; saturation: spread of R, G, B; well-exposedness: ``prod_c exp(-(z_c - 0.5)^2 /
(2 sigma^2))``). The weights are normalized over frames and the frames are blended in a Laplacian
pyramid. The result is display-referred (no radiance, no exposure times, no response): use it as
a preview, never as HDR data.

Reference:
    Mertens, Kautz & Van Reeth, "Exposure fusion", Pacific Graphics 2007; extended in Computer
    Graphics Forum 28(1), 2009.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from hdrkit.errors import HdrkitError

__all__ = ["fuse_mertens2007", "WELL_EXPOSED_SIGMA"]

WELL_EXPOSED_SIGMA = 0.2
"""Width of the well-exposedness Gaussian around code 0.5 (Mertens et al. 2007)."""

_BINOMIAL = (1.0, 4.0, 6.0, 4.0, 1.0)
_GRAY = (0.299, 0.587, 0.114)  # Rec. 601 luma, as OpenCV's RGB -> grey


def _pad(x: torch.Tensor, p: tuple[int, int, int, int]) -> torch.Tensor:
    mode = "reflect" if min(x.shape[-2:]) > max(p) else "replicate"
    return F.pad(x, p, mode=mode)


def _taps(x: torch.Tensor, dim: int, gain: float) -> torch.Tensor:
    """5-tap binomial [1, 4, 6, 4, 1] / 16 (times ``gain``) along ``dim``, reflect-101 borders."""
    n = x.shape[dim]
    pad = [0, 0, 0, 0]
    pad[0 if dim == -1 else 2], pad[1 if dim == -1 else 3] = 2, 2
    xp = _pad(x, tuple(pad))
    s = [xp.narrow(dim, k, n) for k in range(5)]
    return (s[0] + s[4] + 4 * (s[1] + s[3]) + 6 * s[2]) * (gain / 16.0)


def _filter(x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
    return _taps(_taps(x, -1, gain), -2, gain)


def _down(x: torch.Tensor) -> torch.Tensor:
    return _taps(_taps(x, -1, 1.0)[..., ::2], -2, 1.0)[..., ::2, :]


def _up(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    b, c, h, w = x.shape
    y = x.new_zeros(b, c, 2 * h, 2 * w)
    y[..., ::2, ::2] = x
    return _filter(y[..., : size[0], : size[1]], gain=2.0)


def _cv_ok(x: torch.Tensor) -> bool:
    """Whether ``x`` can go through OpenCV (a CPU float tensor outside autograd)."""
    return x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64) and not (x.requires_grad and torch.is_grad_enabled())


def _np_down(a: np.ndarray) -> np.ndarray:
    """``_down`` of (M, h, w) planes: ``cv2.pyrDown`` (the same filter, reflect-101 borders)."""
    m, h, w = a.shape
    if min(h, w) <= 4:
        return _down(torch.from_numpy(a)[None]).numpy()[0]
    out = np.empty((m, (h + 1) // 2, (w + 1) // 2), a.dtype)
    for p, o in zip(a, out):
        cv2.pyrDown(p, dst=o)
    return out


def _np_up(a: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``_up`` of (M, h, w) planes by ``cv2.pyrUp``. ``pyrUp`` repeats the source's last row/column
    at the far border; for odd sizes one reflect-101 row/column is appended first, so the result
    equals ``_up``'s reflect-101 filtering of the zero-inserted image."""
    h, w = size
    if min(h, w) <= 4:
        return _up(torch.from_numpy(a)[None], size).numpy()[0]
    out = np.empty((a.shape[0], h, w), a.dtype)
    for p, o in zip(a, out):
        if h % 2 or w % 2:
            p = cv2.copyMakeBorder(p, 0, h % 2, 0, w % 2, cv2.BORDER_REFLECT_101)
        o[...] = cv2.pyrUp(p)[:h, :w]
    return out


def _fuse_numpy(ldr: torch.Tensor, contrast: float, saturation: float, exposure: float, sigma: float) -> torch.Tensor:
    """``fuse_mertens2007`` outside autograd, by numpy and OpenCV on (h, w) planes (the same
    formulas in the same order as the torch path; equal up to float rounding)."""
    b, n, _, h, w = ldr.shape
    x = ldr.detach().contiguous().numpy()
    dt = x.dtype.type
    lap = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], x.dtype)
    weight = np.empty((b, n, 1, h, w), x.dtype)
    for f, wt in zip(x.reshape(b * n, 3, h, w), weight.reshape(b * n, h, w)):
        r, g, bl = f
        gray = r * dt(_GRAY[0]) + g * dt(_GRAY[1]) + bl * dt(_GRAY[2])
        c = np.abs(cv2.filter2D(gray, -1, lap, borderType=cv2.BORDER_REFLECT_101 if min(h, w) > 1 else cv2.BORDER_REPLICATE))
        mean = (r + g + bl) / dt(3)
        s = np.sqrt(np.maximum(np.square(r - mean) + np.square(g - mean) + np.square(bl - mean), dt(1e-20)))
        e = np.exp(-(np.square(r - dt(0.5)) + np.square(g - dt(0.5)) + np.square(bl - dt(0.5))) / dt(2 * sigma * sigma))
        terms = [np.power(v, dt(p)) if p != 1 else v for v, p in ((c, contrast), (s, saturation), (e, exposure))]
        np.multiply(terms[0], terms[1], out=wt)
        wt *= terms[2]
        wt += dt(1e-12)
    weight /= weight.sum(1, keepdims=True)
    levels = int(math.log2(min(h, w)))
    g_img, g_w = [x.reshape(b * n * 3, h, w)], [weight.reshape(b * n, h, w)]
    for _ in range(levels):
        g_img.append(_np_down(g_img[-1]))
        g_w.append(_np_down(g_w[-1]))
    blended = []
    for lvl in range(levels + 1):
        img = g_img[lvl]
        band = img.copy() if lvl == levels else img - _np_up(g_img[lvl + 1], img.shape[-2:])
        band = band.reshape(b, n, 3, *img.shape[-2:])
        band *= g_w[lvl].reshape(b, n, 1, *img.shape[-2:])
        blended.append(band.sum(1).reshape(b * 3, *img.shape[-2:]))
    out = blended[-1]
    for lvl in range(levels - 1, -1, -1):
        out = blended[lvl] + _np_up(out, blended[lvl].shape[-2:])
    return torch.from_numpy(np.clip(out, 0, 1, out=out).reshape(b, 3, h, w))


def fuse_mertens2007(
    ldr: torch.Tensor,
    contrast: float = 1.0,
    saturation: float = 1.0,
    exposure: float = 1.0,
    sigma: float = WELL_EXPOSED_SIGMA,
) -> torch.Tensor:
    """Fuse an aligned bracket into one display-referred image.

    Args:
        ldr: (B, N, 3, H, W), N >= 2, display-referred RGB codes in [0, 1] (or uint8 / uint16).
        contrast, saturation, exposure: exponents ``wc, ws, we`` of the three quality measures
            (all 1 as in the paper; note OpenCV's ``createMergeMertens()`` defaults to an exposure
            exponent of 0).
        sigma: width of the well-exposedness Gaussian.

    Returns:
        (B, 3, H, W) LDR, display-referred codes clipped to [0, 1] (not radiance; the pyramid blend
        can overshoot, OpenCV returns the unclipped values). Differentiable in float ``ldr``.
    """
    if ldr.ndim != 5 or ldr.shape[2] != 3 or ldr.shape[1] < 2:
        raise HdrkitError(f"ldr must have shape (B, N, 3, H, W) with N >= 2, got {tuple(ldr.shape)}")
    if ldr.dtype == torch.uint8:
        ldr = ldr.float() / 255.0
    elif ldr.dtype == torch.uint16:
        ldr = ldr.float() / 65535.0
    elif not ldr.is_floating_point():
        raise HdrkitError(f"ldr must be float codes in [0, 1] or uint8/uint16, got {ldr.dtype}")
    if sigma <= 0:
        raise HdrkitError(f"sigma must be positive, got {sigma}")
    if _cv_ok(ldr):
        return _fuse_numpy(ldr, contrast, saturation, exposure, sigma)
    b, n, _, h, w = ldr.shape
    frames = ldr.reshape(b * n, 3, h, w)
    gray = (frames * torch.tensor(_GRAY, dtype=ldr.dtype, device=ldr.device).view(1, 3, 1, 1)).sum(1, keepdim=True)
    lap = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]], dtype=ldr.dtype, device=ldr.device)
    c = F.conv2d(_pad(gray, (1, 1, 1, 1)), lap.view(1, 1, 3, 3)).abs()
    mean = frames.mean(1, keepdim=True)
    s = ((frames - mean) ** 2).sum(1, keepdim=True).clamp_min(1e-20).sqrt()
    e = torch.exp(-((frames - 0.5) ** 2).sum(1, keepdim=True) / (2 * sigma * sigma))
    weight = c.pow(contrast) * s.pow(saturation) * e.pow(exposure) + 1e-12
    weight = weight.view(b, n, 1, h, w)
    weight = (weight / weight.sum(1, keepdim=True)).reshape(b * n, 1, h, w)
    levels = int(math.log2(min(h, w)))
    g_img, g_w = [frames], [weight]
    for _ in range(levels):
        g_img.append(_down(g_img[-1]))
        g_w.append(_down(g_w[-1]))
    blended = []
    for lvl in range(levels + 1):
        band = g_img[lvl] if lvl == levels else g_img[lvl] - _up(g_img[lvl + 1], g_img[lvl].shape[-2:])
        blended.append((band * g_w[lvl]).view(b, n, 3, *band.shape[-2:]).sum(1))
    out = blended[-1]
    for lvl in range(levels - 1, -1, -1):
        out = blended[lvl] + _up(out, blended[lvl].shape[-2:])
    return out.clamp(0, 1)
