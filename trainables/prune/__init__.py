"""Network pruning by TAS (thesis Section 3.3, Algorithm 2; Tables 3.5-3.7) on the CIFAR ResNets of
``spaces.cifar_resnet``.

  * ``supernet``  the searchable ResNet: width candidates per conv, a depth distribution per stage
                  (Eq. 3.13), TAS' sampling and CWI from ``trainables.oneshot`` (one implementation);
  * ``cost``      its FLOPs as a function of per-conv width distributions and per-stage depth
                  distributions: expected (differentiable) and, one-hot, the derived network's;
  * ``search``    the width/depth search with the cost loss (``trainables.oneshot.cost_loss``);
  * ``baselines`` pre-defined (one ratio everywhere) and random search under the FLOPs target;
  * ``kd``        the knowledge-distillation loss (Eq. 3.16-3.17);
  * ``transfer``  "w/ Init": the leading channels and blocks of the unpruned weights;
  * ``engine``    training a fixed network (steps 1 and 3) and the Ray Tune trainables of the steps.
"""
