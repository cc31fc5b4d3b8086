"""Fixed training / validation split of the shared radiance maps (``<data>/hdr/``), disjoint by source image.

The public benchmark (``benchmarks/public_benchmark.py``) synthesizes its validation brackets from
:data:`VALIDATION_HDR` only; training code must draw patches from :data:`TRAINING_HDR` only, so that no
validation scene (not even another crop of it) is seen in training. Paths are relative to the ``hdr/``
folder of the shared data (see the data README). The choice spans indoor, studio, daylight, sun, night and
photographic (non-panorama) content in both lists.
"""

from __future__ import annotations

from pathlib import Path

from hdrkit.errors import HdrkitError

__all__ = ["TRAINING_HDR", "VALIDATION_HDR", "split_paths"]

VALIDATION_HDR: tuple[str, ...] = (
    "polyhaven/aerodynamics_workshop_1k.hdr",
    "polyhaven/brown_photostudio_06_1k.hdr",
    "polyhaven/chinese_garden_1k.hdr",
    "polyhaven/narrow_moonlit_road_1k.hdr",
    "polyhaven/potsdamer_platz_1k.hdr",
    "polyhaven/thatch_chapel_1k.hdr",
    "colour_hdri/HDRMark_small.hdr",
    "openexr/Tiles/GoldenGate.exr",
    "openexr/MultiResolution/Bonita.exr",
)
"""Validation sources: 6 of the 20 Poly Haven panoramas, one colour-hdri photo, two OpenEXR photographs."""

TRAINING_HDR: tuple[str, ...] = (
    "polyhaven/adams_place_bridge_1k.hdr",
    "polyhaven/brown_photostudio_01_1k.hdr",
    "polyhaven/circus_arena_1k.hdr",
    "polyhaven/empty_warehouse_01_1k.hdr",
    "polyhaven/forest_slope_1k.hdr",
    "polyhaven/immenstadter_horn_1k.hdr",
    "polyhaven/kloppenheim_05_1k.hdr",
    "polyhaven/lebombo_1k.hdr",
    "polyhaven/noon_grass_1k.hdr",
    "polyhaven/peppermint_powerplant_1k.hdr",
    "polyhaven/rainforest_trail_1k.hdr",
    "polyhaven/st_peters_square_night_1k.hdr",
    "polyhaven/studio_small_03_1k.hdr",
    "polyhaven/vestibule_1k.hdr",
    "colour_hdri/Grace_Cathedral.hdr",
    "colour_hdri/Dots.exr",
    "openexr/ScanLines/Carrots.exr",
    "openexr/LuminanceChroma/Garden.exr",
    "openexr/Chromaticities/Rec709.exr",
)
"""Training sources: every other radiance map in ``hdr/`` (14 Poly Haven, 2 colour-hdri, 3 OpenEXR)."""


def split_paths(hdr_root: str | Path, split: str) -> list[Path]:
    """Absolute paths of ``split`` (``'training'`` or ``'validation'``) under ``hdr_root`` (the ``hdr/`` folder).

    Raises HdrkitError if the split name is unknown or a listed file is missing.
    """
    lists = {"training": TRAINING_HDR, "validation": VALIDATION_HDR}
    if split not in lists:
        raise HdrkitError(f"unknown split {split!r}: use 'training' or 'validation'")
    root = Path(hdr_root)
    paths = [root / rel for rel in lists[split]]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise HdrkitError(f"{root}: {len(missing)} file(s) of the {split} split missing, e.g. {missing[0]}; "
                          "point at the shared data's hdr/ folder")
    return paths
