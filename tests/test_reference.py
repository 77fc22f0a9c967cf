"""Reference kernels and models: numerical agreement, prefix property, exact counts, memory."""

import pytest
import torch

from costmodel.config import configure
from costmodel.cost import count
from costmodel.memory import inference_memory
from costmodel.spec import catalog, get_model
from reference.attention import CorePeripheryAttention, DenseAttention, attention_reference, \
    core_periphery_mask
from reference.counting import count_forward, count_training_step
from reference.memory import measure_forward_cpu
from reference.models import build_model, forward_kwargs


@pytest.mark.parametrize("batch,heads,patches,cores", [(1, 1, 16, 8), (2, 3, 40, 16), (3, 2, 130, 64)])
@pytest.mark.parametrize("impl", ["split", "masked", "flex"])
def test_core_periphery_kernels_match_einsum_reference(batch, heads, patches, cores, impl):
    torch.manual_seed(0)
    seq = cores + patches
    q, k, v = (torch.randn(batch, heads, seq, 16) for _ in range(3))
    want = attention_reference(q, k, v, core_periphery_mask(seq, cores))
    got = CorePeripheryAttention(impl=impl)(q, k, v, core_tokens=cores)
    assert (got - want).abs().max().item() <= 1e-5


def test_dense_kernel_matches_reference():
    q, k, v = (torch.randn(2, 4, 50, 8) for _ in range(3))
    assert (DenseAttention()(q, k, v) - attention_reference(q, k, v)).abs().max().item() <= 1e-5


def prefix_checks(model, images, cores: int, chunk: int) -> tuple[bool, bool]:
    """(outputs at C ignore the cores beyond C, growing C by one chunk changes the same first C
    cores' outputs and the patches' outputs): both true for a correct prefix bank."""
    with torch.no_grad():
        before = model(images, core_tokens=cores)
        bank, coords = model.cores.detach().clone(), model.core_coords.detach().clone()
        model.cores[cores:].add_(torch.randn_like(model.cores[cores:]))
        model.core_coords[cores:].add_(1.0)
        after = model(images, core_tokens=cores)
        model.cores.copy_(bank)
        model.core_coords.copy_(coords)
        grown = model(images, core_tokens=cores + chunk)
    same_cores = grown[:, :cores]            # token i < C is core i in both outputs
    same_patches = grown[:, cores + chunk:]  # patches come after the active cores
    changes = (not torch.allclose(before[:, :cores], same_cores)
               and not torch.allclose(before[:, cores:], same_patches))
    return torch.equal(before, after), changes


class SuffixBank(torch.nn.Module):
    """A deliberately broken elastic model: it takes the last C cores of the bank, not the first."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.cores, self.core_coords = model.cores, model.core_coords

    def forward(self, images, *, core_tokens):
        keep = self.cores.detach().clone(), self.core_coords.detach().clone()
        with torch.no_grad():
            self.cores.copy_(keep[0].flip(0))
            self.core_coords.copy_(keep[1].flip(0))
        try:
            return self.model(images, core_tokens=core_tokens)
        finally:
            with torch.no_grad():
                self.cores.copy_(keep[0])
                self.core_coords.copy_(keep[1])


def test_prefix_property_outputs_ignore_cores_beyond_c():
    torch.manual_seed(0)
    spec = get_model("veca-small")
    model = build_model(spec).eval()
    images = torch.randn(1, 3, 64, 64)
    assert prefix_checks(model, images, 16, spec.core_chunk) == (True, True)


def test_prefix_check_fails_on_a_broken_prefix():
    torch.manual_seed(0)
    spec = get_model("veca-small")
    broken = SuffixBank(build_model(spec).eval())
    images = torch.randn(1, 3, 64, 64)
    ignores_beyond_c, _ = prefix_checks(broken, images, 16, spec.core_chunk)
    assert not ignores_beyond_c


def _reduced_matrix():
    """Every catalog family at a small resolution, both impls and batch sizes (fast on meta)."""
    for spec in catalog().values():
        res = 224 if spec.patch_size == 14 else 256
        if spec.is_core:
            for cores, impl, batch in ((8, "split", 1), (64, "masked", 4)):
                yield spec.name, res, cores, impl, batch
        else:
            yield spec.name, res, None, None, 4


@pytest.mark.parametrize("name,res,cores,impl,batch", list(_reduced_matrix()))
def test_predicted_equals_counted_forward(name, res, cores, impl, batch):
    c = configure(get_model(name), res, cores=cores, impl=impl, batch=batch)
    counted = count_forward(c)
    assert counted["fvcore_unsupported"] == {}
    assert counted["flops"] == count(c, "model", "flop").total
    assert counted["macs"] == count(c, "model", "mac").total


@pytest.mark.slow
@pytest.mark.parametrize("res_small", [True, False])
@pytest.mark.parametrize("family", sorted({s.family + ("-" + s.name.split("-")[1]) for s in
                                           catalog().values()}))
def test_predicted_equals_counted_full_matrix(family, res_small):
    names = [n for n in catalog() if n.startswith(family)]
    for name in names:
        spec = get_model(name)
        for res in ((224 if spec.patch_size == 14 else 256, 512) if res_small else (1022 if spec.patch_size == 14 else 1024,)):
            res = res // spec.patch_size * spec.patch_size
            for cores, impl in ((8, "split"), (64, "split"), (8, "masked"), (64, "masked")) if spec.is_core else ((None, None),):
                for batch in (1, 4):
                    c = configure(spec, res, cores=cores, impl=impl, batch=batch)
                    counted = count_forward(c)
                    assert counted["flops"] == count(c, "model", "flop").total
                    assert counted["macs"] == count(c, "model", "mac").total


def training_flops_by_hand(c, attention_backward: float) -> int:
    """forward + backward: linears 3x forward, the patch conv 2x (its input needs no gradient),
    attention 1 + backward factor (flash 2.5, math 2.0)."""
    by_op = count(c, "model", "flop").by_op
    attention = sum(v for k, v in by_op.items() if "sdpa" in k)
    conv = by_op["patch_embed"]
    gemm = sum(by_op.values()) - attention - conv
    return int(3 * gemm + 2 * conv + (1 + attention_backward) * attention)


def test_training_step_counts_math_backward_on_meta():
    c = configure(get_model("veca-small"), 256, cores=64, batch=2)
    assert count_training_step(c) == training_flops_by_hand(c, 2.0)


def test_training_step_counts_flash_backward_on_cpu():
    c = configure(get_model("dinov3-small"), 64, batch=2)
    model = build_model(c.spec).train()
    assert count_training_step(c, model=model, device="cpu") == training_flops_by_hand(c, 2.5)


def test_flex_cannot_be_counted_and_says_so():
    from reference.counting import UncountableError
    c = configure(get_model("veca-small"), 256, impl="flex")
    with pytest.raises(UncountableError, match="cannot be counted"):
        count_forward(c)


@pytest.mark.parametrize("name,res,cores,impl,batch", [
    ("veca-small", 256, 64, "split", 2), ("veca-small", 384, 8, "masked", 1),
    ("dinov2-small", 224, None, None, 2), ("dinov3-small", 256, None, None, 1),
    ("dinov2-small-reg", 448, None, None, 1)])
def test_predicted_activation_peak_within_10pct(name, res, cores, impl, batch):
    torch.manual_seed(0)
    c = configure(get_model(name), res, cores=cores, impl=impl, batch=batch)
    model = build_model(c.spec, impl=c.impl).eval()
    measured = measure_forward_cpu(model, torch.randn(batch, 3, res, res), **forward_kwargs(c.spec, c.core_tokens))
    predicted = inference_memory(c)
    assert measured.weights_bytes == predicted.weights_bytes
    assert abs(predicted.activation_peak_bytes / measured.activation_peak_bytes - 1) <= 0.10


@pytest.mark.parametrize("name,res,cores,batch", [
    ("veca-small", 256, 64, 2), ("veca-base", 256, 16, 1), ("dinov2-small", 224, None, 2),
    ("dinov2-small-reg", 448, None, 1)])
def test_each_stages_tensors_are_storages_torch_holds_at_once(name, res, cores, batch):
    """Each tensor the memory model lists at the projections' and the MLP's stages (sizes one by
    one: the footprint counts a tensor above the allocator's mapping threshold apart) is a
    storage live, one for one, at some op of the forward (the tracker may hold a few more: the
    sums are within 10%, test above); the fused qkv as one (B, S, 3D) storage, SwiGLU's fc1
    output as one. NB: the SDPA stage is a sum, not such a list: torch has freed the normalised
    input there (the stage counts it), and the split kernel's two calls write pieces of the
    output and the logsumexp; DINOv3's RoPE rotates the patch tokens only, so its temporaries
    are a little smaller than the X they are counted as."""
    from collections import Counter

    from costmodel.memory import inference_stage_tensors
    from reference.memory import LiveTensorTracker

    c = configure(get_model(name), res, cores=cores, batch=batch)
    stages = {k: Counter(v) for k, v in inference_stage_tensors(c).items()
              if k in ("attention/projections", "mlp")}
    seen = set()

    class Watch(LiveTensorTracker):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = super().__torch_dispatch__(func, types, args, kwargs)
            live = Counter(self.live.values())
            seen.update(k for k, want in stages.items() if not want - live)
            return out

    torch.manual_seed(0)
    model = build_model(c.spec, impl=c.impl).eval()
    with torch.no_grad(), Watch():
        model(torch.randn(batch, 3, res, res), **forward_kwargs(c.spec, c.core_tokens))
    assert all(v.total() >= 4 for v in stages.values())
    assert seen == set(stages)
