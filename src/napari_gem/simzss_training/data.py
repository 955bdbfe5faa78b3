"""Captioned images and their frozen SimZSS features, computed once and cached on disk.

Features are keyed by the image file's content and by the vision weights (ViT,
denoiser, position table) and input size, so changing an image or the checkpoint
recomputes exactly what changed. They are stored as float16 (half the disk; the
training objective is insensitive to that rounding).
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..engine.families.simzss import SimZSSNetwork
from ..engine.preprocess import to_pixels
from ..io.atomic import write_atomically


@dataclass(frozen=True)
class CaptionedImages:
    """Caption rows ``(image index, caption)`` over a list of image files."""

    images: tuple[Path, ...]
    captions: tuple[str, ...]
    image_of_caption: tuple[int, ...]


def read_captions(csv_path: str | Path, image_folder: str | Path) -> CaptionedImages:
    """Read a CSV with ``image,caption`` columns (image paths relative to ``image_folder``)."""
    csv_path, folder = Path(csv_path), Path(image_folder)
    if not csv_path.is_file():
        raise FileNotFoundError(f"caption file not found: {csv_path}")
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder not found: {folder}")
    with csv_path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or not {"image", "caption"} <= set(reader.fieldnames):
            raise ValueError(f"{csv_path} needs a header with the columns image,caption")
        rows = [(row["image"].strip(), (row["caption"] or "").strip()) for row in reader]
    images: dict[str, int] = {}
    captions, owners = [], []
    for line, (name, caption) in enumerate(rows, start=2):
        if not caption:
            raise ValueError(f"{csv_path}, line {line}: empty caption")
        if name not in images:
            if not (folder / name).is_file():
                raise FileNotFoundError(f"{csv_path}, line {line}: image not found: {folder / name}")
            images[name] = len(images)
        captions.append(caption)
        owners.append(images[name])
    if len(captions) < 2:
        raise ValueError(f"{csv_path} has {len(captions)} caption(s); training needs at least 2")
    return CaptionedImages(tuple(folder / n for n in images), tuple(captions), tuple(owners))


def load_image(path: Path, size: int) -> torch.Tensor:
    """Normalised pixels ``[3, size, size]``: shorter side to ``size`` (bicubic), centre crop.

    This is SimZSS's evaluation transform; training used a 0.9-1.0 random resized crop,
    which cached features cannot reproduce (and which barely differs).
    """
    from PIL import Image

    with Image.open(path) as image:
        image = image.convert("RGB")
        scale = size / min(image.size)
        resized = image.resize(
            (max(size, round(image.width * scale)), max(size, round(image.height * scale))),
            Image.BICUBIC,
        )
    left, top = (resized.width - size) // 2, (resized.height - size) // 2
    crop = np.asarray(resized.crop((left, top, left + size, top + size)), dtype=np.float32) / 255
    return to_pixels(crop)


def vision_key(network: SimZSSNetwork, input_size: int) -> str:
    """A digest of everything that changes the cached features."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(json.dumps([network.architecture.to_dict(), input_size]).encode())
    modules = [network.vit] + ([network.denoiser] if network.denoiser is not None else [])
    tensors = [t for m in modules for t in m.state_dict().values()]
    if network.denoiser_position is not None:
        tensors.append(network.denoiser_position)
    for tensor in tensors:
        digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _file_digest(path: Path) -> str:
    return hashlib.blake2b(path.read_bytes(), digest_size=16).hexdigest()


@dataclass
class CachedFeatures:
    """Normalised frozen features of every image: patches ``[I, N, D]`` and CLS ``[I, D]``."""

    patches: torch.Tensor
    cls: torch.Tensor
    computed: int  # how many images had to be encoded (the rest came from the cache)


def cached_features(
    network: SimZSSNetwork,
    images: Sequence[Path],
    cache_dir: str | Path,
    *,
    input_size: int = 224,
    batch_size: int = 16,
    progress: bool = True,
) -> CachedFeatures:
    """Features of ``images``, reading the cache and encoding (then storing) only what is missing."""
    folder = Path(cache_dir) / vision_key(network, input_size)
    folder.mkdir(parents=True, exist_ok=True)
    files = [folder / f"{_file_digest(path)}.pt" for path in images]
    missing = [i for i, file in enumerate(files) if not file.is_file()]
    device = network.vit.patch_embed.proj.weight.device
    dtype = network.vit.patch_embed.proj.weight.dtype
    batches = [missing[i : i + batch_size] for i in range(0, len(missing), batch_size)]
    for batch in tqdm(batches, desc="image features", unit="batch", disable=not progress or not batches):
        pixels = torch.stack([load_image(images[i], input_size) for i in batch])
        with torch.inference_mode():
            patches, cls = network.visual_tokens(pixels.to(device=device, dtype=dtype))
        patches = torch.nn.functional.normalize(patches.float().flatten(1, 2), dim=-1)
        cls = torch.nn.functional.normalize(cls.float(), dim=-1)
        for row, index in enumerate(batch):
            entry = {"patches": patches[row].half().cpu(), "cls": cls[row].half().cpu()}
            # Atomic: a crash never leaves a half-written cache entry behind.
            write_atomically(files[index], lambda temporary, entry=entry: torch.save(entry, temporary))
    loaded = [torch.load(file, weights_only=True) for file in files]
    return CachedFeatures(
        patches=torch.stack([entry["patches"] for entry in loaded]).float(),
        cls=torch.stack([entry["cls"] for entry in loaded]).float(),
        computed=len(missing),
    )
