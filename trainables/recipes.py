"""Training recipes H0/H1/H2 (NATS-Bench), as frozen values with a stable hash.

A recipe is everything about *how* an architecture is trained that is not the architecture, the
data set or the seed. Results are only comparable between runs of the same recipe, so every row
written to the store carries the recipe length (``hp``) and every file carries the recipe JSON and
its hash: two recipes with equal fields hash equally whatever they are called, and any changed
field (``get_recipe("h0", epochs=48)``) gives a different hash.

The learning rate is a pure function of the position in the schedule (:meth:`Recipe.lr_at`), so a
resumed run needs nothing but its (epoch, iteration) counter to continue on the same schedule.

The cosine steps once per epoch by default, as NATS-Bench's: xautodl's ``CosineAnnealingLR.get_lr``
(xautodl/procedures/optimizers.py:81-107) reads only the integer ``current_epoch`` once warm-up is
over (``current_iter`` enters the warm-up branch only, and every hyper-opts/*E.config has warmup
0), so epoch e (0-based) trains at ``eta_min + (LR - eta_min) * (1 + cos(pi * e / T_max)) / 2``
with ``T_max = epochs`` (optimizers.py:240), and eta_min is never reached within training.
``lr_schedule_step="iteration"`` keeps the per-iteration cosine this project used before (the
embedded digits benchmark was built with it).

Recipes recorded before ``lr_schedule_step`` existed carry no such field and were all per
iteration: :func:`recorded_recipe` reads them so, and the per-iteration recipe's hash leaves the
field out, so the hashes those files record still name the same procedure.

Two fields serve retraining after a hyperparameter search (AutoHAS): ``optimizer`` ("sgd", the
NATS-Bench recipes', "adam" or "rmsprop") and ``lr_steps``, an explicit learning rate per training
step that replaces the cosine. At their defaults (SGD, no list) they are left out of the recipe's
dict, JSON and hash, so every recipe recorded before they existed reads, compares and hashes as
before.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from spaces.errors import UserError
from spaces.joint import OPTIMIZERS

LR_SCHEDULE_STEPS = ("epoch", "iteration")
# torch's Adam betas and RMSProp smoothing, the values AutoHAS's search steps with
# (trainables.oneshot.autohas), so a retraining uses the optimizer the search scored.
ADAM_BETAS, RMSPROP_ALPHA, OPTIMIZER_EPS = (0.9, 0.999), 0.99, 1e-8


def cosine_lr(base: float, epoch: int, epochs: int, lr_min: float = 0.0) -> float:
    """The lr of epoch ``epoch`` (0-based) of a per-epoch cosine from ``base`` to ``lr_min`` over
    ``epochs``: xautodl's ``eta_min + (base - eta_min) * (1 + cos(pi * e / T_max)) / 2``, in its
    order, so it equals the reference to the last bit; ``lr_min`` from epoch ``epochs`` on."""
    if epoch >= epochs:
        return lr_min
    return lr_min + (base - lr_min) * (1 + math.cos(math.pi * epoch / epochs)) / 2


@dataclass(frozen=True)
class Recipe:
    """How to train: SGD with Nesterov momentum and a cosine learning rate, no warm-up.

    ``augment`` switches on the data set's own augmentation (random flip and crop padding as the
    data set declares them: flips make no sense for digits, so the data set, not the recipe, says
    whether to flip). ``lr_min`` is the cosine's floor (NATS-Bench's ``eta_min``): the lr after
    the schedule's end. ``lr_schedule_step``: "epoch" (NATS-Bench; the lr is constant within an
    epoch and the last epoch still trains above ``lr_min``) or "iteration" (the cosine moves every
    batch and reaches ``lr_min`` during the last epoch).
    ``eval_batch_size`` only groups the evaluation (eval mode, so results do not depend on it
    beyond float rounding); large batches keep per-architecture overhead low.
    ``optimizer``: "sgd" (``momentum``, ``nesterov``), "adam" or "rmsprop" (torch's defaults; no
    momentum); ``weight_decay`` is the L2 weight added to the gradient for all three.
    ``lr_steps``: when given, the lr of every training step, resampled onto the training's own
    steps (:meth:`lr_at`); ``lr``, ``lr_min`` and ``lr_schedule_step`` then only describe it.
    """

    name: str
    epochs: int
    batch_size: int = 256
    lr: float = 0.1
    lr_min: float = 0.0
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    augment: bool = True
    eval_batch_size: int = 2048
    lr_schedule_step: str = "epoch"
    optimizer: str = "sgd"
    lr_steps: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        # A Tune config or a recorded JSON carries the list as a list; a frozen field stays hashable.
        object.__setattr__(self, "lr_steps", tuple(float(v) for v in self.lr_steps))
        # Validate here so that overrides coming from a CLI or a Tune config fail early and clearly.
        checks = [
            (isinstance(self.epochs, int) and self.epochs >= 1, "epochs must be an integer >= 1"),
            (isinstance(self.batch_size, int) and self.batch_size >= 1,
             "batch_size must be an integer >= 1"),
            (isinstance(self.eval_batch_size, int) and self.eval_batch_size >= 1,
             "eval_batch_size must be an integer >= 1"),
            (self.lr > 0 and math.isfinite(self.lr), "lr must be a positive finite number"),
            (0 <= self.lr_min <= self.lr, "lr_min must be between 0 and lr"),
            (0 <= self.momentum < 1, "momentum must be in [0, 1)"),
            (self.weight_decay >= 0, "weight_decay must be >= 0"),
            (not (self.nesterov and self.momentum == 0), "nesterov needs momentum > 0"),
            (self.lr_schedule_step in LR_SCHEDULE_STEPS,
             f"lr_schedule_step must be one of {', '.join(LR_SCHEDULE_STEPS)}, got "
             f"{self.lr_schedule_step!r}"),
            (self.optimizer in OPTIMIZERS,
             f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {str(self.optimizer)[:40]!r}"),
            (all(v > 0 and math.isfinite(v) for v in self.lr_steps),
             "every lr_steps value must be a positive finite number"),
        ]
        for ok, message in checks:
            if not ok:
                raise UserError(f"invalid recipe {self.name!r}: {message}")

    @property
    def hp(self) -> int:
        """The store's ``hp`` column: the length of the schedule in epochs (12, 200, 90, ...)."""
        return self.epochs

    def to_dict(self) -> dict[str, Any]:
        """The fields, less ``optimizer`` and ``lr_steps`` at their defaults (module docstring)."""
        out = dataclasses.asdict(self)
        if out["optimizer"] == "sgd":
            del out["optimizer"]
        if out["lr_steps"]:
            out["lr_steps"] = list(out["lr_steps"])
        else:
            del out["lr_steps"]
        return out

    def to_json(self) -> str:
        """Canonical JSON (sorted keys) recorded in every file's metadata."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @property
    def hash(self) -> str:
        """Short stable hash of the training procedure (the name is left out on purpose).

        A per-iteration recipe hashes without its ``lr_schedule_step``: that is the hash files
        written before the field existed record, and they were all trained per iteration.
        """
        fields = {k: v for k, v in self.to_dict().items() if k != "name"}
        if fields["lr_schedule_step"] == "iteration":
            del fields["lr_schedule_step"]
        blob = json.dumps(fields, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]

    def lr_at(self, epoch: int, iteration: int, iters_per_epoch: int) -> float:
        """Learning rate for the ``iteration``-th batch (0-based) of the ``epoch``-th epoch (0-based).

        Cosine annealing from ``lr`` to ``lr_min``. Per epoch (default) the lr of epoch e is the
        reference's ``eta_min + (base - eta_min) * (1 + cos(pi * e / T_max)) / 2``, written in
        the same order so that it equals xautodl's value to the last bit; from epoch ``epochs`` on
        it is ``lr_min`` (optimizers.py:99-100). Per iteration, t runs over every batch of the
        schedule and reaches 1 after the last one.

        With ``lr_steps`` (S values) the training's step j of T = epochs x iters_per_epoch trains
        at ``lr_steps[floor(j * S / T)]``: the list stretched or squeezed onto the training, so a
        schedule searched over other steps keeps its shape; past the end, its last value.
        """
        if iters_per_epoch < 1:
            raise ValueError("iters_per_epoch must be >= 1")
        if self.lr_steps:
            total = self.epochs * iters_per_epoch
            step = epoch * iters_per_epoch + iteration
            return self.lr_steps[min(step * len(self.lr_steps) // total, len(self.lr_steps) - 1)]
        if self.lr_schedule_step == "epoch":
            return cosine_lr(self.lr, epoch, self.epochs, self.lr_min)
        total = self.epochs * iters_per_epoch
        t = min(epoch * iters_per_epoch + iteration, total) / total
        return self.lr_min + (self.lr - self.lr_min) * 0.5 * (1.0 + math.cos(math.pi * t))


RECIPES: dict[str, Recipe] = {
    "h0": Recipe("h0", epochs=12),   # the cheap search recipe (NATS-Bench hp=12)
    "h1": Recipe("h1", epochs=200),  # the final recipe of the topology space
    "h2": Recipe("h2", epochs=90),   # the final recipe of the size space
}

_FIELDS = tuple(f.name for f in dataclasses.fields(Recipe) if f.name != "name")


def get_recipe(name: str | Recipe | Mapping[str, Any], **overrides: Any) -> Recipe:
    """Return the named recipe with any field overridden.

    ``name`` may also be a Recipe or a mapping ``{"name": "h0", "epochs": 48, ...}`` (the form a
    Ray Tune config carries). Unknown names or fields raise UserError.
    """
    if isinstance(name, Recipe):
        base = name
    else:
        if isinstance(name, Mapping):
            spec = dict(name)
            if "name" not in spec:
                raise UserError(f"a recipe mapping needs a 'name' (one of {sorted(RECIPES)}), "
                                f"got {spec!r}")
            name = spec.pop("name")
            overrides = {**spec, **overrides}
        key = str(name).lower()
        if key not in RECIPES:
            raise UserError(f"unknown recipe {name!r}: choose one of {sorted(RECIPES)}")
        base = RECIPES[key]
    unknown = sorted(set(overrides) - set(_FIELDS))
    if unknown:
        raise UserError(f"unknown recipe field(s) {unknown}: valid fields are {list(_FIELDS)}")
    return dataclasses.replace(base, **overrides) if overrides else base


def recorded_recipe(recorded: str | Mapping[str, Any]) -> Recipe:
    """The Recipe a file's ``recipe`` metadata (JSON or dict, as ``store_metadata`` writes it) names.

    A record without ``lr_schedule_step`` predates the field, when every schedule stepped per
    iteration, so it reads as "iteration". The recorded ``hash`` is checked against the rebuilt
    recipe's: a mismatch means the record was not written by this code (UserError).
    """
    try:
        spec = dict(json.loads(recorded) if isinstance(recorded, str) else recorded)
    except (TypeError, ValueError) as exc:
        raise UserError(f"recorded recipe {recorded!r} is not a JSON object ({exc})") from None
    recorded_hash = spec.pop("hash", None)
    spec.setdefault("lr_schedule_step", "iteration")
    unknown = sorted(set(spec) - set(_FIELDS) - {"name"})
    if unknown or "name" not in spec or "epochs" not in spec:
        raise UserError(f"recorded recipe {spec!r} was not written by trainables.recipes "
                        f"(fields {unknown or 'name/epochs missing'})")
    recipe = Recipe(**spec)
    if recorded_hash is not None and recorded_hash != recipe.hash:
        raise UserError(f"recorded recipe {spec!r} says hash {recorded_hash}, its fields hash to "
                        f"{recipe.hash}")
    return recipe
