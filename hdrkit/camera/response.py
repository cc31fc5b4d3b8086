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

import copy
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
    "BatchedResponse",
    "stack_responses",
    "load_dorf",
    "load_emor",
    "load_invemor",
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

    def to(self, device=None, dtype=None) -> "Response":
        """A copy on ``device`` / ``dtype``; analytic curves have no state, so they return themselves."""
        return self

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


def _as_float_tensor(values) -> torch.Tensor:
    """A floating tensor: torch tensors keep their device, dtype and autograd graph; anything else becomes float64."""
    if isinstance(values, torch.Tensor):
        return values if values.is_floating_point() else values.to(torch.float64)
    return torch.as_tensor(np.asarray(values, dtype=np.float64))


def _interp_rows(x: torch.Tensor, xp: torch.Tensor, fp: torch.Tensor, uniform: bool = False) -> torch.Tensor:
    """Row-wise piecewise-linear interpolation, differentiable in ``x``, ``xp`` and ``fp``.

    x: (R, N); xp, fp: (R, K), each row of ``xp`` non-decreasing. Values outside are clamped to the
    ends. ``uniform=True`` says every row of ``xp`` is ``linspace(0, 1, K)``: the segment index is
    then computed directly instead of by binary search. Returns (R, N).
    """
    k = xp.shape[1]
    x = torch.maximum(torch.minimum(x, xp[:, -1:]), xp[:, :1])
    if uniform:
        # segment i covers [i, i+1] / (k-1): two table look-ups (value and slope) per sample
        pos = x * (k - 1)
        i0 = pos.detach().long().clamp_(0, k - 2)
        return fp[:, :-1].gather(1, i0) + (pos - i0) * fp.diff(dim=1).gather(1, i0)
    idx = torch.searchsorted(xp.detach().contiguous(), x.detach().contiguous(), right=True).clamp(1, k - 1)
    x0, x1 = xp.gather(1, idx - 1), xp.gather(1, idx)
    y0, y1 = fp.gather(1, idx - 1), fp.gather(1, idx)
    w = (x - x0) / (x1 - x0).clamp_min(1e-12)
    return y0 + w * (y1 - y0)


def _interp(x: torch.Tensor, xp: torch.Tensor, fp: torch.Tensor, uniform: bool = False, batched: bool = False) -> torch.Tensor:
    """Piecewise-linear interpolation per colour channel (and per batch item), differentiable.

    Unbatched: x (..., C, H, W); xp, fp (C, K). Batched: x (B, ..., C, H, W); xp, fp (B, C, K),
    row ``b`` applied to item ``b`` (B = 1 broadcasts). A table with C = 1 serves every channel.
    The tables are cast to ``x``'s device and dtype. See :func:`_interp_rows` for ``uniform``.
    """
    c, k = xp.shape[-2:]
    if x.shape[-3] != c and c != 1:
        raise HdrkitError(f"response has {c} channels but the image has {x.shape[-3]}")
    xp = xp.to(x.device, x.dtype)
    fp = fp.to(x.device, x.dtype)
    if batched:
        if x.ndim < 4:
            raise HdrkitError(f"a batched response needs images shaped (B, ..., C, H, W), got {tuple(x.shape)}")
        if xp.shape[0] not in (1, x.shape[0]):
            raise HdrkitError(f"response batch of {xp.shape[0]} curves for {x.shape[0]} images")
        xm = x.movedim(-3, 1)
        shape = xm.shape
        rows = shape[0] * shape[1]
        xp, fp = (t.expand(shape[0], shape[1], k).reshape(rows, k) for t in (xp, fp))
        out = _interp_rows(xm.reshape(rows, -1), xp, fp, uniform)
        return out.reshape(shape).movedim(1, -3)
    xm = x.movedim(-3, 0)
    shape = xm.shape
    xp, fp = xp.expand(shape[0], k), fp.expand(shape[0], k)
    out = _interp_rows(xm.reshape(shape[0], -1), xp, fp, uniform)
    return out.reshape(shape).movedim(0, -3)


def _invert_forward(irradiance: torch.Tensor, brightness: torch.Tensor, samples: int) -> torch.Tensor:
    """Inverse tables of forward curves ``B = f(I)``, differentiable in both.

    irradiance: (N,) or (R, N); brightness: (R, N). Each curve is made non-decreasing (cumulative
    max, plus a 1e-9 ramp so flat runs invert uniquely) and rescaled to span [0, 1]; returns
    ``f^-1`` at ``linspace(0, 1, samples)`` codes, (R, samples).
    """
    r, n = brightness.shape
    ramp = torch.linspace(0, 1e-9, n, dtype=brightness.dtype, device=brightness.device)
    b = torch.cummax(brightness, dim=1).values + ramp
    b = (b - b[:, :1]) / (b[:, -1:] - b[:, :1])
    z = torch.linspace(0, 1, samples, dtype=b.dtype, device=b.device).expand(r, samples)
    return _interp_rows(z, b, irradiance.to(b).expand(r, n))


class TabulatedResponse(Response):
    """A sampled inverse response ``f^-1`` at equally spaced codes, per channel.

    Args:
        inverse_table: (K,) or (C, K) values of ``f^-1`` at ``codes = linspace(0, 1, K)``: a torch
            tensor (any device, any float dtype, may require grad) or anything numpy accepts
            (read as float64). Made non-decreasing (cumulative max) and normalized so the last
            sample is 1, on every use, so a learned table stays differentiable.
        codes: optional (K,) code positions if they are not equally spaced.

    ``inverse`` and ``forward`` run on the input's device and dtype: the normalized tables are
    moved there lazily and cached (not cached while the table requires grad, so every call sees
    the current values and builds a fresh graph). Both are differentiable with respect to the
    input and to the table. ``forward`` inverts the table by interpolation; flat runs are nudged
    to be strictly increasing so the inverse is well defined.
    """

    _table_ndim = 2

    def __init__(self, inverse_table, codes=None, name: str = "tabulated"):
        table = _as_float_tensor(inverse_table)
        if table.ndim == self._table_ndim - 1:
            table = table.unsqueeze(-2)
        if table.ndim != self._table_ndim or table.shape[-1] < 2:
            raise HdrkitError(f"a {type(self).__name__} needs a table of {self._table_ndim} dims with at least 2 samples per channel, got {tuple(table.shape)}")
        with torch.no_grad():
            if not torch.isfinite(table).all():
                raise HdrkitError("the response table contains NaN or Inf")
            if (table.amax(dim=-1) <= 0).any():
                raise HdrkitError("the response table is zero everywhere in some channel")
        self._raw = table
        self._codes = None if codes is None else _as_float_tensor(codes).to(table.device).view(-1)
        if self._codes is not None and self._codes.numel() != table.shape[-1]:
            raise HdrkitError(f"{self._codes.numel()} code positions for {table.shape[-1]} table samples")
        self._uniform = codes is None
        self._cache: dict = {}
        self.name = name

    def _normalized(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(codes, inverse table, strictly increasing inverse table), each shaped like the table."""
        inv = torch.cummax(self._raw.clamp_min(0), dim=-1).values
        inv = inv / inv[..., -1:]
        k = inv.shape[-1]
        z = torch.linspace(0, 1, k, dtype=inv.dtype, device=inv.device) if self._codes is None else self._codes.to(inv)
        ramp = torch.linspace(0, 1e-9, k, dtype=inv.dtype, device=inv.device)
        return z.expand(inv.shape), inv, torch.cummax(inv + ramp, dim=-1).values

    def _tables(self, device=None, dtype=None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """:meth:`_normalized` on ``device`` / ``dtype`` (default: the table's), cached when possible."""
        device = self._raw.device if device is None else torch.device(device)
        dtype = self._raw.dtype if dtype is None else dtype
        key = (device, dtype)
        tabs = self._cache.get(key)
        if tabs is None:
            tabs = tuple(t.to(device, dtype) for t in self._normalized())
            # a graph to a learned table must be rebuilt per call; inference tensors cannot be reused in autograd
            if not (self._raw.requires_grad or torch.is_inference_mode_enabled()):
                self._cache[key] = tabs
        return tabs

    @property
    def inverse_table(self) -> torch.Tensor:
        """The normalized inverse table, (C, K) (batched: (B, C, K)), on the table's device and dtype."""
        return self._tables()[1]

    @property
    def codes(self) -> torch.Tensor:
        """Code positions of the table samples, shaped like :attr:`inverse_table`."""
        return self._tables()[0]

    @property
    def _strict(self) -> torch.Tensor:
        return self._tables()[2]

    @property
    def device(self) -> torch.device:
        return self._raw.device

    @property
    def dtype(self) -> torch.dtype:
        return self._raw.dtype

    def to(self, device=None, dtype=None) -> "TabulatedResponse":
        """A copy with the table on ``device`` / ``dtype`` (differentiable: gradients reach this table)."""
        new = copy.copy(self)
        new._raw = self._raw.to(device=device, dtype=dtype)
        new._codes = None if self._codes is None else self._codes.to(device=device)
        new._cache = {}
        return new

    @classmethod
    def from_forward(cls, irradiance, brightness, samples: int = 1024, name: str = "tabulated"):
        """Build from a forward curve ``B = f(I)`` (DoRF convention), resampled to ``samples`` codes.

        irradiance: (N,); brightness: (N,) or (C, N) (batched class: (B, C, N) or (B, N)).
        Torch inputs stay on their device and keep their autograd graph.
        """
        b = _as_float_tensor(brightness)
        i = _as_float_tensor(irradiance).to(b)
        lead = b.shape[:-1]
        inv = _invert_forward(i, b.reshape(-1, b.shape[-1]), samples)
        return cls(inv.reshape(*lead, samples), name=name)

    def _apply(self, x, inverse: bool):
        dtype = x.dtype if x.is_floating_point() else self._raw.dtype
        x = x.to(dtype).clamp(0, 1)
        z, inv, strict = self._tables(x.device, dtype)
        batched = self._table_ndim == 3
        if inverse:
            return _interp(x, z, inv, uniform=self._uniform, batched=batched)
        return _interp(x, strict, z, batched=batched)

    def forward(self, irradiance):
        return self._apply(irradiance, inverse=False)

    def inverse(self, codes):
        return self._apply(codes, inverse=True)

    def __repr__(self):
        c, k = self._raw.shape[-2:]
        return f"{type(self).__name__}(name={self.name!r}, channels={c}, samples={k})"


class BatchedResponse(TabulatedResponse):
    """B tabulated inverse responses applied item-wise: table ``b`` to image ``b``.

    Args:
        inverse_tables: (B, C, K), or (B, K) for one curve per item serving every channel; values
            of ``f^-1`` at ``linspace(0, 1, K)`` (or at ``codes``, (K,), shared by all items).
            Normalized per row like :class:`TabulatedResponse`.

    ``inverse(codes)`` / ``forward(x)`` take ``(B, ..., C, H, W)`` (a table batch of 1 broadcasts),
    vectorized over the batch, channels and pixels. ``len(r)`` is B; ``r[i]`` is item ``i`` as a
    :class:`TabulatedResponse` (a slice gives a smaller batch); gradients flow back to this table.
    """

    _table_ndim = 3

    def __len__(self) -> int:
        return self._raw.shape[0]

    def __getitem__(self, i):
        cls = TabulatedResponse if isinstance(i, (int, np.integer)) else BatchedResponse
        return cls(self._raw[i], codes=self._codes, name=f"{self.name}[{i}]")

    def table(self, samples: int = 1024) -> torch.Tensor:
        """Inverse curves sampled at ``linspace(0, 1, samples)`` codes: (B, C, samples), float64, CPU."""
        b, c = self._raw.shape[:2]
        z = torch.linspace(0, 1, samples, dtype=torch.float64).view(1, 1, samples, 1).expand(b, c, samples, 1)
        return self.inverse(z).view(b, c, samples)

    def __repr__(self):
        b, c, k = self._raw.shape
        return f"BatchedResponse(name={self.name!r}, batch={b}, channels={c}, samples={k})"


def stack_responses(responses, samples: int = 1024, name: str = "stacked") -> BatchedResponse:
    """Tabulate any mix of responses into one :class:`BatchedResponse` of (B, 3, samples) tables.

    Each entry is a :class:`Response` (one item: its ``table(samples)``, a gamma/sRGB/linear curve
    or a tabulated one) or a :class:`BatchedResponse` (all its items, in order). The result is
    float64 on the CPU (move it with ``.to``); tables that require grad stay differentiable, but
    the stack is built once, so rebuild it after updating them.
    """
    rows = []
    for r in responses:
        t = r.table(samples)
        for row in t.unbind(0) if isinstance(r, BatchedResponse) else (t,):
            if row.shape[0] not in (1, 3):
                raise HdrkitError(f"cannot stack a {row.shape[0]}-channel response with RGB ones")
            rows.append(row.expand(3, samples))
    if not rows:
        raise HdrkitError("stack_responses needs at least one response")
    return BatchedResponse(torch.stack(rows), name=name)


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


def _read_emor_blocks(path: str | Path, first: str) -> dict[str, np.ndarray]:
    """The ``name =`` blocks of numbers in a Grossberg-Nayar model file (``first``: the leading block's name)."""
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
            raise HdrkitError(f"{path}: not an EMoR file (numbers before the first '{first} =' header)")
        blocks[key].extend(float(v) for v in line.split())
    return {k: np.array(v) for k, v in blocks.items()}


def _emor_model(path, first: str, mean: str, basis: str, what: str) -> dict[str, np.ndarray]:
    blocks = _read_emor_blocks(path, first)
    try:
        return {first: blocks[first], mean: blocks[mean], basis: np.stack([blocks[f"{basis}({k})"] for k in range(1, 26)])}
    except KeyError as e:
        raise HdrkitError(f"{path}: {what} file lacks block {e}") from None


def load_emor(path: str | Path) -> dict[str, np.ndarray]:
    """Parse Grossberg & Nayar's ``emor.txt`` into ``{'E', 'f0', 'h'}`` (h: (25, 1024))."""
    return _emor_model(path, "E", "f0", "h", "EMoR")


def load_invemor(path: str | Path) -> dict[str, np.ndarray]:
    """Parse the inverse model ``invemor.txt`` into ``{'B', 'g0', 'hinv'}``: ``f^-1 = g0 + sum_k c_k hinv_k`` over codes ``B``."""
    return _emor_model(path, "B", "g0", "hinv", "inverse EMoR")


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

    table = response.table(samples).detach().numpy()
    z = np.linspace(0, 1, samples)
    with atomic_path(path) as tmp:
        np.savetxt(tmp, np.column_stack([z, table.T]), delimiter=",", header="code,r,g,b (inverse response f^-1)", fmt="%.8g")


__all__ += ["load_response_table", "save_response_table"]
