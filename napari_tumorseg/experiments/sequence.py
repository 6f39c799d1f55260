"""The memory's measurement: cases adapted one after another; does case N erase cases 1..N-1?

A radiologist adapts the model to case 1, then case 2, ... Each adaptation
starts from the version the previous one left (the guard decides, as in the
plugin), with ``corrected`` reference slices of its case as corrections.
After each one, every case's evaluation slices (tumour slices it was not
corrected on) and the source anchor set are scored. Variants:

- ``memory``: the plugin's default: source slices and the memory of the
  earlier cases' corrections (``adapt.memory``) replayed at every step;
- ``source``: source slices only (what the plugin did before the memory);
- ``none``: no replay at all.

Backward transfer of case j: its Dice at the end minus its Dice right after
it was adapted (negative: later cases erased what it taught); averaged over
the cases before the last. Paired over cases and seeds (Wilcoxon, the case
the unit) between the variants.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Generator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..adapt.anchors import ANCHOR_SLICES_PER_CASE
from ..jobs import Clock, Progress, drive
from .common import SEQUENCE_SEEDS, paired_test, seed_list

VARIANTS: tuple[str, ...] = ("memory", "source", "none")


@dataclass
class SequenceConfig:
    """The sequence experiment's settings.

    Args:
        cases: metastasis cases adapted on in turn (from SEQUENCE_SEEDS).
        corrected: reference slices of each given as corrections (spread over its tumour).
        eval_slices: evaluation slices per case (other tumour slices).
        seeds: repeat seeds. seed: the first.
        method: the adaptation method (default: the plugin's).
        variants: from VARIANTS.
        shape: synthetic grid (None: BraTS 1 mm).
        anchor_per_case: anchor slices per anchor case (the guard's: ``adapt.anchors.ANCHOR_SLICES_PER_CASE``).
        adapt_overrides: AdaptConfig fields changed from the method's defaults.
    """

    cases: int = 5
    corrected: int = 5
    eval_slices: int = 8
    seeds: int = 3
    seed: int = 0
    method: str = "active"
    variants: tuple[str, ...] = VARIANTS
    shape: tuple[int, int, int] | None = None
    anchor_per_case: int = ANCHOR_SLICES_PER_CASE
    adapt_overrides: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = [v for v in self.variants if v not in VARIANTS]
        if unknown:
            raise ValueError(f"unknown variants {unknown}; expected some of {list(VARIANTS)}")
        if min(self.cases, self.corrected, self.eval_slices, self.seeds) < 1 or self.cases < 2:
            raise ValueError("cases must be >= 2; corrected, eval_slices and seeds >= 1")
        if self.shape is not None:
            self.shape = tuple(int(n) for n in self.shape)

    @classmethod
    def quick(cls, **changes: Any) -> SequenceConfig:
        base = cls(cases=3, corrected=2, eval_slices=2, seeds=1, shape=(40, 64, 64), anchor_per_case=1,
                   adapt_overrides={"steps": 2})
        return replace(base, **changes)

    def adapt_config(self, variant: str, seed: int) -> Any:
        from ..adapt.config import default_config

        changes = {**self.adapt_overrides, "seed": seed, "reference_slices": 0}
        if variant != "memory":
            changes["memory_per_step"] = 0
        if variant == "none":
            changes["replay"] = 0
        return default_config(self.method, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_sequence(model: Any, preprocessing: Any, config: SequenceConfig, *, anchor_cache: Any = True,
                 cancel: Any = None) -> Generator[Progress, None, dict[str, Any]]:
    """Every variant and seed through the sequence of cases; returns the raw records."""
    from ..adapt.anchors import anchor_set, calibration_sets, replay_pools
    from ..adapt.eval_sets import score_set
    from ..adapt.guard import Lineage
    from ..adapt.memory import CorrectionMemory
    from ..adapt.run import run_adaptation
    from ..adapt.corrections import Corrections
    from .patients import prepare_patient

    patients = []
    for seed in range(SEQUENCE_SEEDS, SEQUENCE_SEEDS + 200):
        if len(patients) == config.cases:
            break
        patient = prepare_patient("metastasis", seed, model.config, preprocessing, shape=config.shape,
                                  eval_slices=config.eval_slices, max_k=config.corrected)
        if patient is not None:
            patients.append(patient)
    anchor = anchor_set(model.config, preprocessing, shape=config.shape, per_case=config.anchor_per_case,
                        cache_dir=anchor_cache)
    replay = replay_pools(8, model.config, preprocessing, shape=config.shape, cache_dir=anchor_cache)
    calibration = {variant: calibration_sets(config.adapt_config(variant, 0), model.config, preprocessing,
                                             shape=config.shape, cache_dir=anchor_cache) for variant in config.variants}
    lineage = Lineage.of_original("original", score_set(model, anchor), anchor)
    eval_sets = [p.eval_set(p.name) for p in patients]
    before = [score_set(model, s)["mean"] for s in eval_sets]
    clock = Clock(len(config.variants) * config.seeds * len(patients), "adapting", cancel)
    records = []
    for variant in config.variants:
        for seed in seed_list(config.seed, config.seeds):
            current = model
            with tempfile.TemporaryDirectory(prefix="tumorseg-sequence-") as folder:
                memory = CorrectionMemory(Path(folder))
                steps = []
                for index, patient in enumerate(patients):
                    clock.check()
                    corrections = Corrections.of(replace(patient.corrections(config.corrected),
                                                         reference_inputs=None, reference_labels=None,
                                                         reference_indices=()))
                    adapt_config = config.adapt_config(variant, seed * 100 + index)
                    pools = memory.pools((corrections.in_channels, model.config.context)) if variant == "memory" else []
                    started = time.perf_counter()
                    outcome = drive(run_adaptation(current, corrections, adapt_config, anchor=anchor,
                                                   replay_pools=replay, memory_pools=pools, lineage=lineage,
                                                   cancel=cancel, calibration=calibration[variant]))
                    accepted = outcome.report.status != "rejected"
                    if accepted:
                        current = outcome.model
                    memory.put(corrections.cases[0], model.config.context)
                    steps.append({"case": patient.name, "accepted": accepted, "reason": outcome.report.reason,
                                  "seconds": round(time.perf_counter() - started, 2),
                                  "memory_slices": sum(len(p) for p in pools),
                                  "dice": [score_set(current, s)["mean"] for s in eval_sets],
                                  "anchor": score_set(current, anchor)["mean"]})
                    yield clock.tick(f"{variant} seed {seed} {patient.name}")
            records.append({"variant": variant, "seed": seed, "steps": steps})
    return {"cases": [p.name for p in patients], "before": before, "anchor_before": lineage.root_anchor,
            "records": records}


def analyse_sequence(raw: dict[str, Any], config: SequenceConfig) -> dict[str, Any]:
    """Backward transfer per variant (cases x seeds) and paired tests between the variants."""
    cases = raw["cases"]
    transfer: dict[str, np.ndarray] = {}
    final: dict[str, np.ndarray] = {}
    summary: dict[str, Any] = {}
    seeds = seed_list(config.seed, config.seeds)
    for variant in config.variants:
        rows = {r["seed"]: r["steps"] for r in raw["records"] if r["variant"] == variant}
        # (earlier cases, seeds): Dice at the end minus right after the case was adapted.
        bt = np.array([[rows[s][-1]["dice"][j] - rows[s][j]["dice"][j] for s in seeds] for j in range(len(cases) - 1)])
        end = np.array([[rows[s][-1]["dice"][j] for s in seeds] for j in range(len(cases))])
        transfer[variant], final[variant] = bt, end
        summary[variant] = {
            "backward_transfer": round(float(bt.mean()), 5),
            "worst_case_backward_transfer": round(float(bt.mean(axis=1).min()), 5),
            "final_mean_dice": round(float(end.mean()), 5),
            "final_anchor": round(float(np.mean([rows[s][-1]["anchor"] for s in seeds])), 5),
            "accepted": int(sum(step["accepted"] for s in seeds for step in rows[s])),
            "adaptations": len(seeds) * len(cases),
            "seconds_per_adaptation": round(float(np.mean([st["seconds"] for s in seeds for st in rows[s]])), 2),
        }
    tests = []
    for a, b in (("memory", "source"), ("memory", "none"), ("source", "none")):
        if a in transfer and b in transfer:
            tests.append({"a": a, "b": b, "figure": "backward transfer",
                          **paired_test(transfer[a].mean(axis=1), transfer[b].mean(axis=1))})
            tests.append({"a": a, "b": b, "figure": "final Dice, every case",
                          **paired_test(final[a].mean(axis=1), final[b].mean(axis=1))})
    return {"summary": summary, "tests": tests, "before": raw["before"]}


def sequence_markdown(results: dict[str, Any]) -> str:
    from .common import format_p
    from .report import _header

    config, analysis = results["config"], results["analysis"]
    lines = _header(results, "Adapting case after case: does the memory keep the earlier cases?")
    lines += [
        f"Model: {results['model']['description']}. Cases, in order: {', '.join(results['cases'])} "
        f"(synthetic metastasis), {config['corrected']} corrected slices each, {config['eval_slices']} evaluation "
        f"slices each; {config['seeds']} repeat seed(s); method {config['method']} with the plugin's defaults; "
        "each adaptation starts from the version the guard kept.", "",
        "| variant | backward transfer (mean, worst case) | final Dice, all cases | final anchor | versions "
        "accepted | s / adaptation |", "|---|---|---|---|---|---|",
    ]
    for variant, row in analysis["summary"].items():
        lines.append(f"| {variant} | {row['backward_transfer']:+.4f} ({row['worst_case_backward_transfer']:+.4f}) | "
                     f"{row['final_mean_dice']:.4f} | {row['final_anchor']:.4f} | {row['accepted']} of "
                     f"{row['adaptations']} | {row['seconds_per_adaptation']} |")
    lines += ["", f"Before any adaptation the cases' mean Dice was {np.mean(analysis['before']):.4f}, the anchor "
              f"{results['anchor_before']:.4f}.", "",
              "Paired tests over the earlier cases (Wilcoxon, each case's mean over seeds):", "",
              "| a vs b | figure | mean a-b | a>b / b>a | p |", "|---|---|---|---|---|"]
    for t in analysis["tests"]:
        if t["mean_difference"] is None:
            continue
        lines.append(f"| {t['a']} vs {t['b']} | {t['figure']} | {t['mean_difference']:+.4f} | "
                     f"{t['a_better']} / {t['b_better']} | {format_p(t['p_value'])} |")
    return "\n".join(lines + _guard_lines(results["records"])) + "\n"


def _guard_lines(records: list[dict[str, Any]]) -> list[str]:
    """The guard's sentence for every adaptation (runs recorded before the sentence was kept have none)."""
    rows = [(r["variant"], r["seed"], step) for r in records for step in r["steps"] if step.get("reason")]
    if not rows:
        return []
    lines = ["", "The guard's decisions:", "", "| variant | seed | case | guard |", "|---|---|---|---|"]
    lines += [f"| {variant} | {seed} | {step['case']} | {step['reason']} |" for variant, seed, step in rows]
    return lines


def sequence_plots(results: dict[str, Any], out: Path) -> list[Path]:
    """sequence.png: each case's Dice through the sequence (mean over seeds), one panel per variant."""
    from .plots import _pyplot, _save

    plt = _pyplot()
    config, cases = results["config"], results["cases"]
    variants = list(config["variants"])
    figure, axes = plt.subplots(1, len(variants), figsize=(4.4 * len(variants), 3.6), sharey=True,
                                layout="constrained", squeeze=False)
    for ax, variant in zip(axes[0], variants):
        rows = [r["steps"] for r in results["records"] if r["variant"] == variant]
        dice = np.mean([[step["dice"] for step in steps] for steps in rows], axis=0)  # (steps, cases)
        for j, case in enumerate(cases):
            ax.plot(range(1, len(cases) + 1), dice[:, j], marker="o", ms=3, label=case)
            ax.axvline(j + 1, color="#dddddd", lw=0.5)
        ax.set_title(variant)
        ax.set_xlabel("cases adapted so far")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("mean region Dice, evaluation slices")
    axes[0][0].legend(fontsize=7)
    return [_save(figure, out / "sequence.png")]
