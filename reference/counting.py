"""Counting FLOPs of the reference models with fvcore and torch FlopCounterMode.

Both counters keep their own formulas for the ops they already know (an independent check of ours);
for the ops they lack, the handles below are built from the costmodel registry — never a hand-kept
copy. Counting needs no compute: models and inputs live on the meta device (shapes only).
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode, flop_registry

import costmodel.ops  # noqa: F401  (registers the formulas)
from costmodel.config import Config
from costmodel.registry import REGISTRY
from reference.models import build_model, forward_kwargs

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16, "tf32": torch.float32}


# --------------------------------------------------------------------------- fvcore
def fvcore_handles(supported: set[str]) -> dict:
    """fvcore handles for every registry framework op that fvcore has no handle for (mac convention)."""
    from fvcore.nn.jit_handles import get_shape

    def handle_for(op_name: str):
        def handle(inputs, outputs) -> int:
            ins = [get_shape(i) for i in inputs]
            outs = [get_shape(o) for o in outputs]
            record = REGISTRY[op_name]
            return int(record.formula(**record.counter_shape(ins, outs)).mac)
        return handle

    return {aten: handle_for(op.name) for op in REGISTRY.values() for aten in op.aten_ops
            if aten not in supported}


@contextmanager
def _quiet_fvcore():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        yield


@dataclass(frozen=True)
class FvcoreCount:
    total: int
    unsupported_ops: dict[str, int]


def fvcore_count(model: torch.nn.Module, inputs: tuple, kwargs: dict | None = None) -> FvcoreCount:
    """fvcore FlopCountAnalysis (1 per multiply-add) with coreplan's handles; traces on `inputs`."""
    with _quiet_fvcore():
        from fvcore.nn import FlopCountAnalysis
        from fvcore.nn.flop_count import _DEFAULT_SUPPORTED_OPS

        wrapped = _KwargsWrapper(model, kwargs or {})
        analysis = FlopCountAnalysis(wrapped, inputs)
        analysis.set_op_handle(**fvcore_handles(set(_DEFAULT_SUPPORTED_OPS)))
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        total = int(analysis.total())
        return FvcoreCount(total, dict(analysis.unsupported_ops()))


class _KwargsWrapper(torch.nn.Module):
    """jit.trace passes positional inputs only; bind keyword arguments (core_tokens) here."""

    def __init__(self, model: torch.nn.Module, kwargs: dict) -> None:
        super().__init__()
        self.model, self.kwargs = model, kwargs

    def forward(self, *inputs):
        return self.model(*inputs, **self.kwargs)


# --------------------------------------------------------------------------- FlopCounterMode
def flop_counter_mapping() -> dict:
    """FlopCounterMode custom_mapping for the registry's framework ops torch does not count
    itself: attention ops, and matrix ops whose record says how to read a counter's shapes
    (`unpack`); elementwise ops count 0 in the flop convention either way."""
    mapping = {}
    for op in REGISTRY.values():
        wanted = op.op_class == "attention" or (op.op_class == "gemm" and op.unpack is not None)
        for name in op.aten_ops:
            packet = _packet(name)
            if packet is None or packet in flop_registry or not wanted:
                continue
            mapping[packet] = _mapping_for(op.name)
    return mapping


def _packet(name: str):
    """The torch op packet of a framework op name: aten::bmm, or a custom op's ns::name."""
    namespace, _, op = name.partition("::")
    try:
        return getattr(getattr(torch.ops, namespace), op)
    except (AttributeError, RuntimeError):
        return None


def _mapping_for(op_name: str):
    def count(*shapes, out_shape=None, **_) -> int:
        ins = [s for s in shapes if isinstance(s, torch.Size)]
        record = REGISTRY[op_name]
        return int(record.formula(**record.counter_shape(ins, [out_shape])).flop)
    return count


def flop_counter_mode() -> FlopCounterMode:
    return FlopCounterMode(display=False, custom_mapping=flop_counter_mapping())


# --------------------------------------------------------------------------- whole configurations
def make_inputs(config: Config, device: str = "meta", dtype=None) -> torch.Tensor:
    dtype = dtype or DTYPES[config.dtype]
    return torch.randn(config.batch, config.spec.in_chans, config.height, config.width,
                       device=device, dtype=dtype)


def meta_model(config: Config) -> torch.nn.Module:
    """The model with every tensor on the meta device (shapes only)."""
    with torch.device("meta"):
        return build_model(config.spec, impl=config.impl).to(DTYPES[config.dtype]).eval()


def counting_model(config: Config) -> torch.nn.Module:
    """The counting layout: the model on meta except its patch-embedding conv, on real CPU tensors.

    NB: fvcore's jit trace fails inside torch's Python meta kernel of convolution (traced sizes
    become tensors), so the conv — about 1/30 of a model's FLOPs — runs for real; the model moves
    its output to the meta device, and everything after costs no compute.
    """
    model = meta_model(config)
    conv = model.patch_embed
    model.patch_embed = torch.nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size,
                                        conv.stride, dtype=DTYPES[config.dtype])
    return model


def count_forward(config: Config) -> dict:
    """{'flops': FlopCounterMode total, 'macs': fvcore total, 'fvcore_unsupported': {...}}."""
    check_countable(config)
    kwargs = forward_kwargs(config.spec, config.core_tokens)
    with torch.no_grad(), flop_counter_mode() as counter:
        meta_model(config)(make_inputs(config, "meta"), **kwargs)
    return {"flops": int(counter.get_total_flops()), **count_macs(config)}


def count_macs(config: Config) -> dict:
    """{'macs': fvcore total, 'fvcore_unsupported': {...}} (the model traced on meta tensors)."""
    check_countable(config)
    kwargs = forward_kwargs(config.spec, config.core_tokens)
    fv = fvcore_count(counting_model(config), (make_inputs(config, "cpu"),), kwargs)
    return {"macs": fv.total, "fvcore_unsupported": fv.unsupported_ops}


def count_training_step(config: Config, model: torch.nn.Module | None = None,
                        device="meta") -> int:
    """FlopCounterMode total of forward + backward of a synthetic-target training step."""
    check_countable(config)
    model = model if model is not None else meta_model(config).train()
    images = make_inputs(config, device, next(model.parameters()).dtype)
    with flop_counter_mode() as counter:
        out = model(images, **forward_kwargs(config.spec, config.core_tokens))
        torch.nn.functional.mse_loss(out, torch.zeros_like(out)).backward()
    return int(counter.get_total_flops())


class UncountableError(RuntimeError):
    """The configuration's ops cannot be counted by the framework counters."""


def check_countable(config: Config) -> None:
    """Raise if any op of the configuration is one the counters cannot see (registry flag)."""
    from costmodel.cost import graph

    blind = sorted({n.op for n in graph(config) if not REGISTRY[n.op].counted_by_torch})
    if blind:
        raise UncountableError(f"{', '.join(blind)} cannot be counted by FlopCounterMode or fvcore")
