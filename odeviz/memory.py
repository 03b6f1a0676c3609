"""Memory kept for the backward pass: the paper's O(1) (adjoint) against O(L̃) (through the solver).

:func:`saved_activation_bytes` runs a forward computation under ``torch.autograd.graph``'s
saved-tensor hooks and adds up the bytes of every distinct tensor autograd keeps for ``.backward()``.
Parameters are not activations: tensors that share storage with a parameter are left out, so the
count is what grows with depth, steps and batch, not the model's size.
"""
from __future__ import annotations

from typing import Callable, Iterable

import torch


def saved_activation_bytes(forward: Callable[[], object], parameters: Iterable[torch.Tensor] = ()) -> tuple[object, int]:
    """Call ``forward()`` and return its result and the bytes of activations saved for backward.

    Each storage is counted once (autograd often saves the same tensor for several operations);
    storages of ``parameters`` are excluded.
    """
    excluded = {_storage_key(p) for p in parameters}
    seen: set = set()
    total = 0

    def pack(tensor: torch.Tensor):
        nonlocal total
        key = _storage_key(tensor)
        if key not in seen and key not in excluded:
            seen.add(key)
            total += tensor.untyped_storage().nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        result = forward()
    return result, total


def _storage_key(tensor: torch.Tensor):
    return (tensor.device, tensor.untyped_storage().data_ptr())
