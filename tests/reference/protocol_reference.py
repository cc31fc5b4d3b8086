"""Independent, deliberately literal re-implementation of the HDR-Transformer / SCTNet evaluation protocol.

Used by tests/test_metrics.py to cross-check the fast paths of ``hdrkit.metrics``, and usable by hand
to cross-check ``hdrkit eval`` on a directory in the Kalantari layout. It shares no code with
``hdrkit`` and follows the published scripts step by step (``test.py`` and ``utils/utils.py`` of
liuzhen03/HDR-Transformer-PyTorch, identical in Zongwei97/SCTNet):

* images are CHW float arrays; PSNR-L is ``skimage.metrics.peak_signal_noise_ratio(label, pred,
  data_range=1.0)`` with no clipping;
* PSNR-mu is the same after ``log(1 + 5000 x) / log(1 + 5000)``;
* SSIM works on HWC ``clip(x * 255, 0, 255)`` float64 with ``cv2.filter2D`` and the 2-D window
  ``outer(g, g)``, ``g = cv2.getGaussianKernel(11, 1.5)``, each statistic cropped ``[5:-5, 5:-5]``;
  the 3-channel case averages three calls on the full 3-channel array, as the original does;
* scenes are averaged arithmetically.

Command line (prints per-scene rows and the averages)::

    python tests/reference/protocol_reference.py GT_ROOT PRED_ROOT [--pred-name "{scene}.hdr"]

with ``GT_ROOT/<scene>/HDRImg.hdr`` (Kalantari layout) and the prediction at
``PRED_ROOT/<pred-name>`` (``{scene}`` is replaced). ``.hdr`` files are read with OpenCV (the
original reads labels with imageio/FreeImage; both decode RGBE as ``m * 2^(e - 136)``, we believe,
but we have not run FreeImage here), ``.exr`` with the OpenEXR bindings.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
from skimage.metrics import peak_signal_noise_ratio


def range_compressor(x):
    return np.log(1 + 5000 * x) / np.log(1 + 5000)


def ssim_single(img1, img2):
    c1 = (0.01 * 255) ** 2
    c2 = (0.03 * 255) ** 2
    img1 = img1.astype(np.float64)
    img2 = img2.astype(np.float64)
    g = cv2.getGaussianKernel(11, 1.5)
    window = np.outer(g, g.transpose())
    mu1 = cv2.filter2D(img1, -1, window)[5:-5, 5:-5]
    mu2 = cv2.filter2D(img2, -1, window)[5:-5, 5:-5]
    var1 = cv2.filter2D(img1 ** 2, -1, window)[5:-5, 5:-5] - mu1 ** 2
    var2 = cv2.filter2D(img2 ** 2, -1, window)[5:-5, 5:-5] - mu2 ** 2
    cov = cv2.filter2D(img1 * img2, -1, window)[5:-5, 5:-5] - mu1 * mu2
    num = (2 * mu1 * mu2 + c1) * (2 * cov + c2)
    den = (mu1 ** 2 + mu2 ** 2 + c1) * (var1 + var2 + c2)
    return (num / den).mean()


def calculate_ssim(img1, img2):
    if img1.shape != img2.shape:
        raise ValueError("Input images must have the same dimensions.")
    if img1.ndim == 2:
        return ssim_single(img1, img2)
    if img1.shape[2] == 3:
        return np.array([ssim_single(img1, img2) for _ in range(3)]).mean()
    return ssim_single(np.squeeze(img1), np.squeeze(img2))


def scene_metrics(pred_chw, label_chw):
    """The four protocol numbers of one scene; ``pred_chw``, ``label_chw`` are (3, H, W) linear."""
    psnr_l = peak_signal_noise_ratio(label_chw, pred_chw, data_range=1.0)
    label_mu = range_compressor(label_chw)
    pred_mu = range_compressor(pred_chw)
    psnr_mu = peak_signal_noise_ratio(label_mu, pred_mu, data_range=1.0)
    ssim_l = calculate_ssim(np.clip(pred_chw * 255.0, 0.0, 255.0).transpose(1, 2, 0),
                            np.clip(label_chw * 255.0, 0.0, 255.0).transpose(1, 2, 0))
    ssim_mu = calculate_ssim(np.clip(pred_mu * 255.0, 0.0, 255.0).transpose(1, 2, 0),
                             np.clip(label_mu * 255.0, 0.0, 255.0).transpose(1, 2, 0))
    return {"psnr_mu": float(psnr_mu), "psnr_l": float(psnr_l), "ssim_mu": float(ssim_mu), "ssim_l": float(ssim_l)}


def read_linear_chw(path):
    """Read a .hdr (OpenCV) or .exr (OpenEXR) file as a (3, H, W) float32 RGB array."""
    path = Path(path)
    if path.suffix.lower() == ".exr":
        import OpenEXR

        channels = OpenEXR.File(str(path)).channels()
        key = "RGB" if "RGB" in channels else "RGBA"
        rgb = np.asarray(channels[key].pixels, dtype=np.float32)[..., :3]
    else:
        bgr = cv2.imread(str(path), cv2.IMREAD_ANYDEPTH | cv2.IMREAD_COLOR)
        if bgr is None:
            raise FileNotFoundError(f"cannot read {path}")
        rgb = bgr[..., ::-1].astype(np.float32)
    return np.ascontiguousarray(rgb.transpose(2, 0, 1))


def evaluate_dirs(gt_root, pred_root, pred_name="{scene}.hdr"):
    """Per-scene rows ``[(scene, metrics)]`` and their averages for a Kalantari-layout test set."""
    scenes = sorted(p.parent.name for p in Path(gt_root).glob("*/HDRImg.hdr"))
    if not scenes:
        raise FileNotFoundError(f"no <scene>/HDRImg.hdr under {gt_root}")
    rows = []
    for scene in scenes:
        label = read_linear_chw(Path(gt_root) / scene / "HDRImg.hdr")
        pred = read_linear_chw(Path(pred_root) / pred_name.format(scene=scene))
        rows.append((scene, scene_metrics(pred, label)))
    keys = rows[0][1].keys()
    avg = {k: sum(r[k] for _, r in rows) / len(rows) for k in keys}
    return rows, avg


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("gt_root")
    ap.add_argument("pred_root")
    ap.add_argument("--pred-name", default="{scene}.hdr")
    args = ap.parse_args(argv)
    rows, avg = evaluate_dirs(args.gt_root, args.pred_root, args.pred_name)
    for scene, r in rows:
        print(f"{scene}\t" + "\t".join(f"{k}={v:.6f}" for k, v in r.items()))
    print("Average\t" + "\t".join(f"{k}={v:.6f}" for k, v in avg.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
