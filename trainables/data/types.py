"""The two value types every trainer codes against: a split and a dataset.

Images stay uint8 (4x smaller than float32, and the exact bytes the fingerprint hashes); they are
converted to normalised float32 one batch at a time by ``iterate_batches``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Split:
    """One split of a dataset: ``images`` uint8 [N, C, H, W] contiguous, ``labels`` int64 [N]."""

    images: torch.Tensor
    labels: torch.Tensor

    def __post_init__(self) -> None:
        # Checked once here so that the batch loop can index without re-checking.
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise ValueError(f"Split.images must be uint8 [N, C, H, W], got {self.images.dtype} "
                             f"{tuple(self.images.shape)}")
        if not self.images.is_contiguous():
            raise ValueError("Split.images must be contiguous")
        if self.labels.dtype != torch.int64 or self.labels.shape != (self.images.shape[0],):
            raise ValueError(
                f"Split.labels must be int64 [{self.images.shape[0]}], got {self.labels.dtype} "
                f"{tuple(self.labels.shape)}"
            )

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __repr__(self) -> str:  # the default repr would print the tensors
        return f"Split(images=uint8{list(self.images.shape)}, labels=int64[{len(self)}], device={self.images.device})"


@dataclass(frozen=True)
class Dataset:
    """A dataset with its split rule applied, plus what the training recipe needs to know about it.

    ``mean``/``std`` are per channel, of the train split, in 0..1 units (the values a
    ``Normalize`` after ``ToTensor`` would use). ``crop_padding`` is the zero padding of the random
    crop (image_size // 8: 4 on 32x32, 3 on 28x28, 2 on 16x16, 1 on 8x8). ``flip`` says whether a
    horizontal flip preserves the label on this dataset. ``fingerprint`` is a short sha256 over the
    raw bytes and labels of every split and the split rule: two runs with the same fingerprint
    trained on exactly the same data.
    """

    name: str
    train: Split
    valid: Split | None
    test: Split | None
    num_classes: int
    in_channels: int
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    crop_padding: int
    flip: bool
    fingerprint: str

    def splits(self) -> dict[str, Split]:
        """The splits that exist, by name (``train``, ``valid``, ``test``)."""
        out = {"train": self.train, "valid": self.valid, "test": self.test}
        return {k: v for k, v in out.items() if v is not None}
