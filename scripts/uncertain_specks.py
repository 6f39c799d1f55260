"""What the uncertainty rule of the clean-up does: false components removed against lesions lost.

    python scripts/uncertain_specks.py measure OUT.json --model M [--model M2] \\
        [--synthetic glioma:11000:11020 ...] [--real ../shared/real] [--mirror none] [--threads 2]
    python scripts/uncertain_specks.py table OUT.json [--max-ml 0.25,0.5,1,2] [--mean 0.65,0.7,0.75,0.8]

``measure`` segments every case once per model with the rule off (specks under 20 mm³ removed, as always)
and records each 26-connected tumour component: its volume, its mean tumour probability (1 − background,
computed as the Segmenter computes it, ``inference.postprocess.component_confidence``), the share of it on
the reference tumour, and per reference lesion which components touch it. ``table`` then applies the
rule (``inference.postprocess.uncertain_components``: under ``max-ml`` and under ``mean``) for every pair
of settings, per model and set (the cases' name before the ``_``, or "real"): the mean whole-volume WT
Dice, the false components left (at most 10 % on the reference), the reference lesions still touched by
a component, and the volumes of those lost. The rule removes whole components, so this is exactly what
the Segmenter's labels would score.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

FALSE_IF_ON_TUMOUR_AT_MOST = 0.1


def _cases(args: argparse.Namespace):
    from napari_tumorseg.io.reader import read_case
    from napari_tumorseg.synth.generate import iter_cases
    from napari_tumorseg.training.sources import case_folders

    for spec in args.synthetic:
        domain, first, last = spec.split(":")
        yield from iter_cases(domain, range(int(first), int(last)))
    for folder in args.real:
        yield from (read_case(path) for path in case_folders(Path(folder)))


def _reference_lesions(reference: np.ndarray, components: np.ndarray, voxel_ml: float) -> list[dict]:
    from napari_tumorseg.inference.postprocess import tumour_components

    lesions, count = tumour_components(reference)
    found = []
    for index in range(1, count + 1):
        inside = lesions == index
        touched = np.unique(components[inside])
        found.append({"ml": float(inside.sum() * voxel_ml), "touched": [int(c) - 1 for c in touched if c > 0]})
    return found


def _record(case, result) -> dict:
    from napari_tumorseg.inference.postprocess import component_confidence, tumour_components

    components, count = tumour_components(result.labels)
    voxel_ml = float(np.prod(case.geometry.spacing)) / 1000.0
    sizes = np.bincount(components.ravel(), minlength=count + 1)[1:]
    confidence = component_confidence(components, count, 255 - result.probabilities[0])
    record = {"case": case.name, "ml": (sizes * voxel_ml).tolist(), "mean": confidence.tolist()}
    if case.label is not None:
        reference = case.label > 0
        on = np.bincount(components.ravel(), weights=reference.ravel(), minlength=count + 1)[1:]
        record["on_reference"] = (on / np.maximum(sizes, 1)).tolist()
        record["reference_ml"] = float(reference.sum() * voxel_ml)
        record["lesions"] = _reference_lesions(reference, components, voxel_ml)
    return record


def measure(args: argparse.Namespace) -> None:
    from napari_tumorseg.inference.segmenter import Segmenter

    segmenters = {
        Path(m).name.split(".")[0]: Segmenter.from_checkpoint(
            m, device="cpu", num_threads=args.threads, mirror=args.mirror, uncertain_max_ml=0
        )
        for m in args.model
    }
    document = {"mirror": args.mirror, "models": {name: [] for name in segmenters}}
    for case in _cases(args):
        for name, segmenter in segmenters.items():
            started = time.perf_counter()
            document["models"][name].append(_record(case, segmenter.segment(case)))
            print(f"{name} {case.name} {time.perf_counter() - started:.1f} s", flush=True)
        args.out.write_text(json.dumps(document))


def _scored(record: dict, keep: np.ndarray) -> dict:
    ml, on = np.asarray(record["ml"]), np.asarray(record.get("on_reference", [np.nan] * len(record["ml"])))
    out = {"components": int(keep.sum())}
    if "reference_ml" not in record:
        return out
    hit = float((on * ml)[keep].sum())
    out["dice"] = 2 * hit / (ml[keep].sum() + record["reference_ml"]) if ml[keep].sum() + record["reference_ml"] else 1.0
    out["false"] = int((keep & (on <= FALSE_IF_ON_TUMOUR_AT_MOST)).sum())
    touched = [any(keep[c] for c in lesion["touched"]) for lesion in record["lesions"]]
    out["found"], out["lesions"] = sum(touched), len(touched)
    out["lost"] = [
        round(lesion["ml"], 3)
        for lesion, kept in zip(record["lesions"], touched)
        if lesion["touched"] and not kept
    ]
    return out


def rule_effect(records: list[dict], max_ml: float, min_mean: float) -> dict:
    """The rule's effect summed (components, false, found, lost) or averaged (dice) over a set's records."""
    from napari_tumorseg.inference.postprocess import uncertain_components

    scored = [
        _scored(r, ~uncertain_components(np.asarray(r["ml"]), np.asarray(r["mean"]), max_ml, min_mean))
        for r in records
    ]
    total = {"cases": len(scored), "components": sum(s["components"] for s in scored)}
    labelled = [s for s in scored if "dice" in s]
    if labelled:
        total["dice"] = float(np.mean([s["dice"] for s in labelled]))
        total["per_case_dice"] = [s["dice"] for s in labelled]
        for key in ("false", "found", "lesions"):
            total[key] = sum(s[key] for s in labelled)
        total["lost"] = [ml for s in labelled for ml in s["lost"]]
    return total


def _sets(records: list[dict]) -> dict[str, list[dict]]:
    sets: dict[str, list[dict]] = {}
    for record in records:
        name = record["case"].split("_")[0] if "_" in record["case"] else "real"
        sets.setdefault(name, []).append(record)
    return sets


def _line(label: str, effect: dict, base: dict | None) -> str:
    parts = [label, f"components {effect['components']}"]
    if "dice" in effect:
        gain = "" if base is None else f" ({effect['dice'] - base['dice']:+.4f})"
        parts += [f"WT Dice {effect['dice']:.4f}{gain}", f"false {effect['false']}",
                  f"lesions touched {effect['found']}/{effect['lesions']}", f"lost {effect['lost']}"]
    return " | ".join(parts)


def table(args: argparse.Namespace) -> None:
    document = json.loads(args.json.read_text())
    print(f"mirror: {document['mirror']}")
    for model, records in document["models"].items():
        for name, group in _sets(records).items():
            base = rule_effect(group, 0.0, 0.0)
            print(f"\n{model}, {name} ({len(group)} cases)")
            print(_line("  rule off", base, None))
            for max_ml in args.max_ml:
                for min_mean in args.mean:
                    print(_line(f"  < {max_ml} ml, mean < {min_mean}", rule_effect(group, max_ml, min_mean), base))


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("measure")
    m.add_argument("out", type=Path)
    m.add_argument("--model", action="append", required=True)
    m.add_argument("--synthetic", action="append", default=[], help="DOMAIN:FIRST:END (end excluded)")
    m.add_argument("--real", action="append", default=[], help="a folder of real cases")
    m.add_argument("--mirror", default="none")
    m.add_argument("--threads", type=int, default=2)
    t = sub.add_parser("table")
    t.add_argument("json", type=Path)
    t.add_argument("--max-ml", type=_floats, default=[0.25, 0.5, 1.0, 2.0])
    t.add_argument("--mean", type=_floats, default=[0.65, 0.7, 0.75, 0.8])
    args = parser.parse_args()
    (measure if args.command == "measure" else table)(args)


if __name__ == "__main__":
    main()
