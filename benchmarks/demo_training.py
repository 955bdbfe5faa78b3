"""Train the demo CLIP on generated micrographs: ``python benchmarks/train_demo.py`` runs it.

The recipe (why each part is there is in docs/demo-model.md):

- **Region-caption pairs.** Each training image is a random square crop of a generated
  scene, at a random position and scale (from a sixth of the scene to all of it),
  resized to the model's native input and captioned with exactly the concepts visible
  inside it ("a photo of a background." when there are none). The text must then match
  local content at every scale, which is what dense maps read.
- **Class-token pooling.** With average pooling the image embedding is the mean of the
  patch tokens, which the patch loss below pulls towards "background": presence then
  failed (docs/demo-model.md, run 2).
- **Single-patch regions.** The limit of region-caption pairs: each patch token of a
  crop (read the way the engine reads plain CLIP patches: ``ln_post`` then the
  projection) is contrasted against the captions of every concept and of background in
  the paper's template ("a photo of a ring."), with the concept under that patch as the
  match. Without it (``dense_weight=0``) the patch maps lit up the background
  (docs/demo-model.md, run 1).
- **No duplicate captions in a batch.** Crops are drawn until the batch holds one crop
  per distinct set of concepts, so open_clip's ``ClipLoss`` never treats a matching
  caption as a negative.

Everything is seeded: the same arguments give the same weights on the same machine and
PyTorch build (float rounding can differ between builds and thread counts).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from napari_gem.demo.model import MODEL_NAME, register_config
from napari_gem.demo.scenes import BACKGROUND, SCENE_SIZE, VOCABULARY, caption, scene

#: Training scenes use seeds ``0 .. scenes - 1``; evaluation starts far above.
TRAIN_SEED_START = 0
#: Share of a concept's pixels (at model resolution) a crop must hold to name it.
MIN_VISIBLE_PIXELS = 3.0
#: Weight of background patches in the single-patch region loss (about 9 in 10 patches).
BACKGROUND_WEIGHT = 0.25


@dataclass(frozen=True)
class TrainingConfig:
    """Every knob of a training run (stored next to the weights)."""

    steps: int = 500
    batch_size: int = 64
    learning_rate: float = 1e-3
    weight_decay: float = 0.1
    warmup: int = 30
    dense_weight: float = 1.0
    scenes: int = 1000
    min_crop: float = 1 / 6
    seed: int = 0


class CropSampler:
    """Region-caption pairs cut from a fixed pool of generated scenes."""

    def __init__(self, scenes: int, native: int, seed: int, min_crop: float) -> None:
        self.native = native
        self.min_crop = min_crop
        self.rng = np.random.default_rng(seed)
        images, labels = [], []
        for index in range(scenes):
            image, masks = scene(TRAIN_SEED_START + index)
            label = np.zeros(image.shape[:2], dtype=np.int16)
            for concept, mask in masks.items():
                label[mask] = VOCABULARY.index(concept) + 1
            images.append(image)
            labels.append(label)
        self.images = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
        self.labels = np.stack(labels)

    def _crop(self) -> tuple[int, int, int, int]:
        side = SCENE_SIZE
        size = int(round(math.exp(self.rng.uniform(math.log(side * self.min_crop), math.log(side)))))
        top = int(self.rng.integers(0, side - size + 1))
        left = int(self.rng.integers(0, side - size + 1))
        index = int(self.rng.integers(len(self.images)))
        return index, top, left, size

    def _concepts(self, index: int, top: int, left: int, size: int) -> dict[str, int]:
        window = self.labels[index, top : top + size, left : left + size]
        counts = np.bincount(window.ravel(), minlength=len(VOCABULARY) + 1)[1:]
        visible = counts * (self.native / size) ** 2 >= MIN_VISIBLE_PIXELS
        return {VOCABULARY[i]: 1 for i in np.flatnonzero(visible)}

    def _patch_labels(self, index: int, top: int, left: int, size: int, grid: int) -> np.ndarray:
        """The concept covering most of each patch of a crop, ``[grid, grid]``.

        A concept needs a fifth of the patch (thin fibres and small spots rarely fill
        half of one); a patch without one is background (0).
        """
        window = self.labels[index, top : top + size, left : left + size]
        pick = (np.arange(self.native) + 0.5) * size / self.native
        sampled = window[pick.astype(int)][:, pick.astype(int)]  # nearest, at model resolution
        cell = self.native // grid
        votes = np.eye(len(VOCABULARY) + 1, dtype=np.int16)[sampled]
        votes = votes.reshape(grid, cell, grid, cell, -1).sum(axis=(1, 3))[..., 1:]
        best = votes.argmax(axis=-1)
        covered = np.take_along_axis(votes, best[..., None], axis=-1)[..., 0] >= cell * cell / 5
        return np.where(covered, best + 1, 0)

    def batch(self, size: int, grid: int = 8) -> tuple[torch.Tensor, list[str], torch.Tensor]:
        """``size`` crops (uint8 ``[B, 3, native, native]``) with distinct concept sets, their
        captions and the concept label of each patch (``[B, grid, grid]``, 0 for background)."""
        chosen: dict[frozenset, tuple] = {}
        for _ in range(50 * size):
            if len(chosen) >= size:
                break
            crop = self._crop()
            concepts = self._concepts(*crop)
            key = frozenset(concepts)  # one empty crop at most: its captions all mean the same
            if key not in chosen:
                chosen[key] = (crop, concepts)
        pixels, captions, labels = [], [], []
        for (index, top, left, size_), concepts in chosen.values():
            patch = self.images[index : index + 1, :, top : top + size_, left : left + size_].float()
            patch = F.interpolate(patch, size=(self.native, self.native), mode="bilinear",
                                  antialias=True, align_corners=False)
            turns, flip = int(self.rng.integers(4)), bool(self.rng.integers(2))
            patch = torch.rot90(patch, turns, dims=(2, 3))
            pixels.append(patch.flip(3) if flip else patch)
            captions.append(caption(concepts, self.rng))
            label = np.rot90(self._patch_labels(index, top, left, size_, grid), turns)
            labels.append(torch.from_numpy(np.ascontiguousarray(label[:, ::-1] if flip else label)))
        return torch.cat(pixels), captions, torch.stack(labels).long()


def normalise(pixels: torch.Tensor) -> torch.Tensor:
    """uint8-range ``[B, 3, H, W]`` to CLIP-normalised floats (the engine's normalisation)."""
    from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD

    mean = torch.tensor(OPENAI_DATASET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(OPENAI_DATASET_STD).view(1, 3, 1, 1)
    return (pixels / 255.0 - mean) / std


def build_model(seed: int):
    """A freshly initialised demo CLIP and its tokenizer (seeded)."""
    import open_clip

    register_config()
    torch.manual_seed(seed)
    model = open_clip.create_model(MODEL_NAME, pretrained=None)
    return model, open_clip.get_tokenizer(MODEL_NAME)


def _schedule(step: int, config: TrainingConfig) -> float:
    if step < config.warmup:
        return (step + 1) / config.warmup
    progress = (step - config.warmup) / max(1, config.steps - config.warmup)
    return 0.5 * (1 + math.cos(math.pi * progress))


def make_optimizer(model, config: TrainingConfig) -> torch.optim.Optimizer:
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in n]
    rest = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embedding" not in n)]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": rest, "weight_decay": 0.0}],
        lr=config.learning_rate, betas=(0.9, 0.98), eps=1e-6,
    )


def class_prompts() -> list[str]:
    """Background and each concept in the paper's template, as the engine asks them."""
    from napari_gem.engine.text import PAPER_TEMPLATES

    return [PAPER_TEMPLATES[0].format(name) for name in (BACKGROUND, *VOCABULARY)]


def dense_loss(model, tokenizer, pixels: torch.Tensor, patch_labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of each patch token against the class prompts (single-patch regions)."""
    visual = model.visual
    visual.output_tokens = True
    try:
        _, tokens = visual(pixels)
    finally:
        visual.output_tokens = False
    if visual.final_ln_after_pool:  # otherwise open_clip has applied ln_post to the tokens already
        tokens = visual.ln_post(tokens)
    dense = F.normalize(tokens @ visual.proj, dim=-1)  # the plain CLIP patch path (ln_post, proj)
    classes = F.normalize(model.encode_text(tokenizer(class_prompts())), dim=-1)
    logits = model.logit_scale.exp() * dense @ classes.T  # [B, gh*gw, classes]
    # Background fills most patches; down-weighted so that it does not drown the objects.
    weights = torch.ones(classes.shape[0])
    weights[0] = BACKGROUND_WEIGHT
    return F.cross_entropy(logits.flatten(0, 1), patch_labels.flatten(), weight=weights)


def training_step(
    model, tokenizer, optimizer, loss_fn, pixels: torch.Tensor, captions: list[str],
    patch_labels: torch.Tensor | None = None, dense_weight: float = 1.0,
) -> float:
    """One optimisation step on uint8 crops, their captions and (optionally) patch labels."""
    normalised = normalise(pixels)
    image_features, text_features, logit_scale = model(normalised, tokenizer(captions))
    loss = loss_fn(image_features, text_features, logit_scale)
    if patch_labels is not None and dense_weight:
        loss = loss + dense_weight * dense_loss(model, tokenizer, normalised, patch_labels)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    with torch.no_grad():
        model.logit_scale.clamp_(0, math.log(100))  # CLIP's cap on the logit scale
    return float(loss.detach())


def train(
    config: TrainingConfig, *, log_every: int = 50, output=None, sampler: CropSampler | None = None
) -> tuple[torch.nn.Module, dict]:
    """Train the demo CLIP; returns the model and a log (losses, time, config)."""
    from open_clip.loss import ClipLoss

    started = time.perf_counter()
    model, tokenizer = build_model(config.seed)
    native = int(model.visual.image_size[0])
    sampler = sampler or CropSampler(config.scenes, native, config.seed, config.min_crop)
    generated = time.perf_counter() - started
    optimizer = make_optimizer(model, config)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: _schedule(step, config))
    loss_fn = ClipLoss()
    model.train()
    losses = []
    for step in range(config.steps):
        pixels, captions, patch_labels = sampler.batch(config.batch_size)
        losses.append(training_step(model, tokenizer, optimizer, loss_fn, pixels, captions,
                                    patch_labels, config.dense_weight))
        scheduler.step()
        if output is not None and (step % log_every == 0 or step == config.steps - 1):
            print(f"step {step:5d}  loss {np.mean(losses[-log_every:]):.3f}  "
                  f"batch {len(captions)}  {time.perf_counter() - started:6.0f} s", file=output, flush=True)
    model.eval()
    log = {
        "config": asdict(config),
        "losses": [round(value, 4) for value in losses],
        "scene_generation_seconds": round(generated, 1),
        "training_seconds": round(time.perf_counter() - started, 1),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    return model, log


def save_weights(model: torch.nn.Module, path: Path) -> None:
    """Half-precision state dict (what open_clip's checkpoint loader reads), to fit the package."""
    state = {name: tensor.detach().half() if tensor.is_floating_point() else tensor
             for name, tensor in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": state}, path)
