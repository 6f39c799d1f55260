"""Should the guard refuse a step that makes the model mark much less of a region on the anchor set?

The question (issue 13, "the next real case no worse"): adapted on a case without enhancing
tumour, the model marks less enhancing tumour everywhere; on the anchor set its Dice rises
(the parent over-called it there) while the real next cases lose half of theirs
(docs/results/anchor-blind-spot). ``AdaptConfig.max_shrink`` makes the guard refuse (and so
step back) when a region's voxels marked on the anchor shrink by more than that share.

The protocol is the absent-class sweep's (``scripts/absent_class_sweep.py``: 4 synthetic
lower-grade gliomas without enhancing tumour corrected on 5 spread slices, adapted with the
plugin's defaults; 2 high-grade gliomas and 2 metastases as next cases), once per value.

The rule, written before the first measurement (2026-12-04, 18:06 UTC): for each value v in
{off, 0.2, 0.1}, S(v) = mean over corrected cases of (rest WT + rest TC) / 2 + mean over
(corrected case, next case) of the next case's mean region Dice after. Every value whose S is
within 0.005 of the best is a candidate; of those, the one whose next cases keep the most
enhancing tumour (mean ET ml) becomes the default — the loss the criterion exists to prevent.
Tuning seeds 36000; then reported, not chosen, on the real cases (the unlabelled cases' ET
after adapting on TCGA-DU-7294: ``scripts/anchor_class_drift.py``; the rest-of-case target:
``tumorseg experiment effort``'s real targets).

    python scripts/shrink_sweep.py --out docs/results/anchor-blind-spot/tune --first-seed 36000
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
from absent_class_sweep import _find, _next_scores, _spread

from napari_tumorseg.adapt.anchors import anchor_set, replay_pools
from napari_tumorseg.adapt.config import default_config
from napari_tumorseg.adapt.corrections import Corrections, case_corrections
from napari_tumorseg.adapt.guard import Lineage, score_set
from napari_tumorseg.adapt.run import run_adaptation
from napari_tumorseg.experiments.common import ABSENT_CLASS_TUNE_SEEDS, setup_torch
from napari_tumorseg.experiments.effort import segment
from napari_tumorseg.experiments.effort_scoring import rest_scores
from napari_tumorseg.jobs import drive
from napari_tumorseg.models.checkpoint import load_checkpoint
from napari_tumorseg.resources import resource_path


def _value(text: str) -> float | None:
    return None if text == "off" else float(text)


def sweep(args: argparse.Namespace) -> dict:
    setup_torch(args.threads, "cpu")
    loaded = load_checkpoint(resource_path("models", "glioma-unet.safetensors"))
    model, preprocessing = loaded.model, loaded.preprocessing
    anchor = anchor_set(model.config, preprocessing)
    replay = replay_pools(default_config("active").replay, model.config, preprocessing)
    lineage = Lineage.of_original("original", score_set(model, anchor), anchor)
    corrected = _find("glioma", args.first_seed, args.cases, want_et=False)
    following = (_find("glioma", args.first_seed + 500, args.next, want_et=True)
                 + _find("metastasis", args.first_seed, args.next, want_et=None))
    before_next = {c.name: _next_scores(segment(model, preprocessing, c, "cpu").labels, c) for c in following}
    records = []
    for case in corrected:
        picks = _spread(case)
        initial = segment(model, preprocessing, case, "cpu").labels
        corrections = Corrections.of(case_corrections(case, case.label, picks, model_config=model.config,
                                                      preprocessing=preprocessing, reference_slices=0))
        baseline = rest_scores(initial, case.label, picks, case.geometry.spacing)["dice"]
        for value in args.values:
            started = time.perf_counter()
            config = default_config("active", seed=0, reference_slices=0, max_shrink=_value(value))
            outcome = drive(run_adaptation(model, corrections, config, anchor=anchor, replay_pools=replay,
                                           lineage=lineage))
            after = segment(outcome.model, preprocessing, case, "cpu").labels
            record = {"case": case.name, "slices": picks, "value": value, "status": outcome.report.status,
                      "reason": outcome.report.reason, "rest_before": baseline,
                      "rest_after": rest_scores(after, case.label, picks, case.geometry.spacing)["dice"],
                      "next": {c.name: _next_scores(segment(outcome.model, preprocessing, c, "cpu").labels, c)
                               for c in following},
                      "seconds": round(time.perf_counter() - started, 1)}
            records.append(record)
            print(json.dumps(record), flush=True)
    return {"command": args.command, "machine": f"{platform.processor() or platform.machine()}, {args.threads} threads",
            "first_seed": args.first_seed, "values": args.values, "before_next": before_next, "runs": records,
            "summary": summarise(records, args.values)}


def summarise(records: list[dict], values: list[str]) -> dict:
    """Per value: the corrected cases' rest WT/TC, the next cases' mean Dice and ET ml, and S."""
    out = {}
    for value in values:
        runs = [r for r in records if r["value"] == value]
        rest = [(r["rest_after"]["WT"] + r["rest_after"]["TC"]) / 2 for r in runs]
        following = [n for r in runs for n in r["next"].values()]
        out[value] = {
            "rest_WT": round(float(np.mean([r["rest_after"]["WT"] for r in runs])), 4),
            "rest_TC": round(float(np.mean([r["rest_after"]["TC"] for r in runs])), 4),
            "next_mean_dice": round(float(np.mean([n["mean"] for n in following])), 4),
            "next_ET": round(float(np.mean([n["dice"]["ET"] for n in following])), 4),
            "next_et_ml": round(float(np.mean([n["et_ml"] for n in following])), 3),
            "stepped_back": sum("stepped back" in r["reason"] for r in runs),
            "accepted": sum(r["status"] != "rejected" for r in runs), "runs": len(runs),
            "S": round(float(np.mean(rest) + np.mean([n["mean"] for n in following])), 4)}
    return out


def chosen(summary: dict) -> str:
    """The rule of the module docstring: within 0.005 of the best S, the most ET kept on the next cases."""
    best = max(v["S"] for v in summary.values())
    candidates = {k: v for k, v in summary.items() if v["S"] >= best - 0.005}
    return max(candidates, key=lambda k: candidates[k]["next_et_ml"])


def render(results: dict) -> str:
    before = results["before_next"]
    lines = [f"# Anchor shrink limit sweep (first seed {results['first_seed']})", "",
             f"`{results['command']}` — {results['machine']}", "",
             "Next cases before adapting: " + ", ".join(
                 f"{name} mean Dice {v['mean']:.3f} (ET {v['dice']['ET']:.3f}, {v['et_ml']} ml)"
                 for name, v in before.items()), "",
             "| max shrink | rest WT | rest TC | next mean Dice | next ET Dice | next ET ml | stepped back | accepted "
             "| S |",
             "|---|---|---|---|---|---|---|---|---|"]
    for value, v in results["summary"].items():
        lines.append(f"| {value} | {v['rest_WT']:.4f} | {v['rest_TC']:.4f} | {v['next_mean_dice']:.4f} | "
                     f"{v['next_ET']:.4f} | {v['next_et_ml']:.2f} | {v['stepped_back']} | "
                     f"{v['accepted']}/{v['runs']} | {v['S']:.4f} |")
    lines += ["", f"Rule's choice: **{chosen(results['summary'])}**", ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--first-seed", type=int, default=ABSENT_CLASS_TUNE_SEEDS)
    parser.add_argument("--cases", type=int, default=4)
    parser.add_argument("--next", type=int, default=2)
    parser.add_argument("--values", type=lambda s: s.split(","), default=["off", "0.2", "0.1"])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    args.command = "python scripts/shrink_sweep.py " + " ".join(
        f"--{k.replace('_', '-')} {','.join(map(str, v)) if isinstance(v, list) else v}"
        for k, v in vars(args).items() if k not in ("command",))
    results = sweep(args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    (args.out / "results.md").write_text(render(results))
    print(render(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
