"""The HTML report renders in a real browser (headless Chromium), offline, with its images."""

import shutil
import subprocess

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from hdrkit.camera.exposure import expose
from hdrkit.camera.response import GammaResponse
from hdrkit.evaluate import evaluate
from hdrkit.io.hdr import write_radiance

WINDOW = (1280, 2000)
BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def _browser() -> str | None:
    return next((b for b in map(shutil.which, BROWSERS) if b), None)


def _write_scene(folder, seed: int, h: int = 96, w: int = 128) -> None:
    folder.mkdir(parents=True)
    g = torch.Generator().manual_seed(seed)
    hdr = torch.nn.functional.interpolate(torch.rand(1, 3, 5, 7, generator=g), size=(h, w), mode="bicubic").clamp(0.01, 1) ** 3 * 2
    ldr = expose(hdr, torch.tensor([[1.0, 4.0, 16.0]]), GammaResponse(2.2), bits=16)[0]
    for k in range(3):
        tifffile.imwrite(folder / f"input_{k + 1}.tif", (ldr[k].permute(1, 2, 0).numpy() * 65535 + 0.5).astype(np.uint16))
    (folder / "exposure.txt").write_text("0\n2\n4\n")
    write_radiance(folder / "HDRImg.hdr", hdr[0].permute(1, 2, 0).numpy())


def test_report_screenshot_in_headless_chromium(tmp_path):
    browser = _browser()
    if browser is None:
        pytest.skip(f"no headless browser on PATH (looked for {', '.join(BROWSERS)}); apt-get install chromium")
    for s in range(2):
        _write_scene(tmp_path / "data" / "Test" / f"scene_{s}", s)
    out = tmp_path / "report"
    evaluate(tmp_path / "data", ["debevec", "single_linearize"], out, split="Test", progress=False)
    png = tmp_path / "shot.png"
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={png}", f"--window-size={WINDOW[0]},{WINDOW[1]}",
           (out / "index.html").as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert png.is_file(), f"no screenshot; browser said: {proc.stderr[-2000:]}"
    with Image.open(png) as im:
        assert im.size == WINDOW
        rgb = np.asarray(im.convert("RGB"), dtype=np.float64)
    assert rgb.std() > 10, "screenshot is blank"
    # the contact sheet's thumbnails were loaded: a page of text on a light background has few saturated pixels,
    # the mu-law images and inferno error maps have many
    sat = rgb.max(axis=2) - rgb.min(axis=2)
    assert (sat > 60).mean() > 0.01, "no colourful thumbnails rendered"
