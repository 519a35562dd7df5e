"""Batches as whole-tensor operations: shuffle, random crop, flip and normalise in one gather.

Why not a ``torch.utils.data.DataLoader`` with per-image transforms: the benchmark builder trains
thousands of tiny networks on tiny images, where Python work per image dominates. Here the work per
epoch is a handful of tensor operations per chunk of up to ~1M pixels, and batches are slices of
the chunk.

Semantics match torchvision's ``RandomCrop(size, padding=p)`` (zero padding of the uint8 image,
i.e. before normalisation) -> ``RandomHorizontalFlip(0.5)`` -> ``ToTensor`` -> ``Normalize``.

Randomness: everything is drawn from the caller's ``torch.Generator`` when ``iterate_batches`` is
called, in this order: the permutation (if shuffle), the crop offsets dy then dx (if augment),
the flip coins (if augment and ``dataset.flip``). Hence the same generator state gives identical
batches, and the draws do not depend on how the epoch is chunked.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

import torch

from spaces.errors import UserError

from .types import Dataset, Split

# Upper bound on pixels (N*C*H*W) per chunk: digits' whole train split is one chunk (per-op
# overhead paid once per epoch), a CIFAR chunk is one batch of 256 (4 MB of floats). Measured on
# CIFAR-shaped data: 2**20 -> 108K samples/s per thread, 2**18 -> 96K, 2**22 -> 75K, 2**24 -> 37K.
_CHUNK_PIXELS = 1 << 20


def iterate_batches(
    split: Split,
    batch_size: int,
    *,
    shuffle: bool,
    augment: bool,
    dataset: Dataset,
    generator: torch.Generator | None,
    drop_last: bool = False,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield (float32 normalised images [B, C, H, W], int64 labels [B]) over one epoch of ``split``.

    ``augment`` applies the dataset's random crop (``dataset.crop_padding``) and, where
    ``dataset.flip``, the horizontal flip; eval batches (augment=False) are only normalised.
    Batches live on the split's device; the random draws on the generator's device.
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise UserError(f"batch_size must be a positive integer, got {batch_size!r}")
    if (shuffle or augment) and generator is None:
        raise UserError("shuffle/augment need a torch.Generator (e.g. torch.Generator().manual_seed(seed))")
    n = len(split)
    device = split.images.device
    _, c, h, w = split.images.shape
    if split.images.shape[1] != dataset.in_channels or h != dataset.image_size:
        raise UserError(
            f"split images {tuple(split.images.shape[1:])} do not belong to dataset {dataset.name!r} "
            f"({dataset.in_channels} channels, {dataset.image_size}px): pass the split's own dataset"
        )

    # All draws up front (see module docstring), then moved to the data's device.
    order = torch.randperm(n, generator=generator, device=generator.device).to(device) if shuffle else None
    crop = None
    if augment:
        gdev = generator.device
        span = 2 * dataset.crop_padding + 1
        dy = torch.randint(span, (n,), generator=generator, device=gdev).to(device)
        dx = torch.randint(span, (n,), generator=generator, device=gdev).to(device)
        flips = (torch.rand(n, generator=generator, device=gdev) < 0.5).to(device) if dataset.flip else None
        crop = (dy, dx, flips)

    scale = torch.tensor([1.0 / (255.0 * s) for s in dataset.std], dtype=torch.float32, device=device).view(1, c, 1, 1)
    shift = torch.tensor([-m / s for m, s in zip(dataset.mean, dataset.std)], dtype=torch.float32,
                         device=device).view(1, c, 1, 1)

    end = (n // batch_size) * batch_size if drop_last else n
    # Chunks hold whole batches so that no batch straddles two chunks.
    per_chunk = max(1, _CHUNK_PIXELS // (c * h * w * batch_size)) * batch_size
    return _generate(split, order, crop, dataset.crop_padding, scale, shift, end, per_chunk, batch_size)


def _generate(split: Split, order: torch.Tensor | None, crop: tuple | None, pad: int, scale: torch.Tensor,
              shift: torch.Tensor, end: int, per_chunk: int, batch_size: int):
    """The lazy part of ``iterate_batches``: all randomness is already drawn when this runs."""
    for start in range(0, end, per_chunk):
        stop = min(start + per_chunk, end)
        index = order[start:stop] if order is not None else None
        if crop is not None:
            if index is None:
                index = torch.arange(start, stop, device=split.images.device)
            dy, dx, flips = (None if t is None else t[start:stop] for t in crop)
            pixels = _crop_flip(split.images, index, dy, dx, flips, pad)
        elif index is not None:
            pixels = split.images.index_select(0, index)
        else:
            pixels = split.images[start:stop]
        labels = split.labels[start:stop] if index is None else split.labels.index_select(0, index)
        # One float conversion and two in-place passes per chunk (torch.addcmul with broadcast
        # scale/shift measured ~6x slower on CPU).
        images = pixels.to(torch.float32).mul_(scale).add_(shift)
        for b in range(0, stop - start, batch_size):
            yield images[b : b + batch_size], labels[b : b + batch_size]


def _crop_flip(images: torch.Tensor, index: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor,
               flips: torch.Tensor | None, pad: int) -> torch.Tensor:
    """uint8 [B, C, H, W]: sample ``index[b]``, zero-padded by ``pad``, cropped at (dy, dx), mirrored
    where ``flips``. There are only 2 * (2 * pad + 1)**2 distinct crops, so their source-pixel maps
    and padding masks are tabulated once; per chunk it is one table lookup, one gather, one mask.
    """
    _, c, h, w = images.shape
    b = len(index)
    sources, masks = _crop_tables(h, w, pad, images.device)
    code = dy * (2 * pad + 1) + dx
    if flips is not None:
        code = code + flips * (2 * pad + 1) ** 2
    spatial = sources.index_select(0, code)  # [B, H*W] source pixel of each output pixel
    picked = images.index_select(0, index).view(b, c, h * w)
    out = picked.gather(2, spatial.unsqueeze(1).expand(-1, c, -1))
    return out.mul_(masks.index_select(0, code).unsqueeze(1)).view(b, c, h, w)


@functools.cache
def _crop_tables(h: int, w: int, pad: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """For every crop code (flip, dy, dx): the source pixel of each output pixel (clamped into the
    image) [K, H*W] int64, and whether it lies inside the image rather than the padding [K, H*W] uint8.
    """
    span = 2 * pad + 1
    flip, dy, dx = torch.meshgrid(torch.arange(2), torch.arange(span), torch.arange(span), indexing="ij")
    flip, dy, dx = flip.reshape(-1, 1, 1), dy.reshape(-1, 1, 1), dx.reshape(-1, 1, 1)
    rows = dy - pad + torch.arange(h).view(1, h, 1)
    cols = torch.where(flip.bool(), w - 1 - torch.arange(w), torch.arange(w)).view(-1, 1, w)
    cols = dx - pad + cols  # flip after crop: output column j reads crop column w-1-j
    inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
    sources = rows.clamp(0, h - 1) * w + cols.clamp(0, w - 1)
    k = 2 * span * span
    return sources.reshape(k, h * w).to(device), inside.reshape(k, h * w).to(torch.uint8).to(device)
