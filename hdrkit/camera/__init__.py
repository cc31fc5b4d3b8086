"""Camera model: response curves, the exposure model, and response recovery from brackets."""

from hdrkit.camera.calibrate import CALIBRATION_METHODS, DEFAULT_CALIBRATION, recover_response
from hdrkit.camera.debevec1997 import (
    DEBEVEC_SAMPLES,
    DEBEVEC_SMOOTHNESS,
    hat_weights,
    recover_response_debevec1997,
)
from hdrkit.camera.emor import EMoR
from hdrkit.camera.emor2004 import EmorPrior, default_prior, recover_response_emor2004, shipped_basis
from hdrkit.camera.exposure import NoiseModel, expose, linearize, normalize_times
from hdrkit.camera.response import (
    BatchedResponse,
    GammaResponse,
    LinearResponse,
    Response,
    SRGBResponse,
    TabulatedResponse,
    emor_response,
    load_dorf,
    load_emor,
    load_invemor,
    load_response_table,
    response_from_name,
    save_response_table,
    stack_responses,
)
from hdrkit.camera.plot import plot_response
from hdrkit.camera.robertson2003 import ROBERTSON_MAX_ITER, ROBERTSON_TOL, gaussian_weights, recover_response_robertson2003
from hdrkit.camera.sampling import cumulative_histograms, select_samples_grossberg2003

__all__ = [
    "Response",
    "LinearResponse",
    "GammaResponse",
    "SRGBResponse",
    "TabulatedResponse",
    "BatchedResponse",
    "stack_responses",
    "EMoR",
    "load_dorf",
    "load_emor",
    "load_invemor",
    "emor_response",
    "response_from_name",
    "load_response_table",
    "save_response_table",
    "NoiseModel",
    "expose",
    "linearize",
    "normalize_times",
    "recover_response",
    "CALIBRATION_METHODS",
    "DEFAULT_CALIBRATION",
    "recover_response_debevec1997",
    "recover_response_emor2004",
    "recover_response_robertson2003",
    "EmorPrior",
    "default_prior",
    "shipped_basis",
    "DEBEVEC_SMOOTHNESS",
    "DEBEVEC_SAMPLES",
    "ROBERTSON_MAX_ITER",
    "ROBERTSON_TOL",
    "hat_weights",
    "gaussian_weights",
    "cumulative_histograms",
    "select_samples_grossberg2003",
    "plot_response",
]

