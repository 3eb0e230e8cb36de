"""A dispatch probe that records the ops which make the host wait for a GPU.

Reading a value back (.item(), bool()), nonzero, unique, masked_select, NMS, and indexing
or writing through a boolean mask (which calls nonzero first) all wait for the device.
"""

from __future__ import annotations

import torch
from torch.utils._python_dispatch import TorchDispatchMode

SYNCING_OPS = {"nonzero", "_local_scalar_dense", "masked_select", "_unique2", "unique_dim", "unique_consecutive", "nms"}
INDEXING_OPS = {"index", "index_put", "index_put_", "_index_put_impl_"}


def _has_bool_index(args) -> bool:
    indices = args[1] if len(args) > 1 else ()
    return any(
        isinstance(index, torch.Tensor) and index.dtype in (torch.bool, torch.uint8)
        for index in indices or ()
        if index is not None
    )


class SyncingOps(TorchDispatchMode):
    """Records the name of every syncing op dispatched inside it, in `seen`."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        if name in SYNCING_OPS or (name in INDEXING_OPS and _has_bool_index(args)):
            self.seen.append(name)
        return func(*args, **(kwargs or {}))
