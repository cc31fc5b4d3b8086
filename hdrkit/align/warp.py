"""Geometric warps for bracket alignment: homographies (differentiable) and integer shifts.

Coordinate convention used everywhere in ``hdrkit.align``: a pixel's homogeneous coordinates are
``(x, y, 1)`` with ``x`` the column and ``y`` the row, and pixel *centres* sit at integers
(``x = 0 .. W-1``). A homography ``Hm`` used for warping maps *output* pixel coordinates to *source*
pixel coordinates (``out(p) = src(Hm p)``, "inverse mapping"), which is the same direction as
OpenCV's ``warpPerspective(..., WARP_INVERSE_MAP)`` and ``findTransformECC``'s ``warpMatrix``.

Sampling uses ``torch.nn.functional.grid_sample`` (bilinear, ``align_corners=True``, so the
normalized -1 and +1 land exactly on the centres of the first and last pixels), which makes
``warp_homography`` differentiable in both the image and the homography.

Also here, shared by every aligner: ``AlignResult`` and ``apply_transforms``, which warps each
frame to the reference and fills pixels that have no source inside their own frame with the
reference re-exposed to that frame's exposure, ``f(clip(f^-1(ref) * t_frame / t_ref, 0, 1))``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from hdrkit.camera.response import GammaResponse, Response
from hdrkit.errors import HdrkitError
from hdrkit.parallel import parallel_map

__all__ = [
    "AlignResult",
    "apply_transforms",
    "warp_homography",
    "homography_valid_mask",
    "shift_image",
    "shift_valid_mask",
    "translation_homography",
]


def _source_coords(homography: torch.Tensor, size: tuple[int, int], dtype, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Source pixel coordinates ``(x, y)``, each (B, H, W), of every output pixel centre."""
    h, w = size
    ys = torch.arange(h, dtype=dtype, device=device)
    xs = torch.arange(w, dtype=dtype, device=device)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    pts = torch.stack([gx, gy, torch.ones_like(gx)], dim=-1).reshape(-1, 3)
    mapped = torch.einsum("bij,pj->bpi", homography.to(dtype), pts)
    z = mapped[..., 2]
    z = torch.where(z.abs() < 1e-12, torch.full_like(z, 1e-12), z)
    sx = (mapped[..., 0] / z).reshape(-1, h, w)
    sy = (mapped[..., 1] / z).reshape(-1, h, w)
    return sx, sy


def _check(image: torch.Tensor, homography: torch.Tensor) -> None:
    if image.ndim != 4:
        raise HdrkitError(f"image must have shape (B, C, H, W), got {tuple(image.shape)}")
    if homography.shape != (image.shape[0], 3, 3):
        raise HdrkitError(f"homography must have shape ({image.shape[0]}, 3, 3), got {tuple(homography.shape)}")


def warp_homography(
    image: torch.Tensor,
    homography: torch.Tensor,
    size: tuple[int, int] | None = None,
    *,
    padding_mode: str = "zeros",
) -> torch.Tensor:
    """Resample ``image`` through a homography: ``out(p) = image(homography @ p)``.

    Args:
        image: (B, C, H, W) any values (codes or radiance); float.
        homography: (B, 3, 3) maps output pixel coordinates to source pixel coordinates
            (pixel centres at integers, ``(x, y, 1)`` column-row order).
        size: output ``(H_out, W_out)``; default the input size.
        padding_mode: ``grid_sample`` padding for samples outside the source: 'zeros', 'border'
            or 'reflection'.

    Returns:
        (B, C, H_out, W_out) bilinear samples, differentiable w.r.t. ``image`` and ``homography``.
    """
    _check(image, homography)
    h, w = image.shape[-2:]
    size = (h, w) if size is None else (int(size[0]), int(size[1]))
    sx, sy = _source_coords(homography, size, image.dtype, image.device)
    gx = 2.0 * sx / max(w - 1, 1) - 1.0
    gy = 2.0 * sy / max(h - 1, 1) - 1.0
    grid = torch.stack([gx, gy], dim=-1)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode=padding_mode, align_corners=True)


def homography_valid_mask(homography: torch.Tensor, source_size: tuple[int, int], size: tuple[int, int] | None = None) -> torch.Tensor:
    """(B, 1, H_out, W_out) bool: output pixels whose source point lies inside the source frame.

    "Inside" means within the source's pixel area ``[-0.5, W - 0.5] x [-0.5, H - 0.5]``.
    """
    h, w = source_size
    size = source_size if size is None else size
    sx, sy = _source_coords(homography.detach().to(torch.float64), size, torch.float64, homography.device)
    inside = (sx >= -0.5) & (sx <= w - 0.5) & (sy >= -0.5) & (sy <= h - 0.5)
    return inside[:, None]


def translation_homography(dy: float, dx: float, dtype=torch.float64) -> torch.Tensor:
    """(3, 3) homography of ``shift_image(., dy, dx)``: output ``(x, y)`` reads source ``(x - dx, y - dy)``."""
    return torch.tensor([[1.0, 0.0, -dx], [0.0, 1.0, -dy], [0.0, 0.0, 1.0]], dtype=dtype)


def shift_image(image: torch.Tensor, dy: int, dx: int, fill: float = 0.0, out: torch.Tensor | None = None) -> torch.Tensor:
    """Integer translation: ``out[..., y, x] = image[..., y - dy, x - dx]``; uncovered pixels get ``fill``.

    Args:
        image: (..., H, W) tensor of any dtype (bool bitmaps included).
        dy, dx: shift in pixels (positive moves content down / right).
        fill: value of pixels with no source.
        out: optional preallocated result (same shape and dtype, not overlapping ``image``).

    Returns:
        Tensor of the same shape and dtype (``out`` if given). Exact (no interpolation).
    """
    dy, dx = int(dy), int(dx)
    h, w = image.shape[-2:]
    if out is None:
        out = torch.empty_like(image)
    if abs(dy) >= h or abs(dx) >= w:
        return out.fill_(fill)
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[..., yd, xd] = image[..., ys, xs]
    rows = slice(0, dy) if dy >= 0 else slice(h + dy, h)
    cols = slice(0, dx) if dx >= 0 else slice(w + dx, w)
    out[..., rows, :] = fill
    out[..., :, cols] = fill
    return out


def shift_valid_mask(size: tuple[int, int], dy: int, dx: int, device=None) -> torch.Tensor:
    """(1, H, W) bool: pixels that ``shift_image(., dy, dx)`` fills from inside the source."""
    ones = torch.ones((1, *size), dtype=torch.bool, device=device)
    return shift_image(ones, dy, dx, fill=False)


@dataclass
class AlignResult:
    """What every aligner returns.

    Attributes:
        ldr: aligned frames, the input's shape ((N, 3, H, W) or (B, N, 3, H, W)), codes in [0, 1] (integer codes of the input's type for uint8 / uint16 input).
            Pixels with no source inside their frame are filled with the reference frame
            re-exposed to that frame's exposure (see ``apply_transforms``), so a merge can use
            them without a mask.
        transforms: (N, 3, 3) or (B, N, 3, 3) float64 homographies mapping *reference* pixel
            coordinates to *frame* pixel coordinates (``aligned_i(p) = frame_i(T_i p)``); the
            reference's is the identity.
        valid: (N, 1, H, W) or (B, N, 1, H, W) bool, True where the aligned pixel came from inside
            its own source frame.
        reference: index of the reference frame (int, or list of int per bracket when batched).
        info: per-frame notes, e.g. ``{'method': [...]}`` saying which frames fell back to translation.
    """

    ldr: torch.Tensor
    transforms: torch.Tensor
    valid: torch.Tensor
    reference: int | list[int] = 0
    info: dict = field(default_factory=dict)


def as_bracket(ldr: torch.Tensor, exposure_times=None) -> tuple[torch.Tensor, torch.Tensor | None, bool]:
    """Normalize ``ldr`` to (B, N, 3, H, W) and times to (B, N); the bool says the input was batched."""
    if not isinstance(ldr, torch.Tensor):
        raise HdrkitError("ldr must be a torch tensor of shape (N, 3, H, W) or (B, N, 3, H, W)")
    batched = ldr.ndim == 5
    if ldr.ndim not in (4, 5) or ldr.shape[-3] != 3:
        raise HdrkitError(f"ldr must have shape (N, 3, H, W) or (B, N, 3, H, W), got {tuple(ldr.shape)}")
    x = ldr if batched else ldr[None]
    t = None
    if exposure_times is not None:
        t = torch.as_tensor(exposure_times, dtype=torch.float64)
        if t.ndim == 1:
            t = t[None].expand(x.shape[0], -1)
        if t.shape != x.shape[:2]:
            raise HdrkitError(f"exposure_times must have shape {tuple(x.shape[1:2])} or {tuple(x.shape[:2])}, got {tuple(t.shape)}")
        if not torch.isfinite(t).all() or (t <= 0).any():
            raise HdrkitError("exposure_times must be finite and positive (linear times, not EV)")
    return x, t, batched


def default_reference(frames: torch.Tensor, exposure_times: torch.Tensor | None) -> int:
    """Middle frame by exposure: index ``N // 2`` of the frames sorted by time (by mean code without times).

    frames: (N, 3, H, W) codes; exposure_times: (N,) or None.
    """
    key = exposure_times if exposure_times is not None else frames.mean(dim=(1, 2, 3), dtype=torch.float64)
    order = torch.argsort(key.to(torch.float64), stable=True)
    return int(order[frames.shape[0] // 2])


def check_reference(reference, n: int) -> int | None:
    """Validate a user-given reference index (negative indices allowed)."""
    if reference is None:
        return None
    r = int(reference)
    if not -n <= r < n:
        raise HdrkitError(f"reference={reference} is out of range for {n} frames: use 0..{n - 1} or None")
    return r % n


def reexpose(ref: torch.Tensor, ratio: torch.Tensor, response: Response) -> torch.Tensor:
    """Reference codes re-exposed by ``ratio = t_frame / t_ref``: ``f(clip(f^-1(ref) * ratio, 0, 1))``.

    ref: (3, H, W) codes; ratio: scalar tensor. Returns (3, H, W) codes.
    """
    return response.forward((response.inverse(ref) * ratio.to(ref.dtype)).clamp(0, 1))


def estimate_ratio(frame: torch.Tensor, ref: torch.Tensor, mask: torch.Tensor, response: Response) -> torch.Tensor:
    """Exposure ratio ``t_frame / t_ref`` estimated as the median of linear ratios over well-exposed pixels."""
    good = mask & (frame > 0.05) & (frame < 0.95) & (ref > 0.05) & (ref < 0.95)
    if good.sum() < 16:
        return torch.tensor(1.0, dtype=torch.float64)
    r = response.inverse(frame)[good].double() / response.inverse(ref)[good].double().clamp_min(1e-8)
    return r.median()


def _ratio(times, bi, i, r, out, ref, ok, response) -> torch.Tensor:
    if times is not None:
        return times[bi, i] / times[bi, r]
    return estimate_ratio(out, ref, ok.expand_as(out), response)


def _fast_warp_ok(x: torch.Tensor) -> bool:
    return x.device.type == "cpu" and x.dtype == torch.float32 and not (x.requires_grad and torch.is_grad_enabled())


def _warp_frame(frame: np.ndarray, hm: np.ndarray, out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``warp_homography(frame, hm, padding_mode='border')`` clamped to [0, 1], and its valid mask, for a
    (3, H, W) float32 numpy frame: ``cv2.warpPerspective`` per plane (bilinear, replicated border; the
    same samples as ``grid_sample`` to ~1e-4 of the local contrast with OpenCV 5's float coordinates,
    1/32 px positions with older builds) and a nearest-neighbour warp of ones for the mask (source
    inside ``[-0.5, W - 0.5] x [-0.5, H - 0.5]``, as ``homography_valid_mask``).
    Returns ((3, H, W) float32 (``out`` when given), (1, H, W) bool).
    """
    import cv2

    h, w = frame.shape[-2:]
    out = np.empty_like(frame) if out is None else out
    for src, dst in zip(frame, out):
        cv2.warpPerspective(src, hm, (w, h), dst=dst, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
    np.clip(out, 0, 1, out=out)
    ones = np.ones((h, w), np.uint8)
    ok = cv2.warpPerspective(ones, hm, (w, h), flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP, borderValue=0) > 0
    return out, ok[None]


def _warp_codes(codes: np.ndarray, bits: int, hm: np.ndarray, out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``_warp_frame`` of a frame given as (3, H, W) codes of ``bits`` (8: uint8, 16: uint16): each plane is resampled
    as 16-bit codes (``cv2.warpPerspective``, bilinear, replicated border) and written to the float32
    ``out`` as ``code / 65535`` (on the 16-bit grid, in [0, 1] by construction). Returns (out, (1, H, W) bool)."""
    import cv2

    h, w = codes.shape[-2:]
    buf = np.empty((h, w), np.uint16)
    for src, dst in zip(codes, out):
        # 8 bits: k / 255 == 257 k / 65535 exactly
        src16 = src if bits == 16 else cv2.multiply(src, 257, dtype=cv2.CV_16U)
        cv2.warpPerspective(src16, hm, (w, h), dst=buf, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
        np.divide(buf, np.float32(65535), out=dst)  # the float32 nearest to k / 65535, as the float path
    ones = np.ones((h, w), np.uint8)
    ok = cv2.warpPerspective(ones, hm, (w, h), flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP, borderValue=0) > 0
    return out, ok[None]


def _round_codes(x: torch.Tensor, bits: int | None) -> torch.Tensor:
    """``x`` rounded to the grid ``k / (2^bits - 1)`` (unchanged for ``bits`` None)."""
    if bits is None:
        return x
    peak = float(2**bits - 1)
    return torch.round(x * peak) / peak


def _reexpose_codes(ref: np.ndarray, ratio: float, response: Response, bits: int) -> np.ndarray:
    """``reexpose`` of reference codes on the grid of ``bits`` by a per-code table, rounded to that grid.

    ref: (3, K) float32 codes ``k / (2^bits - 1)``. Returns (3, K) float32.
    """
    peak = 2**bits - 1
    table = (_code_table(ratio, response, bits, np.float64) / peak).astype(np.float32)
    idx = np.rint(ref * np.float32(peak)).astype(np.int32)
    return np.stack([np.take(table[c], idx[c], mode="clip") for c in range(3)])


def _fill(out: np.ndarray, region, ref: torch.Tensor, ratio: torch.Tensor, response: Response, bits: int | None) -> None:
    """``out[:, region] = reexpose(ref[:, region])`` for (3, H, W) numpy ``out`` (rounded to the code grid
    of ``bits`` by a table when given); ``region`` indexes the last two dimensions."""
    src = ref.detach().numpy()[(slice(None), *region)] if isinstance(region, tuple) else ref.detach().numpy()[:, region]
    if bits is not None:
        vals = _reexpose_codes(src.reshape(3, -1), float(ratio), response, bits).reshape(src.shape)
    else:
        flat = torch.from_numpy(np.ascontiguousarray(src.reshape(3, -1, 1)))
        vals = reexpose(flat, ratio, response).numpy().reshape(src.shape)
    if isinstance(region, tuple):
        out[(slice(None), *region)] = vals
    else:
        out[:, region] = vals


def apply_transforms(
    ldr: torch.Tensor,
    transforms: torch.Tensor,
    reference: list[int],
    exposure_times: torch.Tensor | None = None,
    response: Response | None = None,
    *,
    bits: int | None = None,
    codes: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Warp every frame to its reference and fill uncovered pixels with the re-exposed reference.

    Args:
        ldr: (B, N, 3, H, W) codes in [0, 1].
        transforms: (B, N, 3, 3) reference -> frame pixel coordinates. Pure integer translations
            are applied exactly with ``shift_image``; anything else with bilinear ``warp_homography``.
        reference: reference index per bracket.
        exposure_times: (B, N) linear times used for the fill; None estimates ``t_frame / t_ref``
            from the overlap (``estimate_ratio``).
        response: camera response used for the fill; default gamma 2.2.
        bits: the code depth of ``ldr`` when its values lie on that grid (``hdrkit.align.common.bracket_codes``):
            fills are then rounded to the same grid and resampled frames to the 16-bit grid (at most
            7.6e-6 away, far below any camera's quantization), so merges can use per-code tables.
        codes: optional, ``ldr`` as its integer codes of ``bits`` (``bracket_codes``): frames are then
            resampled as 16-bit codes (OpenCV's fixed-point bilinear: 1/32 px positions, values rounded to
            the 16-bit grid), 2x faster than the float path and within one 16-bit step of it.

    Integer codes (``ldr`` uint8 or uint16 on the CPU, ``k / (2^bits - 1)``) come back as integer codes of
    the same type: translations move codes exactly, fills and resampled values are rounded to the grid.

    Returns:
        aligned (B, N, 3, H, W) codes (``ldr``'s dtype), valid (B, N, 1, H, W) bool.
    """
    response = response or GammaResponse(2.2)
    if ldr.dtype in _CODE_BITS:
        return _apply_transforms_codes(ldr, transforms, reference, exposure_times, response)
    b, n, _, h, w = ldr.shape
    eye = torch.eye(3, dtype=torch.float64)
    fast = _fast_warp_ok(ldr)
    code_warp = codes is not None and bits in (8, 16)
    if fast:  # numpy copies and masks, frames on parallel threads
        aligned = torch.from_numpy(np.empty(ldr.shape, np.float32))
        valid = torch.from_numpy(np.ones((b, n, 1, h, w), bool))
    else:
        aligned = torch.empty_like(ldr)
        valid = torch.ones((b, n, 1, h, w), dtype=torch.bool, device=ldr.device)

    def one(job: tuple[int, int]) -> None:
        bi, i = job
        ref = ldr[bi, reference[bi]]
        tf = transforms[bi, i].to(torch.float64)
        frame = ldr[bi, i]
        if torch.allclose(tf, eye, atol=1e-12):
            if fast:
                np.copyto(aligned[bi, i].numpy(), frame.detach().numpy())
            else:
                aligned[bi, i] = frame
            return
        d = tf - eye
        is_shift = torch.allclose(d[:2, :2], torch.zeros(2, 2, dtype=torch.float64)) and d[2].abs().max() == 0
        if is_shift and torch.equal(tf[:2, 2].round(), tf[:2, 2]):
            dy, dx = int(-tf[1, 2]), int(-tf[0, 2])
            if fast:
                out = aligned[bi, i]
                ok = torch.from_numpy(_shift_np(frame.detach().numpy(), dy, dx, out.numpy()))
            else:
                out = shift_image(frame, dy, dx, out=aligned[bi, i])
                ok = shift_valid_mask((h, w), dy, dx, device=ldr.device)
            ratio = _ratio(exposure_times, bi, i, reference[bi], out, ref, ok, response)
            # only the uncovered strips need the fill: re-expose just those rows and columns
            rows = slice(0, min(dy, h)) if dy > 0 else slice(max(h + dy, 0), h)
            cols = slice(0, min(dx, w)) if dx > 0 else slice(max(w + dx, 0), w)
            for strip, needed in (((rows, slice(None)), dy), ((slice(None), cols), dx)):
                if not needed:
                    continue
                if fast:
                    _fill(out.numpy(), strip, ref, ratio, response, bits)
                else:
                    out[(slice(None), *strip)] = reexpose(ref[(slice(None), *strip)], ratio, response)
        elif fast:
            if code_warp:
                out_np, ok_np = _warp_codes(codes[bi, i].numpy(), bits, tf.numpy(), aligned[bi, i].numpy())
            else:
                out_np, ok_np = _warp_frame(frame.detach().numpy(), tf.numpy(), aligned[bi, i].numpy())
            out, ok = torch.from_numpy(out_np), torch.from_numpy(ok_np)
            if not ok_np.all():
                ratio = _ratio(exposure_times, bi, i, reference[bi], out, ref, ok, response)
                _fill(out_np, ~ok_np[0], ref, ratio, response, bits)
            if bits is not None and not code_warp:  # round to the 16-bit grid: round(z * peak) / peak
                import cv2

                peak = np.float32(2**16 - 1)
                for plane in out_np:
                    np.divide(cv2.multiply(plane, float(peak), dtype=cv2.CV_16U), peak, out=plane)
        else:
            hm = tf[None].to(ldr.device)
            warped = warp_homography(frame[None], hm.to(frame.dtype), padding_mode="border")[0].clamp(0, 1)
            ok = homography_valid_mask(hm, (h, w))[0]
            ratio = _ratio(exposure_times, bi, i, reference[bi], warped, ref, ok, response)
            out = torch.where(ok, warped, reexpose(ref, ratio, response)) if not ok.all() else warped
        if out.data_ptr() != aligned[bi, i].data_ptr():
            aligned[bi, i] = out
        if fast:
            np.copyto(valid[bi, i].numpy(), ok.numpy())
        else:
            valid[bi, i] = ok

    jobs = [(bi, i) for bi in range(b) for i in range(n)]
    if fast:
        parallel_map(one, jobs)
    else:
        for job in jobs:
            one(job)
    return aligned, valid


_CODE_BITS = {torch.uint8: 8, torch.uint16: 16}


def _code_table(ratio: float, response: Response, bits: int, dtype) -> np.ndarray:
    """(3, 2^bits) integer table: code k of the reference -> ``reexpose``d code, rounded to the grid."""
    peak = 2**bits - 1
    z = torch.linspace(0, 1, peak + 1, dtype=torch.float64).view(1, -1, 1).expand(3, -1, 1)
    return torch.round(reexpose(z, torch.tensor(ratio, dtype=torch.float64), response).reshape(3, -1) * peak).numpy().astype(dtype)


def _apply_transforms_codes(codes, transforms, reference, exposure_times, response):
    """``apply_transforms`` of (B, N, 3, H, W) uint8 / uint16 codes into codes of the same type."""
    if codes.device.type != "cpu":
        raise HdrkitError("integer codes are aligned on the CPU: move them with .cpu() or pass float32 codes in [0, 1]")
    b, n, _, h, w = codes.shape
    bits = _CODE_BITS[codes.dtype]
    peak = float(2**bits - 1)
    src = codes.contiguous().numpy()
    aligned = np.empty(src.shape, src.dtype)
    valid = np.ones((b, n, 1, h, w), bool)
    eye = np.eye(3)

    def ratio_of(bi: int, i: int, out: np.ndarray, ok: np.ndarray) -> float:
        if exposure_times is not None:
            return float(exposure_times[bi, i] / exposure_times[bi, reference[bi]])
        as_float = lambda a: torch.from_numpy(a.astype(np.float32) / np.float32(peak))  # noqa: E731
        return float(estimate_ratio(as_float(out), as_float(src[bi, reference[bi]]), torch.from_numpy(ok).expand(3, h, w), response))

    def one(job: tuple[int, int]) -> None:
        bi, i = job
        frame, out, ref = src[bi, i], aligned[bi, i], src[bi, reference[bi]]
        tf = transforms[bi, i].to(torch.float64).numpy()
        if np.allclose(tf, eye, rtol=0, atol=1e-12):
            np.copyto(out, frame)
            return
        d = tf - eye
        if not d[:2, :2].any() and not d[2].any() and np.array_equal(np.round(tf[:2, 2]), tf[:2, 2]):
            dy, dx = int(-tf[1, 2]), int(-tf[0, 2])
            ok = _shift_np(frame, dy, dx, out)
            strips = [(slice(0, min(dy, h)) if dy > 0 else slice(max(h + dy, 0), h), slice(None))] if dy else []
            strips += [(slice(None), slice(0, min(dx, w)) if dx > 0 else slice(max(w + dx, 0), w))] if dx else []
            if strips:
                table = _code_table(ratio_of(bi, i, out, ok), response, bits, src.dtype)
                for rows, cols in strips:
                    for c in range(3):
                        out[c, rows, cols] = table[c][ref[c, rows, cols]]
        else:  # resample in float, round back to the grid
            warped, ok = _warp_frame(frame.astype(np.float32) / np.float32(peak), tf)
            if not ok.all():
                table = _code_table(ratio_of(bi, i, np.rint(warped * np.float32(peak)).astype(src.dtype), ok), response, bits, src.dtype)
                miss = ~ok[0]
                for c in range(3):
                    warped[c][miss] = table[c][ref[c][miss]] / np.float32(peak)
            np.copyto(out, np.rint(warped * np.float32(peak)), casting="unsafe")
        valid[bi, i] = ok

    parallel_map(one, [(bi, i) for bi in range(b) for i in range(n)])
    return torch.from_numpy(aligned), torch.from_numpy(valid)


def _shift_np(src: np.ndarray, dy: int, dx: int, out: np.ndarray) -> np.ndarray:
    """``shift_image`` of a (C, H, W) numpy array into ``out`` (uncovered pixels left as they are);
    returns the (1, H, W) bool mask of the covered pixels (``shift_valid_mask``)."""
    h, w = src.shape[-2:]
    ok = np.zeros((1, h, w), bool)
    if abs(dy) >= h or abs(dx) >= w:
        return ok
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    np.copyto(out[:, yd, xd], src[:, ys, xs])
    ok[:, yd, xd] = True
    return ok
