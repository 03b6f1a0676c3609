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
    storages of ``parameters`` are excluded. Storages are told apart by address, so every one counted
    is held until ``forward()`` returns: otherwise a tensor saved by a graph that is dropped at once
    (a validation check, say) could be freed and its address reused by a later activation, which would
    then go uncounted.
    """
    excluded = {_storage_key(p) for p in parameters}
    seen: dict = {}  # address -> the tensor, held so that the address stays its own
    total = 0

    def pack(tensor: torch.Tensor):
        nonlocal total
        key = _storage_key(tensor)
        if key not in seen and key not in excluded:
            seen[key] = tensor
            total += tensor.untyped_storage().nbytes()
        # Not the tensor itself: autograd would hold a graph node that holds its own output, a
        # reference cycle that kept every measured graph alive (torch's saved-tensor hooks docs).
        return tensor.detach()

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        result = forward()
    seen.clear()
    return result, total


def _storage_key(tensor: torch.Tensor):
    return (tensor.device, tensor.untyped_storage().data_ptr())
