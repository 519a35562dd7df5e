""""w/ Init" (thesis Table 3.5): a pruned network starts from the unpruned network's weights.

Every conv of the pruned network takes the leading output and input channels of the same conv of
the unpruned one (``W[:c_out, :c_in]``), its BN the leading channels' affine parameters and
running statistics, the classifier the leading input columns; a stage keeps its leading blocks.
A shortcut the unpruned network lacks (the 1x1 projection of a stride-1 block whose widths now
differ) keeps its fresh initialisation.
"""

from __future__ import annotations

import torch
from torch import nn

from spaces.cifar_resnet import CifarResNet


@torch.no_grad()
def init_from(pruned: CifarResNet, unpruned: CifarResNet) -> list[str]:
    """Copy the kept channels and blocks of ``unpruned`` into ``pruned``; the names of the copied tensors."""
    source = dict(unpruned.named_modules())
    copied = []
    for name, module in pruned.named_modules():
        src = source.get(name)
        if src is None or type(src) is not type(module):
            continue
        if isinstance(module, nn.Conv2d):
            if module.kernel_size != src.kernel_size:
                continue
            module.weight.copy_(src.weight[: module.out_channels, : module.in_channels])
        elif isinstance(module, nn.BatchNorm2d):
            c = module.num_features
            for t in ("weight", "bias", "running_mean", "running_var"):
                getattr(module, t).copy_(getattr(src, t)[:c])
            module.num_batches_tracked.copy_(src.num_batches_tracked)
        elif isinstance(module, nn.Linear):
            module.weight.copy_(src.weight[:, : module.in_features])
            module.bias.copy_(src.bias)
        else:
            continue
        copied.append(name)
    return copied
