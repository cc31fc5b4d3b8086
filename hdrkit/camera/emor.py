"""The empirical model of response (EMoR) as torch tensors: a low-dimensional, differentiable CRF space.

A forward response sampled at N irradiances ``E`` is modelled as ``f = f0 + sum_k c_k h_k``, with
``f0`` the mean curve and ``h_k`` the principal components of a set of measured curves. The model
can be read from Grossberg & Nayar's ``emor.txt`` (or ``invemor.txt`` for the inverse-response
variant, ``f^-1 = g0 + sum_k c_k hinv_k`` over codes ``B``) or derived with :meth:`EMoR.from_curves`
from any set of curves (DoRF, gamma families), so a shipped model needs no external file.

Reference:
    M. D. Grossberg and S. K. Nayar, "Modeling the space of camera response functions",
    IEEE TPAMI 26(10), 2004.
"""

from __future__ import annotations

from pathlib import Path

import torch

from hdrkit.camera.response import BatchedResponse, _as_float_tensor, _interp_rows, _invert_forward, load_emor, load_invemor
from hdrkit.errors import HdrkitError

__all__ = ["EMoR"]


class EMoR:
    """A linear response basis: curves ``f0 + coeffs @ h`` over samples ``E``.

    Args:
        E: (N,) increasing sample positions in [0, 1] (irradiance; codes for an inverse model).
        f0: (N,) mean curve.
        h: (K, N) basis curves (principal components, rows orthonormal for the shipped models).
        inverse: the curves are inverse responses ``f^-1`` over codes (``invemor.txt``) rather
            than forward responses ``f`` over irradiance.

    Tensors keep the given device and dtype (non-tensors become float64); use :meth:`to` to move.
    """

    def __init__(self, E, f0, h, inverse: bool = False):
        self.E = _as_float_tensor(E)
        self.f0 = _as_float_tensor(f0).to(self.E)
        self.h = _as_float_tensor(h).to(self.E)
        n = self.E.numel()
        if self.E.ndim != 1 or self.f0.shape != (n,) or self.h.ndim != 2 or self.h.shape[1] != n:
            raise HdrkitError(f"EMoR shapes must be E (N,), f0 (N,), h (K, N); got {tuple(self.E.shape)}, {tuple(self.f0.shape)}, {tuple(self.h.shape)}")
        self.inverse = inverse

    @property
    def k(self) -> int:
        """Number of basis curves."""
        return self.h.shape[0]

    @classmethod
    def from_file(cls, path: str | Path, k: int | None = None) -> "EMoR":
        """Grossberg & Nayar's ``emor.txt`` (forward model, 1024 samples), keeping the first ``k`` of 25 components."""
        m = load_emor(path)
        return cls(m["E"], m["f0"], m["h"][:k])

    @classmethod
    def from_inverse_file(cls, path: str | Path, k: int | None = None) -> "EMoR":
        """Grossberg & Nayar's ``invemor.txt``: inverse curves ``g0 + coeffs @ hinv`` over codes ``B``."""
        m = load_invemor(path)
        return cls(m["B"], m["g0"], m["hinv"][:k], inverse=True)

    @classmethod
    def from_curves(cls, curves, k: int, E=None, inverse: bool = False) -> "EMoR":
        """PCA basis of a set of curves (as in the paper: mean plus the top ``k`` principal components).

        curves: (M, N) forward curves sampled at ``E`` (default ``linspace(0, 1, N)``), or inverse
        curves over codes when ``inverse``. Returns a model with ``h`` (k, N), orthonormal rows.
        """
        c = _as_float_tensor(curves)
        if c.ndim != 2 or not 1 <= k <= min(c.shape):
            raise HdrkitError(f"from_curves needs curves (M, N) and 1 <= k <= min(M, N); got {tuple(c.shape)}, k={k}")
        f0 = c.mean(dim=0)
        _, _, vh = torch.linalg.svd(c - f0, full_matrices=False)
        E = torch.linspace(0, 1, c.shape[1], dtype=c.dtype, device=c.device) if E is None else E
        return cls(E, f0, vh[:k], inverse=inverse)

    def to(self, device=None, dtype=None) -> "EMoR":
        """A copy with every tensor on ``device`` / ``dtype``."""
        return EMoR(*(t.to(device=device, dtype=dtype) for t in (self.E, self.f0, self.h)), inverse=self.inverse)

    def curves(self, coeffs) -> torch.Tensor:
        """Model curves ``f0 + coeffs @ h[:k]``: coeffs (..., k) with k <= K -> (..., N); differentiable.

        Not yet made monotonic (see :meth:`response`).
        """
        c = _as_float_tensor(coeffs).to(self.E)
        k = c.shape[-1]
        if k > self.k:
            raise HdrkitError(f"{k} coefficients for a model of {self.k} basis curves")
        return self.f0 + c @ self.h[:k]

    def fit(self, curves, k: int | None = None) -> torch.Tensor:
        """Least-squares coefficients of curves sampled at ``E``: (..., N) -> (..., k) (default all K)."""
        f = _as_float_tensor(curves).to(self.E)
        if f.shape[-1] != self.E.numel():
            raise HdrkitError(f"curves have {f.shape[-1]} samples, the model {self.E.numel()}")
        return (f - self.f0) @ torch.linalg.pinv(self.h[: k or self.k])

    def response(self, coeffs, samples: int = 1024, name: str = "emor") -> BatchedResponse:
        """Responses for coefficients (B, k) (one curve per item, for every channel) or (B, C, k).

        The model curves are made non-decreasing with a cumulative max (gradients reach the running
        maximum) and, for a forward model, inverted and rescaled to span [0, 1]; the result is a
        :class:`BatchedResponse` of (B, 1 or C, samples) inverse tables on the model's device,
        differentiable with respect to ``coeffs``.
        """
        c = _as_float_tensor(coeffs).to(self.E)
        if c.ndim not in (2, 3):
            raise HdrkitError(f"coefficients must be (B, k) or (B, C, k), got {tuple(c.shape)}")
        f = self.curves(c)
        rows = f.reshape(-1, f.shape[-1])
        if self.inverse:
            g = torch.cummax(rows, dim=1).values
            z = torch.linspace(0, 1, samples, dtype=g.dtype, device=g.device).expand(g.shape[0], samples)
            table = _interp_rows(z, self.E.expand_as(g), g)
        else:
            table = _invert_forward(self.E, rows, samples)
        return BatchedResponse(table.reshape(*f.shape[:-1], samples), name=f"{name}({c.shape[-1]} coeffs)")

    def __repr__(self):
        kind = "inverse" if self.inverse else "forward"
        return f"EMoR({kind}, k={self.k}, samples={self.E.numel()}, dtype={self.E.dtype}, device={self.E.device})"
