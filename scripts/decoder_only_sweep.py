"""Adapt the decoder only: does keeping the encoder's features keep the next cases' enhancing tumour?

Why (issue 13, "the next real case no worse than before adapting"): adapted on a real lower-grade glioma, the
model loses most of the enhancing tumour it found on the next real cases, and the loss lies in the network's
features, not in its head (restoring the head gives none of it back: docs/results/replay-size, head-restore.txt).
``AdaptConfig.layers = "decoder"`` adapts the up-sampling path and the head only; the encoder (stem and
down-samplings, three fifths of the weights) keeps what it learnt from the training set. Fewer weights move, and
the backward pass stops at the decoder, so each step is also cheaper (the GPU target of 1 s is host-bound:
fewer kernels a step).

The protocol is the absent-class sweep's with the faint-enhancement next cases (``scripts/absent_class_sweep.py``
``--faint-next 2``), once with every layer adapted (all) and once the decoder only, on the tuning seeds 36000 and
on the fresh seeds 37000, every other setting the plugin's default.

The rule, written before the first measurement (2026-12-05, 07:47 UTC). "decoder" becomes the default when all
three hold:
1. phantoms: over the 8 corrected cases of both seed ranges, the mean paired difference of the case's S
   (rest (WT + TC) / 2 + mean Dice of its 8 next cases after), decoder minus all, is at least -0.005;
2. the real glioma (``tumorseg experiment effort --out OUT --seeds 1 --device auto --threads 2 --patients 1
   --runs paste --real-seeds 2 --real-runs suggest/active,random/active --layers decoder``, against the same
   command with every layer): the mean rest WT of each picking rule at most 0.005 below all's, and the
   unlabelled cases' enhancing tumour after adapting (mean over the runs) at most 0.5 ml below all's;
3. ``tumorseg bench-adapt --threads 2`` on the CPU, 3 interleaved pairs: the median not slower.
Whatever it shows is reported, the next cases' enhancing tumour volume (the reason for trying) included.

    python scripts/decoder_only_sweep.py --out docs/results/decoder-only/tune --first-seed 36000
    python scripts/decoder_only_sweep.py --out docs/results/decoder-only/check --first-seed 37000
"""

from __future__ import annotations

from absent_class_sweep import paired_difference, protocol_arguments, render, save, sweep


def main() -> int:
    args = protocol_arguments(__doc__.splitlines()[0], "values", str, ["all", "decoder"], faint_next=2)
    results = sweep(args, "value", args.values, lambda value: {"layers": value})
    results["paired_difference_decoder_minus_all"] = paired_difference(results, "all", "decoder")
    text = render(results, "Layers adapted", "layers", choice=lambda summary: "see the rule (paired, both ranges)")
    return save(args, results,
                text + f"\nS(decoder) - S(all) per corrected case: {results['paired_difference_decoder_minus_all']}\n")


if __name__ == "__main__":
    raise SystemExit(main())
