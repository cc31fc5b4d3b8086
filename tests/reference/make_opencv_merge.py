"""Freeze OpenCV's MergeDebevec / MergeRobertson output on a small synthetic bracket.

Run: python tests/reference/make_opencv_merge.py  (writes tests/reference/opencv_merge.npz)

The stack: a 24x32 log-normal radiance field, times 0.25 / 1 / 4, gamma 1/2.2, uint8 (RGB order is
irrelevant to OpenCV's merges, which treat channels independently). The response is OpenCV's
CalibrateDebevec on the same stack. Stored: ``ldr`` (3, 24, 32, 3) uint8, ``times``, ``response``
(256, 3), ``debevec`` (24, 32, 3) and ``robertson`` (24, 32, 3) float32, ``opencv_version``.
"""

from pathlib import Path

import cv2
import numpy as np


def main() -> None:
    rng = np.random.default_rng(1997)
    h, w = 24, 32
    low = cv2.resize(rng.normal(0, 1.5, (4, 5, 3)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    rad = np.exp(low + rng.normal(0, 0.15, (h, w, 3)).astype(np.float32)) * 0.3
    times = np.array([0.25, 1.0, 4.0], np.float32)
    ldr = [(np.clip(rad * t, 0, 1) ** (1 / 2.2) * 255 + 0.5).astype(np.uint8) for t in times]
    response = cv2.createCalibrateDebevec(samples=40).process(ldr, times)
    debevec = cv2.createMergeDebevec().process(ldr, times, response)
    robertson = cv2.createMergeRobertson().process(ldr, times, response)
    out = Path(__file__).with_name("opencv_merge.npz")
    np.savez_compressed(out, ldr=np.stack(ldr), times=times, response=response.reshape(256, 3), debevec=debevec,
                        robertson=robertson, opencv_version=cv2.__version__)
    print(f"wrote {out} (OpenCV {cv2.__version__})")


if __name__ == "__main__":
    main()
