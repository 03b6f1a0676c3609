"""A vector field extended by integrals along its trajectories, for CNFs and regularised ODE-Nets.

``AugmentedDynamics(field, dim, divergence=..., regularize=...)`` solves, in one state tensor whose
extra columns are integrated alongside z (so one call of :func:`odeviz.solve` does it all):

- ``delta_logp``: d/dt Δlog p = −tr(∂f/∂z), the paper's instantaneous change of variables (Theorem 1),
  with the trace exact (``divergence="exact"``, one backward pass per dimension, or the field's own
  ``forward_with_trace(t, z)`` when it has one) or estimated by
  Hutchinson's εᵀ(∂f/∂z)ε with ε ~ N(0, I) (``divergence="hutchinson"``, one backward pass);
- ``kinetic`` and ``jacobian``: the regularisers of "How to train your neural ODE" (Finlay et al.,
  2020): ∫‖f‖² dt and ∫‖∂f/∂z‖_F² dt, the latter estimated as ∫‖εᵀ ∂f/∂z‖² dt (or exact, with the
  exact trace, for a field with ``forward_with_jacobian(t, z)``).

ε is drawn once per solve (call :meth:`resample` before each solve), as Hutchinson's estimator and
the adjoint's backward pass both need the same ε at every evaluation.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

DIVERGENCES = (None, "exact", "hutchinson")


class AugmentedDynamics(nn.Module):
    def __init__(
        self,
        field: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        dim: int,
        divergence: str | None = None,
        regularize: bool = False,
    ) -> None:
        super().__init__()
        if divergence not in DIVERGENCES:
            raise ValueError(f"divergence must be one of {DIVERGENCES}, got {divergence!r}")
        self.field = field
        self.dim = dim
        self.divergence = divergence
        self.regularize = regularize
        self.columns = ["z"] * dim + (["delta_logp"] if divergence else []) + (["kinetic", "jacobian"] if regularize else [])
        self._noise: torch.Tensor | None = None

    @property
    def extra(self) -> int:
        """Columns after z."""
        return len(self.columns) - self.dim

    def resample(self) -> None:
        """Forget ε; the next evaluation draws a fresh one, kept until the next call."""
        self._noise = None

    def initial_state(self, z0: torch.Tensor) -> torch.Tensor:
        """z0 with the integrals' columns, all starting at zero."""
        return torch.cat([z0, z0.new_zeros(z0.shape[0], self.extra)], dim=1)

    def split(self, state: torch.Tensor) -> dict[str, torch.Tensor]:
        """The state's parts by name: ``z`` (…, dim) and each integral (…,)."""
        parts = {"z": state[..., : self.dim]}
        for index, name in enumerate(self.columns[self.dim :], start=self.dim):
            parts[name] = state[..., index]
        return parts

    def _epsilon(self, z: torch.Tensor) -> torch.Tensor:
        if self._noise is None or self._noise.shape != z.shape:
            self._noise = torch.randn_like(z)
        return self._noise

    def forward(self, t: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        if not self.extra:
            return self.field(t, state)
        if self.divergence == "exact" and self.regularize and hasattr(self.field, "forward_with_jacobian"):
            # A field that knows its own Jacobian (e.g. by forward-mode differentiation) needs no
            # reverse-mode passes here, and its Frobenius norm is then exact rather than estimated.
            dz, jacobian = self.field.forward_with_jacobian(t, state[:, : self.dim])
            trace = torch.diagonal(jacobian, dim1=0, dim2=2).sum(-1)
            frobenius = (jacobian * jacobian).sum((0, 2))
            return torch.cat([dz, -trace[:, None], (dz * dz).sum(1, keepdim=True), frobenius[:, None]], dim=1)
        if self.divergence == "exact" and not self.regularize and hasattr(self.field, "forward_with_trace"):
            # Likewise for a field that knows its own exact trace.
            dz, trace = self.field.forward_with_trace(t, state[:, : self.dim])
            return torch.cat([dz, -trace[:, None]], dim=1)
        differentiable = torch.is_grad_enabled()  # False in the adjoint's forward pass
        with torch.enable_grad():
            if not state.requires_grad:
                state = state.detach().requires_grad_(True)
            z = state[:, : self.dim]
            dz = self.field(t, z)
            columns = [dz]
            vjp = None  # εᵀ ∂f/∂z, shared by Hutchinson's trace and the Jacobian regulariser
            if self.divergence == "exact":
                trace = sum(
                    torch.autograd.grad(dz[:, i].sum(), z, create_graph=differentiable, retain_graph=True)[0][:, i]
                    for i in range(self.dim)
                )
                columns.append(-trace[:, None])
            elif self.divergence == "hutchinson":
                epsilon = self._epsilon(z)
                vjp = torch.autograd.grad(dz, z, epsilon, create_graph=differentiable, retain_graph=True)[0]
                columns.append(-(vjp * epsilon).sum(1, keepdim=True))
            if self.regularize:
                if vjp is None:
                    vjp = torch.autograd.grad(dz, z, self._epsilon(z), create_graph=differentiable, retain_graph=True)[0]
                columns.append((dz * dz).sum(1, keepdim=True))
                columns.append((vjp * vjp).sum(1, keepdim=True))
        return torch.cat(columns, dim=1)
