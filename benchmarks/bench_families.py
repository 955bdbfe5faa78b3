"""``python benchmarks/bench.py --families``: every method on each trunk layout, against its own encode.

One row per (model, method): SigLIP 2 B/16 (timm fused qkv, ``map`` head, no class
token), EVA-02 B/16 (timm Eva, RoPE) and a timm ViT-B/16 (``vit_base_patch16_clip_224``
in open_clip's ``TimmModel``), all with random weights (same cost as real ones). The
baseline is the model's own ``encode_image`` on a copy whose timm trunk is set to the
input size (``set_input_size``), measured interleaved with the methods in the same run;
methods run as :func:`napari_gem.encode` calls them (with the image embedding).
"""

from __future__ import annotations

import copy
import json
import tempfile
from pathlib import Path

import torch
from timing import emit_table, interleaved_samples, method_encode_runs

TARGETS = {"method": 1.1, "gem": 1.5}
TIMM_VIT = "napari-gem-bench-timm-vit-b-16"
FAMILY_MODELS = {"SigLIP 2 B/16": "ViT-B-16-SigLIP2", "EVA-02 B/16": "EVA02-B-16", "timm ViT-B/16": TIMM_VIT}


def add_families_bench_arguments(parser) -> None:
    parser.add_argument("--families", action="store_true",
                        help="benchmark every method on SigLIP 2, EVA-02 and a timm ViT-B/16 instead")


def _register_timm_vit() -> None:
    import open_clip

    if TIMM_VIT in open_clip.list_models():
        return
    config = dict(open_clip.get_model_config("ViT-B-16"))
    config["vision_cfg"] = {"image_size": 224, "timm_model_name": "vit_base_patch16_clip_224",
                            "timm_model_pretrained": False, "timm_pool": "token", "timm_proj": "linear"}
    path = Path(tempfile.mkdtemp()) / f"{TIMM_VIT}.json"
    path.write_text(json.dumps(config))
    open_clip.add_model_config(path)


def _plain_at(model, input_size: int):
    """A copy of the CLIP whose own forward accepts ``input_size`` (timm's position resampling)."""
    plain = copy.deepcopy(model.clip_model)
    trunk = getattr(plain.visual, "trunk", None)
    if input_size != model.native_size and trunk is not None:
        trunk.set_input_size(img_size=(input_size, input_size))
    return plain


def measure_family(name: str, input_size: int, repeats: int, methods) -> dict[str, list[float]]:
    import open_clip

    from napari_gem.engine.families.clip.model import GroundingModel

    # Built without a tokenizer: SigLIP's is a Hugging Face download, and text costs nothing here.
    model = GroundingModel(open_clip.create_model(name, pretrained=None).eval(), lambda texts: None)
    plain = _plain_at(model, input_size)
    pixels = torch.randn(1, 3, input_size, input_size)

    def own_encode():
        with torch.inference_mode():
            plain.encode_image(pixels)

    runs = {"plain": own_encode, **method_encode_runs(model, methods, pixels)}
    return interleaved_samples(runs, repeats, torch.device("cpu"))


def run_families_bench(args) -> int:
    import statistics

    from napari_gem.engine.families.clip.methods import self_contained_method_names

    _register_timm_vit()
    torch.manual_seed(0)
    methods = self_contained_method_names()  # a proxy model would need its own weights
    print(f"families bench: cpu, fp32, {torch.get_num_threads()} threads, input {args.input_size}px, "
          f"{args.repeats} interleaved repeats", flush=True)
    rows = []
    for label, name in FAMILY_MODELS.items():
        samples = measure_family(name, args.input_size, args.repeats, methods)
        plain = statistics.median(samples["plain"])
        rows.append((f"{label}: own encode (s)", f"{plain:.3f}", "baseline", ""))
        for method in methods:
            ratio = statistics.median(samples[method]) / plain
            target = TARGETS["gem" if method == "gem" else "method"]
            rows.append((f"{label}: {method} / own encode", f"{ratio:.2f}x", f"<= {target}x",
                         "yes" if ratio <= target else "NO"))
        print(f"  {label} done", flush=True)
    emit_table(rows, args.out)
    return 0
