"""Classical expansion operators (inverse tone mapping): one LDR photo -> radiance, one function per paper.

Each takes display-referred codes ``ldr`` (B, 3, H, W) in [0, 1], linearizes them with the camera
``response`` (gamma 2.2 when unknown) and expands the luminance; colour ratios are kept. The output scale
is the operator's own (single-image HDR is compared after a global scale, ``hdrkit.metrics.log2_rmse_regions``).
They are registered as single-image methods ``akyuz2007`` and ``landis2002`` in ``hdrkit.methods``.
``hdr_from_photo`` (``hdrkit expand``) runs any single-image method, classical or learned, on a photo file.
"""

from hdrkit.expand.akyuz2007 import expand_akyuz2007
from hdrkit.expand.common import linear_luminance, with_luminance
from hdrkit.expand.landis2002 import expand_landis2002
from hdrkit.expand.photo import ExpandResult, hdr_from_photo

__all__ = ["ExpandResult", "expand_akyuz2007", "expand_landis2002", "hdr_from_photo", "linear_luminance", "with_luminance"]
