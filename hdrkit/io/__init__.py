"""Image input/output: LDR frames and brackets, radiance maps, EXIF exposure, atomic writes.

Public functions return torch tensors; numpy stays inside this package.
"""

from hdrkit.io.atomic import atomic_path, check_output_path
from hdrkit.io.batch import BracketBatch
from hdrkit.io.bracket import Bracket, read_bracket, read_exposure_file
from hdrkit.io.exif import ExposureInfo, read_exposure, relative_exposures
from hdrkit.io.hdr import read_hdr, write_hdr
from hdrkit.io.ldr import LdrImage, read_ldr, write_ldr
from hdrkit.io.raw import is_raw_path

__all__ = [
    "Bracket",
    "BracketBatch",
    "ExposureInfo",
    "LdrImage",
    "atomic_path",
    "check_output_path",
    "is_raw_path",
    "read_bracket",
    "read_exposure",
    "read_exposure_file",
    "read_hdr",
    "read_ldr",
    "relative_exposures",
    "write_hdr",
    "write_ldr",
]
