"""The fine-tuning loop: frozen cached vision features, trainable text tower and logit scale.

AdamW (betas 0.9/0.98, eps 1e-6, weight decay 0.2 except on gains, biases and the
logit scale) with a linear warmup over the first 10% of steps and a cosine decay;
the logit scale is clamped to at most 100 after every step (all as in SimZSS).
After every epoch the checkpoint (released layout), its parameters (JSON beside it)
and a resumable training state are written atomically.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..engine.devices import resolve_device
from ..engine.errors import ModelLoadError
from ..engine.families.simzss import (
    DEFAULT_ARCHITECTURE,
    SimZSSNetwork,
    load_simzss,
    new_network,
    released_state_dict,
)
from ..engine.families.simzss.architecture import (
    build_text,
    get_architecture,
    get_tokenizer,
    initial_logit_scale,
)
from ..io.atomic import write_atomically, write_text_atomically
from .concepts import ConceptMatch, ConceptMatcher, read_vocabulary
from .data import CachedFeatures, cached_features, read_captions
from .objective import DENSE_TARGETS, MAX_LOGIT_SCALE, clip_loss, concept_vectors, dense_loss


@dataclass(frozen=True)
class TrainingConfig:
    """Everything a fine-tuning run depends on (stored beside the checkpoint)."""

    images: str
    captions: str
    concepts: tuple[str, ...]
    output: str
    checkpoint: str | None = None  # start here; None: timm's DINOv2 and a new text tower
    model: str = DEFAULT_ARCHITECTURE
    from_scratch: bool = False  # a new text tower even when a checkpoint is given
    epochs: int = 10
    batch_size: int = 64
    lr: float = 5e-5
    weight_decay: float = 0.2
    warmup: float = 0.1
    dense_weight: float = 0.05
    dense_target: str = "label"
    input_size: int = 224
    seed: int = 0
    include_vision_weights: bool = True
    cache_dir: str | None = None
    device: str = "auto"

    def __post_init__(self) -> None:
        object.__setattr__(self, "concepts", tuple(str(c) for c in self.concepts))
        if self.dense_target not in DENSE_TARGETS:
            raise ValueError(f"dense target must be one of {', '.join(DENSE_TARGETS)}")
        if self.epochs < 1 or self.batch_size < 2:
            raise ValueError("epochs must be >= 1 and batch size >= 2")
        if self.input_size % 14:
            raise ValueError(f"input size must be a multiple of 14; got {self.input_size}")
        if not self.concepts:
            raise ValueError("give at least one concept list (--concepts FILE)")

    def schedule_fields(self) -> dict:
        """What a resumed run must share with the interrupted one."""
        fields = dataclasses.asdict(self)
        for free in ("device", "cache_dir"):
            fields.pop(free)
        return fields


@dataclass
class TrainingData:
    """Tokenised captions, the concepts found in them, and their images' features."""

    tokens: torch.Tensor  # [C, 77]
    matches: list[list[ConceptMatch]]
    image_of_caption: torch.Tensor  # [C]
    features: CachedFeatures
    vocabulary: list[str] = field(default_factory=list)

    def batch(self, captions: torch.Tensor) -> dict[str, torch.Tensor]:
        """Tokens, image rows and the flat concept-token lists of a batch of captions."""
        label, image, tok_caption, tok_position, tok_owner = [], [], [], [], []
        for row, caption in enumerate(captions.tolist()):
            for match in self.matches[caption]:
                tok_caption += [row] * len(match.positions)
                tok_position += list(match.positions)
                tok_owner += [len(label)] * len(match.positions)
                label.append(match.label)
                image.append(int(self.image_of_caption[caption]))
        as_long = lambda values: torch.tensor(values, dtype=torch.long)  # noqa: E731
        return {
            "tokens": self.tokens[captions], "images": self.image_of_caption[captions],
            "label": as_long(label), "concept_image": as_long(image), "token_caption": as_long(tok_caption),
            "token_position": as_long(tok_position), "token_owner": as_long(tok_owner),
        }


def batch_losses(network: SimZSSNetwork, data: TrainingData, batch: dict, config: TrainingConfig) -> dict:
    device = network.logit_scale.device
    batch = {key: value.to(device) for key, value in batch.items()}
    token_features, eot = network.text_tokens(batch["tokens"])
    image_cls = data.features.cls.to(device)[batch["images"]]
    losses = {"clip": clip_loss(image_cls, F.normalize(eot, dim=-1), network.logit_scale.exp())}
    if len(batch["label"]):
        concepts = concept_vectors(token_features, batch["token_caption"], batch["token_position"],
                                   batch["token_owner"], len(batch["label"]))
        patches = data.features.patches.to(device)[batch["concept_image"]]
        losses["dense"] = dense_loss(patches, concepts, torch.arange(len(patches), device=device),
                                     batch["label"], target=config.dense_target)
    else:
        losses["dense"] = eot.new_zeros(())
    losses["total"] = losses["clip"] + config.dense_weight * losses["dense"]
    return losses


def epoch_batches(count: int, batch_size: int, seed: int, epoch: int) -> list[torch.Tensor]:
    """Shuffled caption batches, the same for a given seed and epoch (so resuming is exact)."""
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
    batches = list(order.split(batch_size))
    return [b for b in batches if len(b) >= 2]  # InfoNCE needs a negative


def decayed(name: str, parameter: torch.Tensor) -> bool:
    """SimZSS's rule: no weight decay on gains, biases, 1-D tensors and the logit scale."""
    return not (parameter.ndim < 2 or "ln" in name or "bias" in name or "logit_scale" in name)


def make_optimizer(network: SimZSSNetwork, config: TrainingConfig, total_steps: int):
    named = [("logit_scale", network.logit_scale)] + [
        (f"text.{name}", p) for name, p in network.text.named_parameters()
    ]
    groups = [
        {"params": [p for n, p in named if decayed(n, p)], "weight_decay": config.weight_decay},
        {"params": [p for n, p in named if not decayed(n, p)], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, 0.98), eps=1e-6)
    warmup = max(1, round(config.warmup * total_steps))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total_steps - warmup)))

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def run_epoch(network, data, config, optimizer, scheduler, epoch: int, *, progress: bool = True) -> dict:
    """One pass over the captions; returns the mean losses."""
    network.text.train()
    sums = {"total": 0.0, "clip": 0.0, "dense": 0.0}
    batches = epoch_batches(len(data.tokens), config.batch_size, config.seed, epoch)
    bar = tqdm(batches, desc=f"epoch {epoch + 1}/{config.epochs}", unit="batch", disable=not progress)
    for captions in bar:
        losses = batch_losses(network, data, data.batch(captions), config)
        optimizer.zero_grad(set_to_none=True)
        losses["total"].backward()
        optimizer.step()
        scheduler.step()
        with torch.no_grad():
            network.logit_scale.clamp_(max=MAX_LOGIT_SCALE)
        for key in sums:
            sums[key] += float(losses[key].detach())
        bar.set_postfix(loss=f"{float(losses['total'].detach()):.3f}")
    network.text.eval()
    return {key: value / max(1, len(batches)) for key, value in sums.items()}


@torch.no_grad()
def caption_retrieval(network: SimZSSNetwork, data: TrainingData, batch_size: int = 256) -> float:
    """Text-to-image recall@1: how often a caption's best-matching image is one it describes.

    An image "is described" by every caption written for it; identical captions of
    different images (common in small datasets) all count as right.
    """
    device = network.logit_scale.device
    embeddings = torch.cat([
        F.normalize(network.text_tokens(chunk.to(device))[1], dim=-1)
        for chunk in data.tokens.split(batch_size)
    ])
    best = (embeddings @ data.features.cls.to(device).T).argmax(dim=-1).cpu().tolist()
    described: dict[int, set[tuple]] = {}
    for tokens, image in zip(data.tokens.tolist(), data.image_of_caption.tolist(), strict=True):
        described.setdefault(image, set()).add(tuple(tokens))
    captions = data.tokens.tolist()
    hits = [tuple(tokens) in described[image] for tokens, image in zip(captions, best, strict=True)]
    return sum(hits) / len(hits)


def starting_network(config: TrainingConfig) -> SimZSSNetwork:
    if config.checkpoint:
        network = load_simzss(config.model, config.checkpoint, device="cpu", precision="fp32").network
    else:
        try:
            network = new_network(get_architecture(config.model), pretrained_vit=True)
        except KeyError as error:
            raise ModelLoadError(str(error.args[0])) from None
        except Exception as error:
            raise ModelLoadError(
                "training without --checkpoint takes DINOv2 from timm's pretrained weights, which "
                f"could not be loaded ({type(error).__name__}); pass a SimZSS checkpoint instead"
            ) from error
    if config.from_scratch or not config.checkpoint:
        network.text = build_text(network.architecture)
        network.logit_scale = initial_logit_scale()
    network.requires_grad_(False)
    network.text.requires_grad_(True)
    network.logit_scale.requires_grad_(True)
    return network


def prepare_data(network: SimZSSNetwork, config: TrainingConfig, captioned, vocabulary,
                 *, progress: bool) -> TrainingData:
    matcher = ConceptMatcher(vocabulary, get_tokenizer())
    tokens, matches = zip(*(matcher.tokens_and_concepts(c) for c in captioned.captions), strict=True)
    cache = config.cache_dir or str(Path(config.output).parent / "simzss-feature-cache")
    features = cached_features(network, captioned.images, cache, input_size=config.input_size,
                               progress=progress)
    return TrainingData(torch.tensor(tokens), list(matches), torch.tensor(captioned.image_of_caption),
                        features, vocabulary)


def _paths(output: Path) -> tuple[Path, Path]:
    return output.with_suffix(".json"), output.with_name(output.name + ".state")


def train(config: TrainingConfig, *, resume: bool = False, progress: bool = True) -> dict:
    """Fine-tune, writing the checkpoint after every epoch; returns the recorded parameters."""
    output = Path(config.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    params_path, state_path = _paths(output)
    device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    captioned = read_captions(config.captions, config.images)  # bad input fails before any model work
    vocabulary = read_vocabulary(config.concepts)
    network = starting_network(config)
    data = prepare_data(network, config, captioned, vocabulary, progress=progress)
    network.to(device)
    steps = config.epochs * len(epoch_batches(len(data.tokens), config.batch_size, config.seed, 0))
    optimizer, scheduler = make_optimizer(network, config, steps)
    record = {
        "config": dataclasses.asdict(config), "vocabulary": data.vocabulary,
        "images": int(len(data.features.cls)), "captions": int(len(data.tokens)),
        "captions_with_concepts": sum(1 for m in data.matches if m),
        "features_computed": data.features.computed,
        "retrieval_r1_start": caption_retrieval(network, data), "epochs": [],
    }
    first_epoch = 0
    if resume and state_path.is_file():
        state = torch.load(state_path, map_location="cpu", weights_only=False)
        if state["schedule"] != config.schedule_fields():
            raise ValueError(f"{state_path} was written by a run with other settings; "
                             "start afresh (remove it) or use the same settings")
        network.text.load_state_dict(state["text"])
        network.logit_scale.data.copy_(state["logit_scale"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        record = state["record"]
        first_epoch = state["epoch"] + 1
    for epoch in range(first_epoch, config.epochs):
        start = time.perf_counter()
        losses = run_epoch(network, data, config, optimizer, scheduler, epoch, progress=progress)
        record["epochs"].append({
            "epoch": epoch + 1, **losses, "seconds": time.perf_counter() - start,
            "retrieval_r1": caption_retrieval(network, data),
            "logit_scale": float(network.logit_scale.detach().exp()),
        })
        _save(network, config, output, params_path, state_path, optimizer, scheduler, record, epoch)
    return record


def _save(network, config, output, params_path, state_path, optimizer, scheduler, record, epoch) -> None:
    weights = released_state_dict(network, include_vit=config.include_vision_weights)
    write_atomically(output, lambda path: torch.save({k: v.cpu() for k, v in weights.items()}, path))
    write_text_atomically(params_path, json.dumps({**record, "checkpoint": str(output),
                                                   "model": config.model}, indent=2) + "\n")
    state = {
        "epoch": epoch, "schedule": config.schedule_fields(), "record": record,
        "text": network.text.state_dict(), "logit_scale": network.logit_scale.detach().cpu(),
        "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
    }
    write_atomically(state_path, lambda path: torch.save(state, path))
