"""The guard's shrink limit, decided again with next cases whose enhancing tumour enhances faintly.

Why again (issue 13, "the next real case no worse"): adapted on a real glioma without enhancing
tumour, the model loses most of the enhancing tumour of the real next cases (GLI-00001 5.7 -> 1.1-2.0
ml, MET-00110 8.7 -> 2.6-3.9 ml; docs/results/effort-real-shipped), while the synthetic next cases of
``scripts/shrink_sweep.py`` lose only a sixth of theirs: their enhancement is bright (0.45-1.8 WM
units of uptake), far from where the model's enhancing-tumour boundary moves. So that sweep could
not show what ``AdaptConfig.max_shrink`` buys, and chose "off". Generator version 7 draws, in about
3 cases in 10, a faint uptake (0.15-0.45; ``synth.appearance.FAINT_ENHANCEMENT``, set by eye from the
appearance of faintly enhancing tumours in the literature, never from the real cases' voxels).

The protocol is the absent-class sweep's (``scripts/absent_class_sweep.py``: 4 synthetic lower-grade
gliomas without enhancing tumour, corrected on 5 spread slices, adapted with the plugin's defaults),
the next cases its 2 high-grade gliomas and 2 metastases (version 2) **and** 2 high-grade gliomas and 2
metastases of version 7 with faint enhancement (``--faint-next 2``; the first such seeds of the same
ranges), once per value of ``max_shrink``.

The rule, written before the first measurement (2026-12-04, 20:05 UTC): for each value v in
{off, 0.2, 0.1}, S(v) = mean over corrected cases of (rest WT + rest TC) / 2 + mean over
(corrected case, next case), all 8 next cases, of the next case's mean region Dice after. Every value
whose S is within 0.005 of the best is a candidate; of those, the one whose faint next cases keep the
most enhancing tumour (mean ET ml) is chosen. Tuning seeds 36000. A chosen value other than "off"
becomes the default only if, on the fresh seeds 37000 (values off and the chosen one), its S is again
within 0.005 of off's or above it; then it is reported, not chosen, on the real cases (``tumorseg
experiment effort``'s real targets and ``scripts/anchor_class_drift.py``).

    python scripts/faint_enhancement_sweep.py --out docs/results/faint-enhancement/tune --first-seed 36000
    python scripts/faint_enhancement_sweep.py --out docs/results/faint-enhancement/check --first-seed 37000 \\
        --values off,V
"""

from __future__ import annotations

from absent_class_sweep import protocol_arguments, render, save, sweep
from shrink_sweep import _value


def chosen(summary: dict) -> str:
    """The rule of the module docstring: within 0.005 of the best S, the most ET kept on the faint next cases."""
    best = max(v["S"] for v in summary.values())
    candidates = {k: v for k, v in summary.items() if v["S"] >= best - 0.005}
    return max(candidates, key=lambda k: candidates[k]["faint_et_ml"])


def main() -> int:
    args = protocol_arguments(__doc__.splitlines()[0], "values", str, ["off", "0.2", "0.1"], faint_next=2)
    results = sweep(args, "value", args.values, lambda value: {"max_shrink": _value(value)})
    text = render(results, "Shrink limit sweep with faint-enhancement next cases", "max shrink", choice=chosen)
    return save(args, results, text)


if __name__ == "__main__":
    raise SystemExit(main())
