"""Memory kept for the backward pass: the paper's O(1) (adjoint) against O(L̃) (through the solver).

:func:`saved_activation_bytes` runs a forward computation under ``torch.autograd.graph``'s
saved-tensor hooks and adds up the bytes of every distinct tensor autograd still keeps for
``.backward()`` when it returns. Parameters are not activations: tensors that share storage with a
parameter are left out, so the count is what grows with depth, steps and batch, not the model's size.
"""
from __future__ import annotations

import gc
import weakref
from typing import Callable, Iterable

import torch


class _Saved:
    """What autograd holds in place of a saved tensor: it dies with the graph node that saved it."""

    __slots__ = ("tensor", "__weakref__")

    def __init__(self, tensor: torch.Tensor) -> None:
        # Not the tensor itself: autograd would hold a graph node that holds its own output, a
        # reference cycle that kept every measured graph alive (torch's saved-tensor hooks docs).
        self.tensor = tensor.detach()


def saved_activation_bytes(forward: Callable[[], object], parameters: Iterable[torch.Tensor] = ()) -> tuple[object, int]:
    """Call ``forward()`` and return its result and the bytes of activations saved for backward.

    Only what the result's graph still holds counts: a graph dropped at once (a validation check,
    say) frees what it saved, and so does not count. Each storage is counted once (autograd often saves
    the same tensor for several operations); storages of ``parameters`` are excluded.
    """
    excluded = {_storage_key(p) for p in parameters}
    saved: list[weakref.ref] = []

    def pack(tensor: torch.Tensor) -> _Saved:
        holder = _Saved(tensor)
        saved.append(weakref.ref(holder))
        return holder

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda holder: holder.tensor):
        result = forward()
    # Graphs that only reference cycles made by the forward hold: young objects, so the young
    # generations suffice (a full collection in a server's heap took 2 s of a Table 1 page's start).
    gc.collect(1)
    # Every live holder keeps its storage alive, so no two distinct storages can share an address here.
    storages = {}
    for ref in saved:
        holder = ref()
        if holder is not None:
            storages.setdefault(_storage_key(holder.tensor), holder.tensor.untyped_storage().nbytes())
    total = sum(nbytes for key, nbytes in storages.items() if key not in excluded)
    return result, total


def _storage_key(tensor: torch.Tensor):
    return (tensor.device, tensor.untyped_storage().data_ptr())
