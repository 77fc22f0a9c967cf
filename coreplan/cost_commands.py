"""Cost commands: models, flops, memory, compare, crossover, formula (torch-free, fast start-up)."""

from __future__ import annotations

from typing import Optional


from coreplan.app import (app, Batch, check_format, Cores, DeviceFile, Format, Impl,
                          model_resolution, ModelFile, NATIVE_HELP, option, OutputDim, Resolution,
                          Scope, sides, warn_implausible, with_output_dim)
from coreplan.output import emit
from costmodel.config import configure
from costmodel.errors import CoreplanError, check_choice
from costmodel.spec import get_model


@app.command()
def models(model_file: Optional[str] = ModelFile(), fmt: str = Format()) -> None:
    """List the model catalog with its fields."""
    from dataclasses import asdict

    from costmodel.params import parameter_count
    from costmodel.spec import catalog, load_models

    specs = dict(catalog())
    if model_file:
        specs.update(load_models(model_file))
    docs = [{**asdict(s), "parameters": parameter_count(s)} for s in specs.values()]
    rows = [{"model": s.name, "kind": s.kind, "patch": s.patch_size, "D": s.embed_dim,
             "heads": s.num_heads, "layers": s.depth, "mlp": s.mlp, "F": s.mlp_hidden_dim,
             "extra": s.extra_tokens, "max_cores": s.max_cores or None, "pos": s.pos_embed,
             "out head": (f"D->{s.distill_output_dim}" if s.output_head else
                          "identity" if s.distill_output_dim else ""),
             "params": parameter_count(s)} for s in specs.values()]
    short = [{"model": r["model"], "kind": r["kind"], "p": r["patch"], "D": r["D"],
              "H": r["heads"], "L": r["layers"], "mlp": r["mlp"], "F": r["F"], "+tok": r["extra"],
              "C max": r["max_cores"], "pos": r["pos"],
              "M params": round(r["params"] / 1e6, 1)} for r in rows]
    emit(check_format(fmt), document=docs, rows=rows, table_rows=short,
         title="coreplan model catalog",
         caption="p: patch px; D: width; H: heads; L: layers; F: MLP hidden width; +tok: cls "
                 "and register tokens; C max: core bank (heads and sources: --format json)")


@app.command()
def flops(model: str, resolution: Optional[str] = Resolution(None, NATIVE_HELP),
          cores: Optional[int] = Cores(),
          batch: int = Batch(), scope: str = Scope(),
          convention: str = option("convention", "flop", help="flop, mac or full."),
          impl: Optional[str] = Impl(), output_dim: Optional[int] = OutputDim(),
          mode: str = option("mode", "inference", help="inference, or training (forward + backward)."),
          teacher: Optional[str] = option("teacher", None, help="Training: a dense distillation teacher."),
          model_file: Optional[str] = ModelFile(), fmt: str = Format()) -> None:
    """Exact FLOPs of one configuration, per op and in total (or of a training step)."""
    from costmodel.cost import count

    check_choice("mode", mode, ("inference", "training"))
    spec = with_output_dim(get_model(model, model_file), output_dim)
    c = configure(spec, model_resolution(resolution, spec), cores=cores, batch=batch, impl=impl)
    warn_implausible(c)
    if mode == "training":
        return _training_flops(c, teacher, model_file, fmt)
    if teacher:
        raise CoreplanError("--teacher applies to --mode training")
    result = count(c, scope, convention)
    doc = {"model": c.spec.name, "resolution": [c.height, c.width], "patch_tokens": c.patch_tokens,
           "core_tokens": c.core_tokens, "extra_tokens": c.spec.extra_tokens, "batch": c.batch,
           "scope": scope, "convention": convention, "impl": c.impl, "total": result.total,
           "by_op": result.by_op}
    rows = [{"op": path, convention: value, "share": value / result.total if result.total else 0.0}
            for path, value in result.by_op.items()] + [{"op": "total", convention: result.total,
                                                         "share": 1.0}]
    emit(check_format(fmt), document=doc, rows=rows,
         title=f"{c.spec.name} {c.height}x{c.width} N={c.patch_tokens} C={c.core_tokens} "
               f"B={c.batch} impl={c.impl} scope={scope}")


def _training_flops(c, teacher, model_file, fmt) -> None:
    from costmodel.training import teacher_config, training_flops

    taught = teacher_config(c, get_model(teacher, model_file)) if teacher else None
    with_teacher = training_flops(c, teacher=taught)
    alone = training_flops(c)
    doc = {"model": c.spec.name, "resolution": [c.height, c.width], "core_tokens": c.core_tokens,
           "batch": c.batch, "convention": "flop", "teacher": teacher, "with_teacher": with_teacher,
           "without_teacher": alone}
    rows = [{"quantity": k, "flop": v} for k, v in with_teacher.items()]
    if teacher:
        rows.append({"quantity": "total without teacher", "flop": alone["total"]})
    emit(check_format(fmt), document=doc, rows=rows,
         title=f"{c.spec.name} training step {c.height}x{c.width} C={c.core_tokens} B={c.batch}"
               + (f" with teacher {teacher}" if teacher else ""),
         caption="backward: linear 2x forward, patch conv 1x, flash-style SDPA 2.5x; the teacher "
                 "runs forward only")


@app.command()
def memory(model: str, resolution: Optional[str] = Resolution(None, NATIVE_HELP),
           cores: Optional[int] = Cores(),
           batch: int = Batch(),
           dtype: str = option("dtype", "auto", help="fp32, bf16, fp16, or auto: the device's "
                               "best supported, as plan takes it."),
           mode: str = option("mode", "inference", help="inference or training."),
           scope: str = option("scope", "model", help="model, or layer: one transformer "
                               "layer's weights and activations."),
           impl: Optional[str] = Impl(), output_dim: Optional[int] = OutputDim(),
           teacher: Optional[str] = option("teacher", None, help="Training: a dense distillation teacher."),
           model_file: Optional[str] = ModelFile(),
           device: str = option("device", "cpu-epyc-2core", help="Device whose process footprint to report."),
           framework: str = option("framework", "torch", help="torch, or transformers (its import and build)."),
           device_file: Optional[str] = DeviceFile(), fmt: str = Format()) -> None:
    """Weights, activation peak and every memory term of one configuration, and the process
    footprint on a device (inference)."""
    from costmodel.memory import memory as memory_of
    from planners.devices import get_device
    from planners.footprint import FRAMEWORKS, footprint

    from planners.planner import best_dtype

    check_choice("mode", mode, ("inference", "training"))
    spec = with_output_dim(get_model(model, model_file), output_dim)
    dev = get_device(device, device_file)
    dtype_auto = dtype == "auto"
    dtype = best_dtype(dev) if dtype_auto else dtype
    c = configure(spec, model_resolution(resolution, spec), cores=cores, batch=batch, impl=impl,
                  dtype=dtype)
    warn_implausible(c)
    taught = None
    if teacher:
        from costmodel.training import teacher_config

        if mode != "training":
            raise CoreplanError("--teacher applies to --mode training")
        taught = teacher_config(c, get_model(teacher, model_file))
    check_choice("scope", scope, ("model", "layer"))
    if scope == "layer":
        from costmodel.memory import layer_memory

        if teacher:
            raise CoreplanError("--teacher applies to --scope model (a teacher is not a layer)")
        m = layer_memory(c, mode)
    else:
        m = memory_of(c, mode, taught)
    check_choice("framework", framework, FRAMEWORKS)
    fp = (footprint(c, dev.footprint, framework)
          if mode == "inference" and scope == "model" and dev.footprint else None)
    doc = {"model": c.spec.name, "resolution": [c.height, c.width], "patch_tokens": c.patch_tokens,
           "core_tokens": c.core_tokens, "batch": c.batch, "dtype": dtype, "mode": mode,
           "scope": scope,
           "impl": c.impl, "weights_bytes": m.weights_bytes,
           "activation_peak_bytes": m.activation_peak_bytes, "total_bytes": m.total_bytes,
           "peak_stage": m.peak_stage, "terms": m.terms, "teacher": teacher,
           "footprint_bytes": fp.total_bytes if fp else None,
           "footprint_terms": fp.terms if fp else None,
           "footprint_device": dev.name if fp else None, "footprint_framework": framework}
    rows = [{"term": k, "bytes": v, "MB": v / 1e6} for k, v in m.terms.items()]
    rows += [{"term": "activation_peak", "bytes": m.activation_peak_bytes,
              "MB": m.activation_peak_bytes / 1e6},
             {"term": "total (tensors)", "bytes": m.total_bytes, "MB": m.total_bytes / 1e6}]
    if fp:
        rows += [{"term": f"footprint/{k}", "bytes": v, "MB": v / 1e6}
                 for k, v in fp.terms.items()]
        rows.append({"term": "footprint (process)", "bytes": fp.total_bytes,
                     "MB": fp.total_bytes / 1e6})
    emit(check_format(fmt), document=doc, rows=rows,
         title=f"{c.spec.name} {c.height}x{c.width} B={c.batch} {dtype} {mode}"
               f"{', one layer' if scope == 'layer' else ''} (peak at {m.peak_stage})",
         caption=(f"MB: 10^6 bytes, as plan's GB are 10^9; dtype {dtype}"
                  + (" (the device's best supported, as plan takes it)" if dtype_auto else "")
                  + (f"\nfootprint on {dev.name} with {framework}: {dev.footprint.source}"
                     if fp else "")
                  + (f"\nfootprint/activations: the peak's tensors up to "
                     f"{dev.footprint.mapped_above_bytes / 2**20:g} MiB at x"
                     f"{dev.footprint.activation_factor:.3g} (the allocator keeps what is freed); "
                     f"activations_mapped: those above it, once (mapped apart, returned when "
                     f"freed)" if fp and dev.footprint.mapped_above_bytes else "")))


@app.command()
def compare(model_a: str, model_b: str,
            resolutions: str = option("resolutions", "256,384,512,768,1024", help="Comma list of sides in px."),
            cores: Optional[int] = Cores(), batch: int = Batch(), scope: str = Scope(),
            convention: str = option("convention", "flop", help="flop, mac or full (costmodel/conventions.py)."),
            model_file: Optional[str] = ModelFile(), fmt: str = Format()) -> None:
    """Two models side by side across resolutions (each at its own patch size)."""
    from costmodel.cost import count

    a, b = get_model(model_a, model_file), get_model(model_b, model_file)
    rows = []
    for res in sides(resolutions):
        row = {"resolution": res}
        for spec in (a, b):
            c = configure(spec, spec.round_resolution(res), batch=batch,
                          cores=cores if spec.is_core else None)
            row[f"{spec.name} tokens"] = c.seq_len
            row[f"{spec.name} {convention}"] = count(c, scope, convention).total
        row["b/a"] = row[f"{b.name} {convention}"] / row[f"{a.name} {convention}"]
        rows.append(row)
    unit = {"flop": "GFLOP", "mac": "GMAC", "full": "GFLOP (full)"}.get(convention, convention)
    short = [{"px": r["resolution"], "a tokens": r[f"{a.name} tokens"],
              f"a {unit}": r[f"{a.name} {convention}"] / 1e9, "b tokens": r[f"{b.name} tokens"],
              f"b {unit}": r[f"{b.name} {convention}"] / 1e9, "b/a": r["b/a"]} for r in rows]
    emit(check_format(fmt), document=rows, rows=rows, table_rows=short,
         title=f"a = {a.name} vs b = {b.name}: {convention} ({scope}, batch {batch})",
         caption="each model runs at the largest multiple of its patch size <= the resolution; "
                 "exact integer counts: --format json or csv")


@app.command()
def crossover(core_model: str, versus: str = option("versus", ..., help="Dense model."),
              cores: Optional[int] = Cores(), scope: str = Scope(),
              convention: str = option("convention", "flop", help="flop, mac or full (costmodel/conventions.py)."),
              model_file: Optional[str] = ModelFile(), fmt: str = Format()) -> None:
    """Where the core model becomes cheaper than a dense one (closed form and integer answer)."""
    from costmodel.analysis import crossover as find

    core, dense = get_model(core_model, model_file), get_model(versus, model_file)
    if not core.is_core or dense.is_core:
        raise CoreplanError("crossover takes a core model and --versus a dense model")
    check_choice("convention", convention, ("flop", "mac", "full"))
    x = find(core, dense, cores=cores, scope=scope, convention=convention)
    doc = {"core_model": x.core_model, "dense_model": x.dense_model, "core_tokens": x.core_tokens,
           "scope": scope, "convention": convention, "equation": f"{x.equation} = 0",
           "roots": [float(r) for r in x.roots], "patch_tokens": x.patch_tokens,
           "resolution": x.resolution, "savings_limit": str(x.savings_limit)}
    rows = [{"quantity": k, "value": v if not isinstance(v, list) else ", ".join(f"{r:.2f}" for r in v)}
            for k, v in doc.items()]
    emit(check_format(fmt), document=doc, rows=rows, title=f"crossover {x.core_model} vs {x.dense_model}")


SYMBOLS = {"B": "batch", "N": "patch tokens", "C": "core tokens",
           "E": "extra tokens (class and registers)", "D": "embedding width", "H": "heads",
           "F": "MLP hidden width", "L": "layers", "P": "patch side (px)"}
SYMBOL_ORDER = tuple(SYMBOLS)


@app.command()
def formula(scope: str = Scope(), kind: str = option("kind", ..., help="dense or core."),
            convention: str = option("convention", "flop", help="flop, mac or full (costmodel/conventions.py)."),
            model: Optional[str] = option("model", None, help="Structure to use."),
            latex: bool = option("latex", False, help="Print LaTeX.")) -> None:
    """The scope's cost as a formula of B, N, C, E, D, H, F, L, P."""
    from costmodel.analysis import formula as formula_of
    from costmodel.analysis import latex as to_latex

    check_choice("kind", kind, ("dense", "core"))
    check_choice("convention", convention, ("flop", "mac", "full"))
    spec = get_model(model or ("veca-base" if kind == "core" else "dinov3-base"))
    if spec.kind != kind:
        raise CoreplanError(f"--model {spec.name} is a {spec.kind} model, not {kind}")
    expr = formula_of(spec, scope, convention)
    print(to_latex(expr) if latex else expr)
    used = sorted(str(s) for s in expr.free_symbols)
    legend = ", ".join(f"{s} = {SYMBOLS[s]}" for s in SYMBOL_ORDER if s in used)
    print(f"{'%' if latex else '#'} where {legend}")  # a comment line in either language
