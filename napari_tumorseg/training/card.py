"""Model cards: what a trained model is, how it was made, how well it does, and what it is not for.

A card is JSON, written beside the checkpoint (``glioma-unet.card.json`` for
``glioma-unet.safetensors``) and copied into the checkpoint's metadata
(``metadata["card"]``, with the evaluation summaries also as
``metadata["metrics"]`` and the card's own ``"metrics"``, where the model
registry looks). ``tumorseg train``
writes the card; ``tumorseg evaluate --record`` adds each evaluation to it.
Every write re-renders ``MODEL_CARD.md`` in the folder from all the cards
there, so the human-readable page never disagrees with the JSON.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CARD_FORMAT = "napari-tumorseg-model-card/1"
CARD_SUFFIX = ".card.json"
MARKDOWN_NAME = "MODEL_CARD.md"
NOT_CLINICAL = (
    "Trained on synthetic data only (procedural phantoms, not patient images). "
    "Not a medical device; not for clinical use, diagnosis or treatment decisions."
)
REQUIRED_FIELDS = ("format", "name", "intended_use", "architecture", "preprocessing", "training", "evaluation")


def card_path_for(model_path: str | os.PathLike[str]) -> Path:
    """``glioma-unet.safetensors`` -> ``glioma-unet.card.json`` in the same folder."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.stem + CARD_SUFFIX)


def new_card(name: str, architecture: dict[str, Any], preprocessing: dict[str, Any], training: dict[str, Any]) -> dict[str, Any]:
    """A card with no evaluation yet.

    Args:
        name: the model's id (the checkpoint's file stem).
        architecture: the model config, parameter count and storage precision.
        preprocessing: the preprocessing config.
        training: data, hyper-parameters, command, wall time, hardware.
    """
    return {
        "format": CARD_FORMAT,
        "name": name,
        "intended_use": NOT_CLINICAL,
        "architecture": architecture,
        "preprocessing": preprocessing,
        "training": training,
        "evaluation": {},
    }


def read_card(model_path: str | os.PathLike[str]) -> dict[str, Any]:
    """The card beside a checkpoint, else the one in its metadata, else an empty dict."""
    path = card_path_for(model_path)
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    from ..models.checkpoint import read_checkpoint_info

    card = read_checkpoint_info(model_path).metadata.get("card")
    return card if isinstance(card, dict) else {}


def metrics_of(card: dict[str, Any]) -> dict[str, Any]:
    """Compact metrics for the registry: per evaluation set, mean and std of each region's Dice and HD95."""
    out: dict[str, Any] = {}
    for key, evaluation in card.get("evaluation", {}).items():
        summary = evaluation.get("summary", {})
        out[key] = {
            region: {metric: {"mean": v["mean"], "std": v["std"]} for metric, v in scores.items()}
            for region, scores in summary.items()
        }
    return out


def _is_half(model_path: Path) -> bool:
    from safetensors import safe_open

    with safe_open(str(model_path), framework="pt") as handle:
        for name in handle.keys():
            tensor = handle.get_slice(name)
            return tensor.get_dtype() in ("F16", "BF16")
    return False


def write_card(model_path: str | os.PathLike[str], card: dict[str, Any]) -> Path:
    """Write the card beside the checkpoint, into its metadata, and re-render the folder's MODEL_CARD.md."""
    from ..io.atomic import atomic_write_json
    from ..models.checkpoint import load_checkpoint, save_checkpoint

    model_path = Path(model_path)
    loaded = load_checkpoint(model_path)
    card = {**card, "metrics": metrics_of(card)}  # the registry lists these (card["metrics"])
    metadata = dict(loaded.info.metadata)
    metadata["card"] = card
    metadata["metrics"] = card["metrics"]
    # Rewriting keeps the stored precision: float16 -> float32 -> float16 is exact.
    save_checkpoint(model_path, loaded.model, config=loaded.config, preprocessing=loaded.preprocessing,
                    metadata=metadata, half_precision=_is_half(model_path))
    path = card_path_for(model_path)
    atomic_write_json(path, card, overwrite=True, sort_keys=True)
    render_folder(model_path.parent)
    return path


def record_evaluation(model_path: str | os.PathLike[str], key: str, evaluation: dict[str, Any]) -> Path:
    """Add (or replace) one evaluation set's results in a model's card.

    Args:
        model_path: the checkpoint.
        key: the set's name in the card, e.g. ``synthetic-glioma`` or ``synthetic-glioma-t2+flair``.
        evaluation: what was evaluated (set, seeds, missing modalities, command, hardware) and the summary.
    """
    with _folder_lock(Path(model_path).parent):  # evaluations of one model may run side by side
        card = read_card(model_path)
        if not card:
            raise ValueError(f"{model_path}: has no model card to record the evaluation in")
        card.setdefault("evaluation", {})[key] = evaluation
        return write_card(model_path, card)


@contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """An exclusive lock for read-modify-write of a folder's cards (POSIX; no lock elsewhere).

    The lock file lives in the temporary folder, not beside the models, so a
    shipped folder never gains stray files.
    """
    try:
        import fcntl
    except ImportError:  # Windows: evaluations there run one at a time
        yield
        return
    digest = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:16]
    with open(Path(tempfile.gettempdir()) / f"tumorseg-cards-{digest}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _fmt(stats: dict[str, Any] | None, digits: int = 3) -> str:
    if not stats or stats.get("mean") is None:
        return "-"
    return f"{stats['mean']:.{digits}f} ± {stats['std']:.{digits}f}"


def _scored_cases(evaluation: dict[str, Any]) -> str:
    """How many cases the set has, and how many of them a reference scores (a real folder may mix both)."""
    cases = evaluation.get("cases")
    scored = evaluation.get("summary", {}).get("WT", {}).get("dice", {}).get("n")
    return str(cases) if scored in (None, cases) else f"{cases} ({scored} with reference)"


def _case_line(case: dict[str, Any]) -> str:
    """One real case in words: Dice and volumes against its reference, or what was marked without one."""
    predicted = case.get("volumes_ml", {}).get("predicted", {})
    if not case.get("reference"):
        return (f"  - {case.get('case')}: no reference; marked WT {predicted.get('WT', 0):.1f} ml "
                f"(NCR {predicted.get('NCR', 0):.1f}, ED {predicted.get('ED', 0):.1f}, ET {predicted.get('ET', 0):.1f}) "
                f"in {case.get('components', {}).get('WT', 0)} components")
    parts = []
    for region in ("WT", "TC", "ET"):
        scored = case.get(region, {})
        if scored.get("status") == "reference_empty":
            parts.append(f"{region} absent from the reference, {scored.get('predicted_ml', 0):.1f} ml marked")
        elif scored.get("dice") is not None:
            parts.append(f"{region} {scored['dice']:.3f} ({scored.get('predicted_ml', 0):.1f} ml marked, "
                         f"{scored.get('reference_ml', 0):.1f} ml in the reference)")
    return f"  - {case.get('case')}: " + "; ".join(parts)


def _evaluation_lines(evaluations: dict[str, Any]) -> list[str]:
    lines = ["| set | cases | WT Dice | TC Dice | ET Dice | WT HD95 (mm) | TC HD95 (mm) | ET HD95 (mm) |",
             "|---|---|---|---|---|---|---|---|"]
    for key, evaluation in sorted(evaluations.items()):
        summary = evaluation.get("summary", {})
        dice = [_fmt(summary.get(r, {}).get("dice")) for r in ("WT", "TC", "ET")]
        hd = [_fmt(summary.get(r, {}).get("hd95"), 1) for r in ("WT", "TC", "ET")]
        lines.append(f"| {key} | {_scored_cases(evaluation)} | " + " | ".join(dice + hd) + " |")
    lines.append("")
    for key, evaluation in sorted(evaluations.items()):
        lines.append(f"- `{key}`: {evaluation.get('description')}; `{evaluation.get('command')}`")
        per_case = evaluation.get("per_case", [])
        if any(not case.get("reference", True) for case in per_case):  # a real folder: each case in words
            lines += [_case_line(case) for case in per_case]
    return lines + [""]


def _lineage_lines(training: dict[str, Any]) -> list[str]:
    """Where a fine-tuned network started and what taught it besides the truth."""
    lines = []
    start = training.get("initial_weights")
    if start:
        lines.append(f"- Started from: `{start['path']}` (SHA-256 {start['sha256'][:12]}…), not from random weights.")
    teacher = training.get("teacher")
    if teacher:
        lines.append(f"- Teacher: `{teacher['path']}` (SHA-256 {teacher['sha256'][:12]}…), its softmax averaged over "
                     f"flips '{teacher['flips']}', weight {teacher['weight']}.")
    return lines


def render_markdown(cards: list[dict[str, Any]]) -> str:
    """One page describing every card, metrics as mean ± std."""
    lines = ["# Shipped models", "", f"**{NOT_CLINICAL}**", "",
             "Generated from the `*.card.json` files in this folder by `napari_tumorseg.training.card`; "
             "every number comes from the commands quoted.", "",
             "The figures score the masks the plugin shows: tumour components under 20 mm³ removed, and those under "
             "1 ml whose mean tumour probability is under 0.8 (`napari_tumorseg/inference/postprocess.py`; sets named "
             "`…-keep-uncertain` keep the latter).", ""]
    for card in cards:
        arch, training = card.get("architecture", {}), card.get("training", {})
        data, hardware = training.get("data", {}), training.get("hardware", {})
        lines += [f"## {card.get('name')}", "",
                  f"- Architecture: `{arch.get('arch')}`, base width {arch.get('base_width')}, depth {arch.get('depth')}, "
                  f"context {arch.get('context')}, {arch.get('norm')} norm"
                  + (f", K={arch.get('num_kernels')} kernels, temperature {arch.get('temperature')}"
                     if arch.get("arch") == "dycnn" else "")
                  + f"; {arch.get('parameters')} parameters stored as {arch.get('storage')}.",
                  f"- Training data: {data.get('description')}; {data.get('cases')} cases, {data.get('slices')} slices "
                  f"(generator version {data.get('generator_version')}).",
                  f"- Command: `{training.get('command')}`",
                  *[f"- Resumed with: `{command}`" for command in training.get("resumed_with", [])],
                  *([f"- Note: {training['note']}"] if training.get("note") else []),
                  *_lineage_lines(training),
                  *([f"- Trained: finished {training['finished']} (UTC)."] if training.get("finished") else []),
                  f"- Steps: {training.get('steps')}, batch {training.get('hyperparameters', {}).get('batch_size')}; "
                  f"wall time {training.get('wall_time_s', 0) / 60:.1f} min on {hardware.get('cpu')} "
                  f"({hardware.get('device')}, {hardware.get('torch_threads')} torch threads, shared machine).", ""]
        if card.get("evaluation"):
            lines += _evaluation_lines(card["evaluation"])
    return "\n".join(lines)


def render_folder(folder: str | os.PathLike[str]) -> Path:
    """Re-render ``MODEL_CARD.md`` from every ``*.card.json`` in ``folder``."""
    from ..io.atomic import atomic_write_text

    folder = Path(folder)
    cards = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob(f"*{CARD_SUFFIX}"))]
    path = folder / MARKDOWN_NAME
    atomic_write_text(path, render_markdown(cards), overwrite=True)
    return path
