"""Camera response curves, forward (irradiance -> code) and inverse (code -> irradiance).

A response maps normalized sensor irradiance ``x`` in [0, 1] to a display-referred code value
``y = f(x)`` in [0, 1]; ``inverse`` is ``f^-1``. Every curve satisfies ``f(0) = 0`` and
``f(1) = 1`` (a recovered curve is normalized so that ``f^-1(1) = 1``). Tensors carry colour in
dimension -3, i.e. ``(..., 3, H, W)``; both directions are differentiable torch ops.

References:
    Grossberg & Nayar, "What is the space of camera response functions?", CVPR 2003 (DoRF).
    Grossberg & Nayar, "Modeling the space of camera response functions", PAMI 2004 (EMoR).
    IEC 61966-2-1:1999 (sRGB).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from hdrkit.errors import HdrkitError

__all__ = [
    "Response",
    "LinearResponse",
    "GammaResponse",
    "SRGBResponse",
    "TabulatedResponse",
    "load_dorf",
    "load_emor",
    "emor_response",
    "response_from_name",
]


class Response:
    """Base class: ``forward(x)`` gives codes, ``inverse(y)`` gives irradiance, both in [0, 1]."""

    def forward(self, irradiance: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def inverse(self, codes: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, irradiance: torch.Tensor) -> torch.Tensor:
        return self.forward(irradiance)

    def table(self, samples: int = 1024) -> torch.Tensor:
        """Inverse curve sampled at ``linspace(0, 1, samples)`` codes: (3, samples), float64."""
        z = torch.linspace(0, 1, samples, dtype=torch.float64).view(1, samples, 1).expand(3, samples, 1)
        return self.inverse(z).view(3, samples)


class LinearResponse(Response):
    """Identity response, for RAW data and linear TIFF/EXR input."""

    def forward(self, irradiance):
        return irradiance.clamp(0, 1)

    def inverse(self, codes):
        return codes.clamp(0, 1)

    def __repr__(self):
        return "LinearResponse()"


class GammaResponse(Response):
    """``y = x ** (1 / gamma)``; gamma 2.2 is the Kalantari 2017 convention."""

    def __init__(self, gamma: float = 2.2):
        if not gamma > 0:
            raise HdrkitError(f"gamma must be positive, got {gamma}")
        self.gamma = float(gamma)

    def forward(self, irradiance):
        return irradiance.clamp(0, 1).pow(1.0 / self.gamma)

    def inverse(self, codes):
        return codes.clamp(0, 1).pow(self.gamma)

    def __repr__(self):
        return f"GammaResponse(gamma={self.gamma})"


class SRGBResponse(Response):
    """The sRGB transfer function (IEC 61966-2-1), piecewise linear near black."""

    def forward(self, irradiance):
        x = irradiance.clamp(0, 1)
        return torch.where(x <= 0.0031308, 12.92 * x, 1.055 * x.clamp_min(1e-12).pow(1 / 2.4) - 0.055)

    def inverse(self, codes):
        y = codes.clamp(0, 1)
        return torch.where(y <= 0.04045, y / 12.92, ((y + 0.055) / 1.055).pow(2.4))

    def __repr__(self):
        return "SRGBResponse()"


def _interp(x: torch.Tensor, xp: torch.Tensor, fp: torch.Tensor, uniform: bool = False) -> torch.Tensor:
    """Piecewise-linear interpolation per colour channel, differentiable in ``x``.

    x: (..., C, H, W); xp, fp: (C, K) increasing in xp. Values outside are clamped to the ends.
    ``uniform=True`` says every row of ``xp`` is ``linspace(0, 1, K)``: the segment index is then
    computed directly instead of by binary search.
    """
    c = xp.shape[0]
    if x.shape[-3] != c and c != 1:
        raise HdrkitError(f"response has {c} channels but the image has {x.shape[-3]}")
    xp = xp.to(x.device, x.dtype)
    fp = fp.to(x.device, x.dtype)
    xm = x.movedim(-3, 0)
    shape = xm.shape
    flat = xm.reshape(shape[0], -1)
    if c == 1:
        xp, fp = xp.expand(shape[0], -1), fp.expand(shape[0], -1)
    flat = torch.maximum(torch.minimum(flat, xp[:, -1:]), xp[:, :1])
    k = xp.shape[1]
    if uniform:
        # segment i covers [i, i+1] / (k-1): two table look-ups (value and slope) per sample
        pos = flat * (k - 1)
        i0 = pos.detach().long().clamp_(0, k - 2)
        offsets = (torch.arange(flat.shape[0], device=x.device) * (k - 1)).view(-1, 1)
        slope = fp.diff(dim=1)
        idx = i0 + offsets
        out = fp[:, :-1].reshape(-1).take(idx) + (pos - i0) * slope.reshape(-1).take(idx)
        return out.reshape(shape).movedim(0, -3)
    idx = torch.searchsorted(xp.contiguous(), flat.detach().contiguous(), right=True).clamp(1, k - 1)
    x0, x1 = xp.gather(1, idx - 1), xp.gather(1, idx)
    y0, y1 = fp.gather(1, idx - 1), fp.gather(1, idx)
    w = (flat - x0) / (x1 - x0).clamp_min(1e-12)
    out = y0 + w * (y1 - y0)
    return out.reshape(shape).movedim(0, -3)


class TabulatedResponse(Response):
    """A sampled inverse response ``f^-1`` at equally spaced codes, per channel.

    Args:
        inverse_table: (K,) or (C, K) values of ``f^-1`` at ``codes = linspace(0, 1, K)``;
            non-decreasing, normalized here so the last sample is 1.
        codes: optional (K,) code positions if they are not equally spaced.

    ``forward`` inverts the table by interpolation; flat runs are nudged to be strictly
    increasing so the inverse is well defined.
    """

    def __init__(self, inverse_table, codes=None, name: str = "tabulated"):
        table = torch.as_tensor(np.asarray(inverse_table, dtype=np.float64))
        if table.ndim == 1:
            table = table[None]
        if table.ndim != 2 or table.shape[1] < 2:
            raise HdrkitError("a tabulated response needs at least 2 samples per channel")
        if not torch.isfinite(table).all():
            raise HdrkitError("the response table contains NaN or Inf")
        table = torch.cummax(table.clamp_min(0), dim=1).values
        if (table[:, -1] <= 0).any():
            raise HdrkitError("the response table is zero everywhere in some channel")
        table = table / table[:, -1:]
        k = table.shape[1]
        z = torch.linspace(0, 1, k, dtype=torch.float64) if codes is None else torch.as_tensor(codes, dtype=torch.float64)
        self.codes = z.expand(table.shape[0], k).contiguous()
        self._uniform = codes is None
        self.inverse_table = table
        ramp = torch.linspace(0, 1e-9, k, dtype=torch.float64)
        self._strict = torch.cummax(table + ramp, dim=1).values
        self.name = name

    @classmethod
    def from_forward(cls, irradiance, brightness, samples: int = 1024, name: str = "tabulated"):
        """Build from a forward curve ``B = f(I)`` (DoRF convention), resampled to ``samples`` codes."""
        i = np.asarray(irradiance, dtype=np.float64)
        b = np.atleast_2d(np.asarray(brightness, dtype=np.float64))
        z = np.linspace(0, 1, samples)
        inv = []
        for row in b:
            row = np.maximum.accumulate(row) + np.linspace(0, 1e-9, row.size)
            inv.append(np.interp(z, (row - row[0]) / (row[-1] - row[0]), i))
        return cls(np.stack(inv), name=name)

    def forward(self, irradiance):
        return _interp(irradiance.clamp(0, 1), self._strict, self.codes)

    def inverse(self, codes):
        return _interp(codes.clamp(0, 1), self.codes, self.inverse_table, uniform=self._uniform)

    def __repr__(self):
        return f"TabulatedResponse(name={self.name!r}, channels={self.inverse_table.shape[0]}, samples={self.inverse_table.shape[1]})"


def load_dorf(path: str | Path, index: int) -> TabulatedResponse:
    """Load measured curve ``index`` from a DoRF ``.npz`` (arrays ``I`` and ``B``, irradiance -> brightness)."""
    try:
        data = np.load(path)
        i, b = data["I"], data["B"]
    except (OSError, KeyError, ValueError) as e:
        raise HdrkitError(f"{path}: not a DoRF .npz with arrays I and B ({e})") from None
    if not 0 <= index < b.shape[0]:
        raise HdrkitError(f"{path}: DoRF index {index} out of range 0..{b.shape[0] - 1}")
    ii = i[index] if i.ndim == 2 else i
    return TabulatedResponse.from_forward(ii, b[index], name=f"dorf[{index}]")


def load_emor(path: str | Path) -> dict[str, np.ndarray]:
    """Parse Grossberg & Nayar's ``emor.txt`` into ``{'E', 'f0', 'h'}`` (h: (25, 1024))."""
    blocks: dict[str, list[float]] = {}
    key = None
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise HdrkitError(f"{path}: cannot read EMoR file ({e.strerror})") from None
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if "=" in line:
            key = line.split("=")[0].strip()
            blocks[key] = []
            continue
        if key is None:
            raise HdrkitError(f"{path}: not an EMoR file (numbers before the first 'E =' header)")
        blocks[key].extend(float(v) for v in line.split())
    try:
        h = np.stack([np.array(blocks[f"h({k})"]) for k in range(1, 26)])
        return {"E": np.array(blocks["E"]), "f0": np.array(blocks["f0"]), "h": h}
    except KeyError as e:
        raise HdrkitError(f"{path}: EMoR file lacks block {e}") from None


def emor_response(emor: dict[str, np.ndarray], coeffs) -> TabulatedResponse:
    """EMoR model ``f = f0 + sum_k c_k h_k`` (forward curve over ``E``), as a response object."""
    c = np.asarray(coeffs, dtype=np.float64).ravel()
    f = emor["f0"] + c @ emor["h"][: c.size]
    return TabulatedResponse.from_forward(emor["E"], np.clip(f, 0, None), name=f"emor({c.size} coeffs)")


def response_from_name(spec: str) -> Response:
    """``'linear'``, ``'srgb'``, ``'gamma'`` (2.2), ``'gamma:2.4'``, or a CSV/NPY file of an inverse table."""
    s = spec.strip().lower()
    if s == "linear":
        return LinearResponse()
    if s == "srgb":
        return SRGBResponse()
    if s == "gamma":
        return GammaResponse(2.2)
    if s.startswith("gamma:"):
        try:
            return GammaResponse(float(s.split(":", 1)[1]))
        except ValueError:
            raise HdrkitError(f"bad gamma in {spec!r}: use e.g. gamma:2.2") from None
    p = Path(spec)
    if p.exists():
        return load_response_table(p)
    raise HdrkitError(f"unknown response {spec!r}: use linear, srgb, gamma, gamma:G, or a response .csv file")


def load_response_table(path: str | Path) -> TabulatedResponse:
    """Read an inverse-response table written by ``save_response_table`` (CSV: code,r,g,b) or a .npy (C, K)."""
    p = Path(path)
    try:
        if p.suffix.lower() == ".npy":
            arr = np.load(p, allow_pickle=False)
            return TabulatedResponse(arr, name=p.name)
        arr = np.loadtxt(p, delimiter=",", comments="#", ndmin=2)
    except (OSError, ValueError) as e:
        raise HdrkitError(f"{p}: cannot read response table ({e}); expected CSV rows 'code,r,g,b'") from None
    if arr.shape[1] not in (2, 4):
        raise HdrkitError(f"{p}: expected CSV rows 'code,r,g,b' (or 'code,value'), got {arr.shape[1]} columns")
    return TabulatedResponse(arr[:, 1:].T, codes=arr[:, 0], name=p.name)


def save_response_table(response: Response, path: str | Path, samples: int = 1024) -> None:
    """Write the inverse response as CSV rows ``code,r,g,b`` (codes in [0, 1]), atomically."""
    from hdrkit.io.atomic import atomic_path

    table = response.table(samples).numpy()
    z = np.linspace(0, 1, samples)
    with atomic_path(path) as tmp:
        np.savetxt(tmp, np.column_stack([z, table.T]), delimiter=",", header="code,r,g,b (inverse response f^-1)", fmt="%.8g")


__all__ += ["load_response_table", "save_response_table"]
