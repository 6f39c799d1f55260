"""How much the adaptation loss should weigh a tumour class the corrections do not hold.

The question (issue 13, "the next real case no worse"): adapted on a lower-grade glioma
whose corrections hold no enhancing tumour, the model stops finding enhancing tumour on
the next cases, because the loss's Dice term of the absent class is smallest only when
that class is predicted nowhere (``models.losses``). ``AdaptConfig.absent_class_weight``
weighs those terms. This sweep decides the weight on synthetic cases only:

- corrected cases: the first ``--cases`` synthetic lower-grade gliomas (no enhancing
  tumour) from ``--first-seed``; 5 slices each, spread over the tumour (largest first,
  then each farthest from those picked), corrected with their reference; adapted with the
  plugin's defaults (active meta-tune, replay, guard) once per weight;
- scored: the rest of the corrected case (whole volume, corrected slices left out; WT and
  TC Dice), and ``--next`` synthetic high-grade gliomas and ``--next`` metastases from the
  same range (whole volume; WT, TC, ET Dice and the ET volume), before and after.

The rule, written before the first measurement: for each weight w,
S(w) = mean over corrected cases of (rest WT + rest TC) / 2
     + mean over (corrected case, next case) of the next case's mean region Dice after;
the weight with the largest S is the default; where two are within 0.005 of each other the
larger weight wins (closer to the recipe the models were trained with). Tuning range
``--first-seed 36000``; the check on fresh cases ``--first-seed 37000`` and on the real
cases (``tumorseg experiment effort``'s real targets).

    python scripts/absent_class_sweep.py --out docs/results/absent-class/tune --first-seed 36000
    python scripts/absent_class_sweep.py --out docs/results/absent-class/check --first-seed 37000 --weights 1,W

Writes results.json and results.md into --out.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

from napari_tumorseg.adapt.anchors import anchor_set, calibration_sets, replay_pools
from napari_tumorseg.adapt.config import default_config
from napari_tumorseg.adapt.corrections import Corrections, case_corrections, slices_with_tumour
from napari_tumorseg.adapt.eval_sets import score_set
from napari_tumorseg.adapt.guard import Lineage
from napari_tumorseg.adapt.run import run_adaptation
from napari_tumorseg.experiments.common import ABSENT_CLASS_TUNE_SEEDS, setup_torch
from napari_tumorseg.experiments.effort import segment
from napari_tumorseg.experiments.effort_scoring import rest_scores
from napari_tumorseg.experiments.patients import spread_order
from napari_tumorseg.jobs import drive
from napari_tumorseg.models.checkpoint import load_checkpoint
from napari_tumorseg.models.losses import region_dice
from napari_tumorseg.resources import resource_path
from napari_tumorseg.synth import GENERATOR_VERSION, generate_phantom

ET = 3
CORRECTED_SLICES = 5
FAINT = "faint:"  # name prefix of the next cases with faint enhancement


def _find(domain: str, start: int, count: int, want_et: bool | None, skip: int = 400, *,
          version: str = GENERATOR_VERSION, faint: str | None = None) -> list:
    """The first ``count`` cases of ``domain`` from ``start`` with tumour (and with or without ET).

    ``faint``: only cases whose appearance draw made that faint (generator versions 6 and 7).
    """
    cases = []
    for seed in range(start, start + skip):
        phantom = generate_phantom(domain, seed, version=version)
        if faint is not None and phantom.contrast.faint != faint:
            continue
        case = phantom.case
        tumour = slices_with_tumour(case.label)
        has_et = bool((case.label == ET).any())
        if len(tumour) >= 2 * CORRECTED_SLICES and (want_et is None or has_et == want_et):
            cases.append(case)
            if len(cases) == count:
                return cases
    raise RuntimeError(f"fewer than {count} {domain} cases qualify in {start}..{start + skip}")


def next_cases(args: argparse.Namespace) -> dict:
    """Name -> case: ``--next`` high-grade gliomas and metastases, and ``--faint-next`` of each whose
    enhancing tumour enhances faintly (generator version 7, named ``faint:<case>``)."""
    following = (_find("glioma", args.first_seed + 500, args.next, want_et=True)
                 + _find("metastasis", args.first_seed, args.next, want_et=None))
    named = {case.name: case for case in following}
    if args.faint_next:
        for domain, start in (("glioma", args.first_seed + 500), ("metastasis", args.first_seed)):
            for case in _find(domain, start, args.faint_next, want_et=True, version="7", faint="enhancement"):
                named[f"{FAINT}{case.name}"] = case
    return named


def _et_ml(labels: np.ndarray, spacing) -> float:
    return round(float((labels == ET).sum()) * float(np.prod(spacing)) / 1000.0, 3)


def _next_scores(labels: np.ndarray, case) -> dict:
    dice = {k: round(v, 5) for k, v in region_dice(labels, case.label).items()}
    return {"dice": dice, "mean": round(float(np.mean(list(dice.values()))), 5),
            "et_ml": _et_ml(labels, case.geometry.spacing)}


def _spread(case) -> list[int]:
    tumour = slices_with_tumour(case.label)
    areas = [float(np.count_nonzero(case.label[z])) for z in tumour]
    return sorted(spread_order(tumour, areas, CORRECTED_SLICES))


def sweep(args: argparse.Namespace, field: str = "weight", values: list | None = None,
          config_of=lambda weight: {"absent_class_weight": weight}) -> dict:
    """The protocol of the module docstring, once per value of one setting.

    Args:
        args: the command line (first seed, cases, next, threads, command).
        field: the records' name of the setting ("weight" here; other sweeps reuse this).
        values: the values swept (default ``args.weights``).
        config_of: value -> AdaptConfig overrides.
    """
    values = args.weights if values is None else values
    setup_torch(args.threads, "cpu")
    loaded = load_checkpoint(resource_path("models", "glioma-unet.safetensors"))
    model, preprocessing = loaded.model, loaded.preprocessing
    probe = default_config("active")
    anchor = anchor_set(model.config, preprocessing)
    replays: dict[int, list] = {}  # replay slices wanted -> the pools (a swept setting may change the count)

    def replay_for(overrides: dict) -> list:
        count = overrides.get("replay", probe.replay)
        if count not in replays:
            replays[count] = replay_pools(count, model.config, preprocessing)
        return replays[count]

    lineage = Lineage.of_original("original", score_set(model, anchor), anchor)
    corrected = _find("glioma", args.first_seed, args.cases, want_et=False)
    following = next_cases(args)
    before_next = {name: _next_scores(segment(model, preprocessing, c, "cpu").labels, c)
                   for name, c in following.items()}
    print("next cases before:", json.dumps(before_next), flush=True)
    records = []
    for case in corrected:
        picks = _spread(case)
        initial = segment(model, preprocessing, case, "cpu").labels
        corrections = Corrections.of(case_corrections(case, case.label, picks, model_config=model.config,
                                                      preprocessing=preprocessing, reference_slices=0))
        baseline = rest_scores(initial, case.label, picks, case.geometry.spacing)["dice"]
        for value in values:
            started = time.perf_counter()
            overrides = config_of(value)
            config = default_config("active", seed=0, reference_slices=0, **overrides)
            outcome = drive(run_adaptation(model, corrections, config, anchor=anchor,
                                           replay_pools=replay_for(overrides), lineage=lineage,
                                           calibration=calibration_sets(config, model.config, preprocessing)))
            after = segment(outcome.model, preprocessing, case, "cpu").labels
            record = {"case": case.name, "slices": picks, field: value, "status": outcome.report.status,
                      "reason": outcome.report.reason, "rest_before": baseline,
                      "rest_after": rest_scores(after, case.label, picks, case.geometry.spacing)["dice"],
                      "next": {name: _next_scores(segment(outcome.model, preprocessing, c, "cpu").labels, c)
                               for name, c in following.items()},
                      "seconds": round(time.perf_counter() - started, 1)}
            if "absent_bias_shift" in outcome.report.details:  # the keep_absent arm's correction
                record["absent_bias_shift"] = outcome.report.details["absent_bias_shift"]
            records.append(record)
            print(json.dumps(record), flush=True)
    return {"command": args.command, "machine": f"{platform.processor() or platform.machine()}, {args.threads} threads",
            "first_seed": args.first_seed, f"{field}s": values, "before_next": before_next, "runs": records,
            "summary": summarise(records, values, field)}


def summarise(records: list[dict], values: list, field: str = "weight") -> dict:
    """Per value: the corrected cases' rest WT/TC, the next cases' mean Dice and ET ml, the steps backed, and S."""
    out = {}
    for value in values:
        runs = [r for r in records if r[field] == value]
        rest = [(r["rest_after"]["WT"] + r["rest_after"]["TC"]) / 2 for r in runs]
        following = [n for r in runs for n in r["next"].values()]
        faint = [n for r in runs for name, n in r["next"].items() if name.startswith(FAINT)]
        extra = {"faint_mean_dice": round(float(np.mean([n["mean"] for n in faint])), 4),
                 "faint_et_ml": round(float(np.mean([n["et_ml"] for n in faint])), 3)} if faint else {}
        out[str(value)] = {
            "rest_WT": round(float(np.mean([r["rest_after"]["WT"] for r in runs])), 4),
            "rest_TC": round(float(np.mean([r["rest_after"]["TC"] for r in runs])), 4),
            "next_mean_dice": round(float(np.mean([n["mean"] for n in following])), 4),
            "next_ET": round(float(np.mean([n["dice"]["ET"] for n in following])), 4),
            "next_et_ml": round(float(np.mean([n["et_ml"] for n in following])), 3),
            "stepped_back": sum("stepped back" in r.get("reason", "") for r in runs),
            "accepted": sum(r["status"] != "rejected" for r in runs), "runs": len(runs),
            "S": round(float(np.mean(rest) + np.mean([n["mean"] for n in following])), 4), **extra}
    return out


def chosen(summary: dict) -> float:
    """The rule of the module docstring: the largest S; within 0.005 of it, the largest weight."""
    best = max(v["S"] for v in summary.values())
    return max(float(w) for w, v in summary.items() if v["S"] >= best - 0.005)


def render(results: dict, title: str = "Absent-class weight sweep", column: str = "weight", choice=None) -> str:
    """results.md: the next cases before, one row per value, the rule's choice (``choice``: default this sweep's)."""
    before = results["before_next"]
    lines = [f"# {title} (first seed {results['first_seed']})", "",
             f"`{results['command']}` — {results['machine']}", "",
             "Next cases before adapting: " + ", ".join(
                 f"{name} mean Dice {v['mean']:.3f} (ET {v['dice']['ET']:.3f}, {v['et_ml']} ml)"
                 for name, v in before.items()), "",
             f"| {column} | rest WT | rest TC | next mean Dice | next ET Dice | next ET ml | stepped back | accepted "
             "| S |", "|---|---|---|---|---|---|---|---|---|"]
    faint = any("faint_et_ml" in v for v in results["summary"].values())
    if faint:  # the faint-enhancement next cases, also apart
        lines[-2] = lines[-2].replace(" | S |", " | S | faint next mean Dice | faint next ET ml |")
        lines[-1] += "---|---|"
    for value, v in results["summary"].items():
        lines.append(f"| {value} | {v['rest_WT']:.4f} | {v['rest_TC']:.4f} | {v['next_mean_dice']:.4f} | "
                     f"{v['next_ET']:.4f} | {v['next_et_ml']:.2f} | {v.get('stepped_back', '-')} | "
                     f"{v['accepted']}/{v['runs']} | {v['S']:.4f} |"
                     + (f" {v['faint_mean_dice']:.4f} | {v['faint_et_ml']:.2f} |" if faint else ""))
    lines += ["", f"Rule's choice: **{(choice or chosen)(results['summary'])}**", ""]
    return "\n".join(lines)


def protocol_arguments(description: str, swept: str, kind, default: list, faint_next: int = 0) -> argparse.Namespace:
    """The protocol's command line, the swept setting ``--{swept}`` among it; ``command`` echoes it.

    ``faint_next``: the default of ``--faint-next`` (next cases per domain with faint enhancement).
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--first-seed", type=int, default=ABSENT_CLASS_TUNE_SEEDS)
    parser.add_argument("--cases", type=int, default=4)
    parser.add_argument("--next", type=int, default=2)
    parser.add_argument("--faint-next", type=int, default=faint_next, help="next cases per domain with faint enhancement")
    parser.add_argument(f"--{swept}", type=lambda s: [kind(v) for v in s.split(",")], default=default)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    args.command = f"python {Path(sys.argv[0]).as_posix()} " + " ".join(
        f"--{k.replace('_', '-')} {','.join(map(str, v)) if isinstance(v, list) else v}" for k, v in vars(args).items())
    return args


def paired_difference(results: dict, base: str, other: str) -> list[float]:
    """Per corrected case, S(other) - S(base) for string-valued sweeps: S = rest (WT + TC) / 2 + mean next Dice."""
    by_case: dict[str, dict[str, float]] = {}
    for run in results["runs"]:
        following = [n["mean"] for n in run["next"].values()]
        rest = (run["rest_after"]["WT"] + run["rest_after"]["TC"]) / 2
        by_case.setdefault(run["case"], {})[str(run["value"])] = rest + sum(following) / len(following)
    return [round(v[other] - v[base], 5) for v in by_case.values()]


def save(args: argparse.Namespace, results: dict, text: str) -> int:
    """Write results.json and results.md (``text``) into ``--out``, print the table; the exit status."""
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    (args.out / "results.md").write_text(text)
    print(text)
    return 0


def main() -> int:
    args = protocol_arguments(__doc__.splitlines()[0], "weights", float, [0, 0.1, 0.25, 0.5, 1])
    results = sweep(args)
    return save(args, results, render(results))


if __name__ == "__main__":
    raise SystemExit(main())
