"""Numerics: the one ODE solve (torchdiffeq underneath), densities' dynamics, costs and memory. Torch only."""
