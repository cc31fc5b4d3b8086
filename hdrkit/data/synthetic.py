"""Synthetic exposure brackets with known ground truth: camera shake, moving objects, noise.

A radiance map is turned into an ``N``-frame LDR bracket with the same image formation model that
inference inverts (``hdrkit.camera.exposure.expose``): ``ldr = Q(f(clip(noise(hdr_i * t_i))))``.
Frame ``i`` sees the scene through a small homography (hand-held camera shake) and, optionally, with
textured objects pasted at displaced positions (local motion, with occlusion). The ground truth is
the reference frame's radiance, as in the dynamic-scene protocol of Kalantari & Ramamoorthi,
"Deep High Dynamic Range Imaging of Dynamic Scenes", SIGGRAPH 2017, whose data uses a middle
reference, exposure biases of 2-3 stops and a gamma 2.2 response.

Exposure placement follows the same paper's convention: the radiance is scaled so that the
shortest exposure saturates only the brightest ~0.5 % of pixels (``normalize_scene``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from hdrkit.camera.exposure import NoiseModel, expose
from hdrkit.camera.response import GammaResponse, Response
from hdrkit.errors import HdrkitError

__all__ = [
    "SyntheticBracket",
    "synthesize_bracket",
    "synthesize_dataset",
    "normalize_scene",
    "random_homography",
    "sample_response",
    "response_from_info",
]

SATURATION_QUANTILE = 0.995
"""``normalize_scene`` default: the shortest exposure clips only above this quantile (Kalantari 2017)."""

_QUANTILE_MAX_SAMPLES = 8_000_000  # torch.quantile refuses inputs above 2**24 elements

OBJECT_AXES = (0.06, 0.16)
"""Semi-axes of moving objects as fractions of ``min(H, W)``."""

OBJECT_EDGE_PX = 3.0
"""Width of the soft edge of a moving object's elliptical mask, in pixels."""


@dataclass
class SyntheticBracket:
    """A simulated bracket and its ground truth.

    Attributes:
        ldr: (N, 3, H, W) float32 display-referred codes in [0, 1], exposure order as given.
        exposure_times: (N,) float32 linear exposure factors, normalized so the shortest is 1.
        hdr_gt: (3, H, W) float32 linear radiance of the reference frame, in units of the shortest
            exposure (``hdr_gt * t`` clips at 1).
        reference: index of the reference frame.
        masks: (N, 1, H, W) float32 in {0, 1}, in the reference geometry: 1 where moving objects make
            frame ``i`` (once aligned by its homography) differ from the reference. Zero for the reference.
        homographies: (N, 3, 3) float64 maps from reference pixel coordinates to frame pixel coordinates
            (``x_i ~ H_i x_ref``); identity for the reference. ``cv2.warpPerspective(frame_i, inv(H_i))``
            aligns frame ``i`` to the reference.
        hdr_frames: (N, 3, H, W) float32 the radiance each frame saw, before exposure.
        response: the camera response used.
        noise: the noise model used, or None.
    """

    ldr: torch.Tensor
    exposure_times: torch.Tensor
    hdr_gt: torch.Tensor
    reference: int
    masks: torch.Tensor
    homographies: torch.Tensor
    hdr_frames: torch.Tensor
    response: Response = field(default_factory=GammaResponse)
    noise: NoiseModel | None = None


def normalize_scene(
    hdr: torch.Tensor,
    quantile: float = SATURATION_QUANTILE,
    level: float = 1.0,
    return_scale: bool = False,
):
    """Scale radiance so that the shortest exposure (t = 1) saturates only its brightest pixels.

    Args:
        hdr: (3, H, W) or (B, 3, H, W) linear radiance, [0, inf).
        quantile: the per-pixel channel maximum at this quantile is mapped to ``level``
            (0.995: about 0.5 % of pixels clip in the shortest frame).
        level: target value of that quantile (1 = sensor saturation at t = 1).
        return_scale: also return the scale factor(s) applied.

    Returns:
        The scaled radiance (same shape), and the scale (float, or (B,) tensor) if ``return_scale``.
    """
    if not 0 < quantile <= 1:
        raise HdrkitError(f"quantile must be in (0, 1], got {quantile}")
    x = torch.as_tensor(hdr)
    if x.ndim not in (3, 4) or x.shape[-3] != 3:
        raise HdrkitError(f"hdr must have shape (3, H, W) or (B, 3, H, W), got {tuple(x.shape)}")
    batched = x.ndim == 4
    xb = x if batched else x[None]
    peak = xb.amax(dim=1).flatten(1).double().clamp_min(0)
    step = -(-peak.shape[1] // _QUANTILE_MAX_SAMPLES)
    q = torch.quantile(peak[:, ::step], quantile, dim=1)
    if (q <= 0).any() or not torch.isfinite(q).all():
        raise HdrkitError("normalize_scene: the image is black (or not finite) at the requested quantile")
    scale = level / q
    out = xb * scale.to(xb.dtype).view(-1, 1, 1, 1)
    out = out if batched else out[0]
    if return_scale:
        return out, (scale.float() if batched else float(scale[0]))
    return out


def random_homography(rng: np.random.Generator, height: int, width: int, magnitude_px: float) -> np.ndarray:
    """A small camera-shake homography: translation within ``magnitude_px``, plus rotation and
    perspective terms that move the image corners by at most ~half as much. (3, 3) float64."""
    if magnitude_px <= 0:
        return np.eye(3)
    ang = rng.uniform(0, 2 * math.pi)
    r = magnitude_px * math.sqrt(rng.uniform(0.25, 1.0))
    tx, ty = r * math.cos(ang), r * math.sin(ang)
    half_diag = 0.5 * math.hypot(height, width)
    theta = rng.uniform(-1, 1) * 0.35 * magnitude_px / half_diag
    p = rng.uniform(-1, 1, size=2) * 0.15 * magnitude_px / (0.25 * np.array([width, height]) ** 2)
    cx, cy = (width - 1) / 2, (height - 1) / 2
    c, s = math.cos(theta), math.sin(theta)
    to_c = np.array([[1, 0, -cx], [0, 1, -cy], [0, 0, 1]], np.float64)
    rot = np.array([[c, -s, 0], [s, c, 0], [p[0], p[1], 1]], np.float64)
    back = np.array([[1, 0, cx + tx], [0, 1, cy + ty], [0, 0, 1]], np.float64)
    hm = back @ rot @ to_c
    return hm / hm[2, 2]


def _smooth_flow(rng: np.random.Generator, height: int, width: int, amplitude: float, cells: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Smooth random displacement field (dx, dy), each (H, W) float32 with max |d| <= amplitude."""
    out = []
    for _ in range(2):
        g = rng.uniform(-1, 1, size=(cells + 1, cells + 1)).astype(np.float32)
        out.append(cv2.resize(g, (width, height), interpolation=cv2.INTER_CUBIC).clip(-1, 1) * amplitude)
    return out[0], out[1]


def _to_hwc(hdr: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(hdr.detach().cpu().float().numpy().transpose(1, 2, 0))


@dataclass
class _MovingObject:
    src: tuple[float, float]
    ref_pos: tuple[float, float]
    direction: tuple[float, float]
    distance: float
    axes: tuple[float, float]
    angle: float
    gain: np.ndarray
    flow_seed: int


def _draw_objects(rng, scene: np.ndarray, n: int, motion_px: tuple[float, float]) -> list[_MovingObject]:
    h, w = scene.shape[:2]
    s = min(h, w)
    lum = scene.max(axis=2)
    cap = float(np.quantile(lum[:: max(1, h // 128), :: max(1, w // 128)], 0.99))
    objs = []
    for _ in range(n):
        ax = tuple(float(v) for v in rng.uniform(*OBJECT_AXES, size=2) * s)
        best, best_score = None, -1.0
        for _ in range(8):
            cand = (rng.uniform(ax[0], w - ax[0]), rng.uniform(ax[1], h - ax[1]))
            x0, y0 = int(cand[0] - ax[0]), int(cand[1] - ax[1])
            patch = lum[max(0, y0): y0 + int(2 * ax[1]), max(0, x0): x0 + int(2 * ax[0])]
            score = float(np.log(np.clip(patch, 1e-6, cap)).std()) if patch.size else 0.0
            if score > best_score:
                best, best_score = cand, score
        margin = max(ax)
        ref = (rng.uniform(margin, max(margin + 1, w - margin)), rng.uniform(margin, max(margin + 1, h - margin)))
        ang = rng.uniform(0, 2 * math.pi)
        dist = rng.uniform(*motion_px)
        gain = np.exp(rng.uniform(-0.7, 0.7)) * np.exp(rng.uniform(-0.2, 0.2, size=3))
        objs.append(_MovingObject(best, ref, (math.cos(ang), math.sin(ang)), dist, ax, rng.uniform(0, math.pi),
                                  gain.astype(np.float32), int(rng.integers(2**31))))
    return objs


def _paste(scene: np.ndarray, obj: _MovingObject, offset: float, nonrigid_px: float, cap: float, xx, yy) -> tuple[np.ndarray, np.ndarray]:
    """Composite ``obj`` at ``ref_pos + offset * direction``; returns (scene, alpha)."""
    h, w = scene.shape[:2]
    px = obj.ref_pos[0] + offset * obj.direction[0]
    py = obj.ref_pos[1] + offset * obj.direction[1]
    u, v = xx - px, yy - py
    if nonrigid_px > 0 and offset != 0:
        fx, fy = _smooth_flow(np.random.default_rng([obj.flow_seed, int(round(offset * 1000)) & 0x7FFFFFFF]), h, w, nonrigid_px)
        u, v = u + fx, v + fy
    c, s = math.cos(obj.angle), math.sin(obj.angle)
    e = np.hypot((c * u + s * v) / obj.axes[0], (-s * u + c * v) / obj.axes[1])
    edge = OBJECT_EDGE_PX / min(obj.axes)
    alpha = np.clip((1 - e) / edge + 0.5, 0, 1).astype(np.float32)
    alpha = alpha * alpha * (3 - 2 * alpha)
    map_x = (u + obj.src[0]).astype(np.float32)
    map_y = (v + obj.src[1]).astype(np.float32)
    content = cv2.remap(scene, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    content = np.minimum(content, cap) * obj.gain
    out = scene * (1 - alpha[..., None]) + content * alpha[..., None]
    return out, alpha


def synthesize_bracket(
    hdr: torch.Tensor,
    *,
    exposure_times=(1.0, 4.0, 16.0),
    response: Response | None = None,
    noise: NoiseModel | None = None,
    bits: int = 8,
    reference: int | None = None,
    global_motion_px: float = 0.0,
    moving_objects: int = 0,
    object_motion_px: tuple[float, float] = (20.0, 60.0),
    nonrigid_px: float = 0.0,
    jpeg_quality: int | None = None,
    seed: int = 0,
) -> SyntheticBracket:
    """Simulate a hand-held bracket of a (possibly dynamic) scene.

    Args:
        hdr: (3, H, W) linear radiance in units of the shortest exposure (see ``normalize_scene``).
        exposure_times: (N,) linear exposure times, any positive scale; normalized to ``t / t.min()``.
        response: camera response (default gamma 2.2, Kalantari's convention).
        noise: Poisson-Gaussian sensor noise in normalized raw units, or None.
        bits: quantization depth of the codes (8 or 16; any 1..16 works).
        reference: reference frame index (default the middle one, ``N // 2``).
        global_motion_px: camera shake: non-reference frames see the scene through a random
            homography that moves pixels by up to about this many pixels.
        moving_objects: number of textured objects that move between frames.
        object_motion_px: (min, max) displacement of an object between the reference and the
            farthest frame; intermediate frames move proportionally (linear motion).
        nonrigid_px: amplitude of a smooth random deformation of each moved object, in pixels.
        jpeg_quality: if set (1..100), each frame is JPEG-compressed (requires ``bits=8``).
        seed: all randomness (geometry, objects, noise) derives from it.

    Returns:
        SyntheticBracket (see its attributes).
    """
    x = torch.as_tensor(hdr)
    if x.ndim != 3 or x.shape[0] != 3:
        raise HdrkitError(f"hdr must have shape (3, H, W), got {tuple(x.shape)}")
    if not torch.isfinite(x).all() or (x < 0).any():
        raise HdrkitError("hdr must be finite and non-negative")
    t = np.asarray(exposure_times, dtype=np.float64).ravel()
    if t.size < 1 or not np.isfinite(t).all() or (t <= 0).any():
        raise HdrkitError(f"exposure_times must be positive and finite, got {exposure_times}")
    t = t / t.min()
    n = t.size
    ref = n // 2 if reference is None else int(reference)
    if not 0 <= ref < n:
        raise HdrkitError(f"reference must be in 0..{n - 1}, got {reference}")
    if jpeg_quality is not None and bits != 8:
        raise HdrkitError("jpeg_quality needs bits=8 (JPEG stores 8-bit codes)")
    if not 1 <= int(bits) <= 16:
        raise HdrkitError(f"bits must be in 1..16, got {bits}")
    response = response or GammaResponse(2.2)
    lo, hi = object_motion_px
    if lo < 0 or hi < lo:
        raise HdrkitError(f"object_motion_px must be (min, max) with 0 <= min <= max, got {object_motion_px}")

    rng = np.random.default_rng(seed)
    scene = _to_hwc(x)
    h, w = scene.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    objs = _draw_objects(rng, scene, int(moving_objects), (float(lo), float(hi)))
    cap = float(np.quantile(scene.max(axis=2)[:: max(1, h // 128), :: max(1, w // 128)], 0.99)) if objs else 0.0
    span = max(1, max(abs(i - ref) for i in range(n)))
    homs = np.stack([np.eye(3) if i == ref else random_homography(rng, h, w, global_motion_px) for i in range(n)])

    frames, masks = [], []
    ref_alpha = np.zeros((h, w), np.float32)
    gt = scene
    for obj in objs:
        gt, a = _paste(gt, obj, 0.0, 0.0, cap, xx, yy)
        ref_alpha = np.maximum(ref_alpha, a)
    for i in range(n):
        if i == ref:
            frames.append(gt)
            masks.append(np.zeros((h, w), np.float32))
            continue
        f, moved = scene, ref_alpha.copy()
        for obj in objs:
            f, a = _paste(f, obj, obj.distance * (i - ref) / span, nonrigid_px, cap, xx, yy)
            moved = np.maximum(moved, a)
        if global_motion_px > 0:
            f = cv2.warpPerspective(f, homs[i], (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
        frames.append(f)
        masks.append((moved > 0).astype(np.float32) if objs else np.zeros((h, w), np.float32))

    hdr_frames = torch.from_numpy(np.ascontiguousarray(np.stack(frames).transpose(0, 3, 1, 2))).float()
    gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
    times = torch.from_numpy(t).float()
    ldr = expose(hdr_frames, times[:, None], response=response, noise=noise, bits=int(bits), generator=gen)[:, 0]
    if jpeg_quality is not None:
        ldr = _jpeg(ldr, int(jpeg_quality))
    return SyntheticBracket(
        ldr=ldr.float().contiguous(),
        exposure_times=times,
        hdr_gt=hdr_frames[ref].clone(),
        reference=ref,
        masks=torch.from_numpy(np.stack(masks)[:, None]),
        homographies=torch.from_numpy(homs),
        hdr_frames=hdr_frames,
        response=response,
        noise=noise,
    )


def _jpeg(ldr: torch.Tensor, quality: int) -> torch.Tensor:
    """JPEG round trip of (N, 3, H, W) codes in [0, 1] (OpenCV's libjpeg, 4:2:0)."""
    if not 1 <= quality <= 100:
        raise HdrkitError(f"jpeg_quality must be in 1..100, got {quality}")
    out = []
    for frame in ldr:
        u8 = np.ascontiguousarray((frame.numpy().transpose(1, 2, 0)[..., ::-1] * 255).round().astype(np.uint8))
        ok, buf = cv2.imencode(".jpg", u8, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise HdrkitError("JPEG encoding failed")
        dec = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]
        out.append(torch.from_numpy(np.ascontiguousarray(dec.transpose(2, 0, 1))).float() / 255.0)
    return torch.stack(out)


EMOR_SIGMAS = (1.0, 0.5, 0.3, 0.2, 0.1)
"""Standard deviations of random EMoR coefficients c_1..c_5 (basis curves h_k peak at ~0.05-0.1)."""

PANORAMA_BAND = (0.2, 0.8)
"""Rows of an equirectangular panorama (fractions of its height) that crops may use: near the equator."""

SINGLE_IMAGE_CLIP = (0.85, 0.97)
"""Single-image pairs: the exposure saturates pixels above a random quantile in this range (3-15 %)
(``synthesize_dataset(clip_quantiles=)``)."""

HDR_SUFFIXES = (".hdr", ".exr", ".pfm")


def sample_response(family: str, rng: np.random.Generator, dorf_path=None, emor_path=None) -> tuple[Response, dict]:
    """Draw a camera response from a family; returns (response, JSON-able description).

    ``'gamma'`` (2.2, Kalantari), ``'srgb'``, ``'dorf'`` (a random measured DoRF curve, needs
    ``dorf_path``), ``'emor'`` (EMoR with 5 random coefficients drawn from ``EMOR_SIGMAS`` and
    redrawn until the curve is strictly increasing, needs ``emor_path``).
    """
    from hdrkit.camera.response import SRGBResponse, emor_response, load_dorf, load_emor

    fam = family.lower()
    if fam == "gamma":
        return GammaResponse(2.2), {"family": "gamma", "gamma": 2.2}
    if fam == "srgb":
        return SRGBResponse(), {"family": "srgb"}
    if fam == "dorf":
        if dorf_path is None:
            raise HdrkitError("response_family='dorf' needs dorf_path (a DoRF .npz with arrays I and B)")
        try:
            count = int(np.load(dorf_path)["B"].shape[0])
        except (OSError, KeyError, ValueError) as e:
            raise HdrkitError(f"{dorf_path}: not a DoRF .npz with arrays I and B ({e})") from None
        idx = int(rng.integers(count))
        return load_dorf(dorf_path, idx), {"family": "dorf", "index": idx, "source": Path(dorf_path).name}
    if fam == "emor":
        if emor_path is None:
            raise HdrkitError("response_family='emor' needs emor_path (Grossberg & Nayar's emor.txt)")
        emor = load_emor(emor_path)
        sig = np.asarray(EMOR_SIGMAS)
        c = np.zeros_like(sig)
        for _ in range(100):
            cand = rng.normal(0.0, 1.0, sig.size) * sig
            f = emor["f0"] + cand @ emor["h"][: sig.size]
            if np.all(np.diff(f) > 0) and f[0] >= -1e-9 and f[-1] <= 1 + 1e-9:
                c = cand
                break
        return emor_response(emor, c), {"family": "emor", "coeffs": [round(float(v), 6) for v in c], "source": Path(emor_path).name}
    raise HdrkitError(f"unknown response_family {family!r}: use gamma, srgb, dorf or emor")


def response_from_info(info: dict, dorf_path=None, emor_path=None) -> Response:
    """The response that ``sample_response`` described as ``info`` (as recorded in a dataset's ``meta.json``);
    DoRF and EMoR descriptions need the same files they were drawn from."""
    from hdrkit.camera.response import SRGBResponse, emor_response, load_dorf, load_emor

    fam = (info or {}).get("family")
    if fam == "gamma":
        return GammaResponse(float(info.get("gamma", 2.2)))
    if fam == "srgb":
        return SRGBResponse()
    if fam == "dorf" and dorf_path is not None:
        return load_dorf(dorf_path, int(info["index"]))
    if fam == "emor" and emor_path is not None:
        return emor_response(load_emor(emor_path), np.asarray(info["coeffs"], dtype=np.float64))
    raise HdrkitError(f"cannot rebuild the camera response {info!r}: a {fam} response needs its source file "
                      "(the DoRF .npz or emor.txt it was drawn from)")


def _list_sources(sources) -> list[Path] | None:
    if sources is None or (isinstance(sources, str) and sources == "procedural"):
        return None
    if isinstance(sources, (str, Path)):
        p = Path(sources)
        if p.is_dir():
            files = sorted(q for q in p.rglob("*") if q.is_file() and q.suffix.lower() in HDR_SUFFIXES)
            if not files:
                raise HdrkitError(f"{p}: no .hdr/.exr/.pfm files found")
            return files
        if not p.is_file():
            raise HdrkitError(f"{p}: HDR source not found")
        return [p]
    files = [Path(s) for s in sources]
    if not files:
        raise HdrkitError("no HDR sources given")
    for f in files:
        if not f.is_file():
            raise HdrkitError(f"{f}: HDR source not found")
    return files


def _crop(hdr: np.ndarray, size: tuple[int, int], rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Random rescale and crop of (H, W, 3); panoramas (W = 2H) are cropped near the equator."""
    h, w = hdr.shape[:2]
    ch, cw = size
    pano = abs(w - 2 * h) <= 2
    b0, b1 = PANORAMA_BAND if pano else (0.0, 1.0)
    lo = max(ch / ((b1 - b0) * h), cw / w)
    s = float(np.exp(rng.uniform(np.log(max(lo, 0.5)), np.log(max(lo, 1.0))))) if lo <= 1 else lo
    if abs(s - 1) > 1e-9:
        nh, nw = max(ch, int(round(h * s))), max(cw, int(round(w * s)))
        interp = cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC
        hdr = np.maximum(cv2.resize(hdr, (nw, nh), interpolation=interp), 0)
        h, w = nh, nw
    y_lo = int(np.floor(b0 * h))
    y_hi = max(y_lo, min(h - ch, int(np.ceil(b1 * h)) - ch))
    y = int(rng.integers(y_lo, y_hi + 1))
    x = int(rng.integers(0, w - cw + 1))
    flip = bool(rng.integers(2))
    out = hdr[y: y + ch, x: x + cw]
    if flip:
        out = out[:, ::-1]
    return np.ascontiguousarray(out), {"scale": round(s, 6), "y": y, "x": x, "flip": flip, "panorama": pano}


def synthesize_dataset(
    sources,
    out_dir: str | Path,
    *,
    n_scenes: int | None = None,
    seed: int = 0,
    crop_size: int | tuple[int, int] = 256,
    exposures: int = 3,
    ev_step: float | None = None,
    response_family: str = "gamma",
    dorf_path=None,
    emor_path=None,
    noise_profiles_path=None,
    bits: int = 16,
    fmt: str = "tif",
    jpeg_quality: int | None = None,
    global_motion: float = 0.0,
    moving_objects: int = 0,
    object_motion_px: tuple[float, float] = (20.0, 60.0),
    nonrigid_px: float = 0.0,
    single_image: bool = False,
    clip_quantiles: tuple[float, float] = SINGLE_IMAGE_CLIP,
    split: str = "Test",
) -> list[Path]:
    """Write a synthetic dataset in the Kalantari 2017 layout (or single-image pairs).

    Each scene ``k`` draws everything from ``numpy.random.default_rng([seed, k])``: a source
    radiance map (``sources[k % len(sources)]``, or the procedural scene), a random rescale and crop
    (panoramas near the equator) and flip, exposure placement (``normalize_scene``), the camera
    response, a sensor noise profile, camera shake and moving objects. Files are byte-identical for
    the same arguments: TIFF/PNG carry no timestamps and ``meta.json`` has sorted keys.

    Args:
        sources: HDR files, a folder searched recursively for .hdr/.exr/.pfm, or None for
            ``procedural_scene`` (seeded per scene).
        out_dir: dataset root; scenes go to ``out_dir/<split>/<k>_<source>/``.
        n_scenes: number of scenes (default: one per source; 1 for procedural).
        seed: base seed.
        crop_size: crop size, int or (H, W).
        exposures: frames per bracket.
        ev_step: stops between frames (Kalantari uses 2 or 3); None draws 2 or 3 per scene.
        response_family: ``'gamma'``, ``'srgb'``, ``'dorf'`` or ``'emor'`` (see ``sample_response``).
        dorf_path, emor_path: model files for the ``dorf``/``emor`` families.
        noise_profiles_path: darktable noise profile JSON; None for noiseless frames.
        bits: 8 or 16 (frame files and quantization).
        fmt: frame file format, ``'tif'`` or ``'png'``.
        jpeg_quality: JPEG-compress 8-bit frames at this quality (stored losslessly afterwards).
        global_motion: camera shake magnitude in pixels (see ``synthesize_bracket``).
        moving_objects: number of moving objects per scene.
        object_motion_px: their displacement range in pixels.
        nonrigid_px: amplitude of the smooth non-rigid deformation of moved objects, in pixels.
        single_image: write ``out_dir/<split>/pairs/<name>.png`` + ``<name>.hdr`` pairs instead: one 8-bit
            exposure (t = 1) of each crop, the radiance in its units (1 = saturation).
        clip_quantiles: single-image pairs: the exposure saturates the pixels whose channel maximum lies above
            a quantile drawn uniformly from this range (0.85-0.97: 3-15 % of the pixels clip).
        split: split folder name.

    Returns:
        The scene folders written (or the pair files' LDR paths when ``single_image``).

    Each scene folder has ``input_<i>.<fmt>``, ``exposure.txt`` (biases in stops, shortest 0),
    ``HDRImg.hdr`` (ground truth in the reference geometry, units of the shortest exposure),
    ``meta.json`` (seed, source, crop, response, noise, motion, reference) and, for
    tabulated responses, ``response.csv`` (the inverse curve, ``save_response_table`` format).
    """
    from hdrkit.camera.response import TabulatedResponse, save_response_table
    from hdrkit.data.kalantari2017 import write_kalantari_scene
    from hdrkit.data.noise_profiles import load_noise_profiles, sample_noise_profile
    from hdrkit.data.procedural import procedural_scene
    from hdrkit.io import atomic_path, read_hdr, write_hdr, write_ldr

    files = _list_sources(sources)
    n = int(n_scenes if n_scenes is not None else (len(files) if files else 1))
    if n < 1:
        raise HdrkitError(f"n_scenes must be >= 1, got {n_scenes}")
    ch, cw = (crop_size, crop_size) if isinstance(crop_size, int) else tuple(int(v) for v in crop_size)
    if ch < 32 or cw < 32:
        raise HdrkitError(f"crop_size must be at least 32 pixels, got {crop_size}")
    if bits not in (8, 16):
        raise HdrkitError(f"bits must be 8 or 16, got {bits}")
    if fmt not in ("tif", "png"):
        raise HdrkitError(f"fmt must be 'tif' or 'png', got {fmt!r}")
    if jpeg_quality is not None and bits != 8:
        raise HdrkitError("jpeg_quality needs bits=8")
    if ev_step is not None and not ev_step > 0:
        raise HdrkitError(f"ev_step must be positive, got {ev_step}")
    if exposures < 1:
        raise HdrkitError(f"exposures must be >= 1, got {exposures}")
    if not 0 < clip_quantiles[0] <= clip_quantiles[1] <= 1:
        raise HdrkitError(f"clip_quantiles must be (lo, hi) with 0 < lo <= hi <= 1, got {clip_quantiles}")
    profiles = load_noise_profiles(noise_profiles_path) if noise_profiles_path is not None else None
    root = Path(out_dir) / split
    root.mkdir(parents=True, exist_ok=True)
    if single_image:
        (root / "pairs").mkdir(exist_ok=True)
    cache: dict[Path, np.ndarray] = {}
    written: list[Path] = []
    pair_meta: dict[str, dict] = {}
    for k in range(n):
        rng = np.random.default_rng([int(seed), k])
        if files is None:
            src_name = "procedural"
            big = procedural_scene(max(ch, 256), max(cw, 384), seed=int(rng.integers(2**31)))
            full = big.numpy().transpose(1, 2, 0)
        else:
            src = files[k % len(files)]
            src_name = src.stem
            if src not in cache:
                cache[src] = np.ascontiguousarray(read_hdr(src).numpy().transpose(1, 2, 0), dtype=np.float32)
            full = cache[src]
        crop, crop_info = _crop(full, (ch, cw), rng)
        step = float(ev_step) if ev_step is not None else float(rng.choice([2.0, 3.0]))
        response, resp_info = sample_response(response_family, rng, dorf_path, emor_path)
        prof = sample_noise_profile(profiles, rng) if profiles is not None else None
        name = f"{k:03d}_{src_name}"
        hdr_t = torch.from_numpy(np.ascontiguousarray(crop.transpose(2, 0, 1)))
        meta = {
            "seed": int(seed), "index": k, "source": src_name, "crop": crop_info, "response": resp_info,
            "noise": prof.to_dict() if prof is not None else None, "bits": bits, "jpeg_quality": jpeg_quality,
            "generator": "hdrkit.data.synthetic.synthesize_dataset",
        }
        if single_image:
            q = float(rng.uniform(*clip_quantiles))
            scene_hdr, scale = normalize_scene(hdr_t, quantile=q, return_scale=True)
            b = synthesize_bracket(scene_hdr, exposure_times=(1.0,), response=response, noise=prof.noise if prof else None,
                                   bits=8, jpeg_quality=jpeg_quality, seed=int(rng.integers(2**31)))
            p = root / "pairs" / f"{name}.png"
            write_ldr(p, b.ldr[0], bits=8)
            write_hdr(root / "pairs" / f"{name}.hdr", b.hdr_gt)
            meta.update({"scale": scale, "clip_quantile": round(q, 6)})
            pair_meta[name] = meta
            written.append(p)
            continue
        scene_hdr, scale = normalize_scene(hdr_t, return_scale=True)
        times = tuple(2.0 ** (step * i) for i in range(exposures))
        b = synthesize_bracket(
            scene_hdr, exposure_times=times, response=response, noise=prof.noise if prof else None, bits=bits,
            global_motion_px=float(global_motion), moving_objects=int(moving_objects),
            object_motion_px=object_motion_px, nonrigid_px=float(nonrigid_px), jpeg_quality=jpeg_quality,
            seed=int(rng.integers(2**31)),
        )
        meta.update({
            "scale": scale, "ev_step": step, "exposure_times": [float(v) for v in b.exposure_times],
            "reference": b.reference, "global_motion_px": float(global_motion), "moving_objects": int(moving_objects),
            "object_motion_px": [float(v) for v in object_motion_px], "nonrigid_px": float(nonrigid_px),
            "homographies": [[[round(float(v), 9) for v in row] for row in hm] for hm in b.homographies.numpy()],
            "moved_fraction": [round(float(m.mean()), 6) for m in b.masks],
        })
        d = root / name
        write_kalantari_scene(d, b.ldr, b.exposure_times, b.hdr_gt, bits=bits, fmt=fmt, meta=meta)
        if isinstance(response, TabulatedResponse):
            save_response_table(response, d / "response.csv")
        written.append(d)
    if single_image:
        with atomic_path(root / "pairs" / "meta.json") as tmp:
            Path(tmp).write_text(json.dumps(pair_meta, sort_keys=True, indent=2) + "\n")
    return written
