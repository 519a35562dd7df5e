"""``python -m benchmark_data surrogate``: complete a partial table with a fitted surrogate."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from spaces import SPACE_NAMES

from .. import cli
from .complete import NOISE
from .models import CANDIDATES
from .scores import FINAL_TARGETS, FOLDS
from .training import MIN_ARCHS

PROG = "python -m benchmark_data surrogate"
EPILOG = f"""\
The model is chosen by {FOLDS}-fold cross-validation over the trained architectures (folds keep isomorphic
architectures together): the candidate with the highest mean Kendall tau of the final validation and test
accuracy wins. Its predictions go to STORE/surrogate/ (never into epochs/), labelled with status 'surrogate',
seed -1, and metadata naming the model, its features, a fingerprint of the training rows and every
candidate's CV scores. With --noise residual (the default) each prediction gets the cross-validation residuals
of one trained architecture added, so predicted rows scatter as one training does. Running it again replaces
the earlier predictions (after more training, say).
Searches use them unless given --no-surrogate, and say how much of each result came from the model.
Example:
  {PROG} --store benchmark_data/embedded --space sss --dataset digits --hp 12"""


def _parser():
    p = cli.Parser(prog=PROG, epilog=EPILOG, formatter_class=_Formatter,
                   description="Fit a surrogate model on the trained architectures of one (space, dataset, hp) "
                               "table and write its predictions for every architecture the table lacks.")
    cli.add_store_flag(p, reads=False, required=True, help="store folder to complete (required)")
    cli.add_old_store_forms(p, "surrogate")
    p.add_argument("--space", choices=SPACE_NAMES, default=None, help="search space (default: the store's only one)")
    p.add_argument("--dataset", default=None, help="dataset (default: the store's only one for the space)")
    p.add_argument("--hp", type=int, default=None, help="recipe length in epochs (default: the only one, else 12)")
    p.add_argument("--model", default="auto", choices=("auto",) + CANDIDATES,
                   help="surrogate model; auto cross-validates every candidate and keeps the best")
    p.add_argument("--folds", type=int, default=FOLDS, help="folds of the cross-validation")
    p.add_argument("--seed", type=int, default=0, help="seed of the folds and the model (same seed, same rows)")
    p.add_argument("--noise", default="residual", choices=NOISE,
                   help="residual: each prediction plus one trained architecture's CV residuals (drawn with "
                        "--seed), so predicted rows vary as much as trained ones; none: the bare predicted mean")
    p.add_argument("--min-archs", type=int, default=MIN_ARCHS,
                   help="fewest trained architectures a fit is allowed on")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    return p


class _Formatter(cli.DefaultsFormatter):
    def _fill_text(self, text, width, indent):  # keep the epilog's lines as written
        return "".join(indent + line for line in text.splitlines(keepends=True))


def main(argv: Sequence[str] | None = None) -> int:
    from spaces.errors import UserError

    from ..reader import Benchmark
    from .complete import complete

    args = _parser().parse_args(argv)
    root = cli.store_to_write(args.store)
    if not root.is_dir():
        raise UserError(f"store folder {args.store} does not exist")
    if args.min_archs < 2:
        raise UserError(f"--min-archs {args.min_archs}: a fit needs at least 2 architectures")
    bench = Benchmark.open(root, surrogate=False)
    space = cli.pick_space(bench, args.space)
    dataset = args.dataset if args.dataset is not None else bench.choose_dataset(space)
    hp = cli.pick_hp(bench, space, dataset, args.hp)

    def say(step: str) -> None:
        if not args.quiet:
            print(f"  {step}", file=sys.stderr, flush=True)

    print(f"surrogate for {space}/{dataset} hp={hp} in {root}")
    done = complete(root, space, dataset, hp, model=args.model, seed=args.seed, folds=args.folds,
                    min_archs=args.min_archs, noise=args.noise, progress=say)
    fit = done.fit
    ts = fit.ts
    print(f"training set: {ts.archs.size:,} trained architectures"
          + (f" ({ts.left_out} more left out: gaps in their curves)" if ts.left_out else "")
          + f", {ts.X.shape[1]} features, {len(ts.columns)} target columns ({', '.join(ts.metrics)}); "
            f"fingerprint {ts.fingerprint}")
    print(f"{fit.folds}-fold cross-validation (final epoch {ts.n_epochs}):")
    print(format_scores(fit.scores, fit.model))
    print(f"model: {fit.model} (mean Kendall tau {fit.chosen.rank_score:.3f})"
          + ("" if args.model == "auto" else ", as asked"))
    print(f"wrote {done.written:,} architectures x {ts.n_epochs} epochs of predictions (status surrogate; noise "
          f"{args.noise}) to "
          f"{done.paths[0].parent}" + (f"; replaced {len(done.replaced)} earlier file(s)" if done.replaced else ""))
    return 0


def format_scores(scores, chosen: str) -> str:
    """The CV table: one row per candidate, tau / rho / RMSE per final target."""
    targets = [t for t in FINAL_TARGETS if t in scores[0].targets]
    head = ["model"] + [f"{t} {s}" for t in targets for s in ("tau", "rho", "RMSE")] + ["fit s", "predict s"]
    rows = []
    for s in scores:
        cells = [s.model + (" *" if s.model == chosen else "")]
        for t in targets:
            x = s.targets[t]
            cells += [f"{x.kendall_tau:.3f}", f"{x.spearman_rho:.3f}", f"{x.rmse:.3f}"]
        rows.append(cells + [f"{s.fit_s:.2f}", f"{s.predict_s:.2f}"])
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = ["  " + "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
             for r in [head, *rows]]
    return "\n".join(lines)
