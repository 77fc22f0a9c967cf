"""Peak memory measurement: a live-tensor tracker on CPU, the caching allocator's counters on CUDA."""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten


class LiveTensorTracker(TorchDispatchMode):
    """Tracks the bytes of every storage created by an op while the mode is active.

    Storages are keyed by their data pointer and released by a weakref finaliser; an output that
    shares storage with an input (a view, an in-place result) is not a new allocation. `peak_bytes` is the high-water mark of storages created inside the mode that were alive at
    the same time. NB: scratch buffers that a kernel allocates internally without returning them are
    invisible at this level (the allocator sees them; this tracker does not).
    """

    def __init__(self) -> None:
        super().__init__()
        self.live: dict[int, int] = {}
        self.current = 0
        self.peak_bytes = 0
        self.peak_op = ""
        self.peak_sizes: list[int] = []  # the bytes of each storage live at the peak

    def _release(self, key: int) -> None:
        self.current -= self.live.pop(key, 0)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = {t.untyped_storage().data_ptr() for t in tree_flatten((args, kwargs))[0]
                  if isinstance(t, torch.Tensor) and t.device.type != "meta"}
        for tensor in tree_flatten(out)[0]:
            if isinstance(tensor, torch.Tensor) and tensor.device.type != "meta":
                storage = tensor.untyped_storage()
                if storage.data_ptr() not in inputs:  # views and in-place results are not new
                    self._track(storage)
        if self.current > self.peak_bytes:
            self.peak_bytes, self.peak_op = self.current, str(func)
            self.peak_sizes = sorted(self.live.values())
        return out

    def _track(self, storage) -> None:
        key = storage.data_ptr()
        if key in self.live or storage.nbytes() == 0:
            return
        self.live[key] = storage.nbytes()
        self.current += storage.nbytes()
        weakref.finalize(storage, self._release, key)


@dataclass
class MemoryMeasurement:
    weights_bytes: int
    activation_peak_bytes: int | None
    peak_op: str = ""
    notes: list[str] = field(default_factory=list)
    reserved_peak_bytes: int | None = None  # CUDA: what the caching allocator reserved on top


def weights_bytes(model: torch.nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters())


def measure_forward_cpu(model: torch.nn.Module, images: torch.Tensor, **kwargs) -> MemoryMeasurement:
    """Activation peak of one inference forward (no_grad), weights and input already resident."""
    with torch.no_grad(), LiveTensorTracker() as tracker:
        out = model(images, **kwargs)
    del out
    return MemoryMeasurement(weights_bytes(model), tracker.peak_bytes, tracker.peak_op)


def measure_forward_cuda(model: torch.nn.Module, images: torch.Tensor, **kwargs) -> MemoryMeasurement:
    """Activation peak from torch.cuda.max_memory_allocated after a reset, weights resident."""
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    base, reserved = torch.cuda.memory_allocated(), torch.cuda.memory_reserved()
    with torch.no_grad():
        out = model(images, **kwargs)
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - base
    reserved_peak = torch.cuda.max_memory_reserved() - reserved
    del out
    notes = ["allocator rounds blocks to 512 B and may hold kernel workspaces"]
    return MemoryMeasurement(weights_bytes(model), peak, "", notes, reserved_peak)
