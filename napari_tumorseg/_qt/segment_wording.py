"""What the Segment panel says: the flip-averaging tip and status words, the label legend, a restored session."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..io.labels import CLASS_ABBREVIATIONS, CLASS_COLORS, CLASS_NAMES

if TYPE_CHECKING:
    from ..workflow.session import RestoredSession

MIRROR_TIP = ("Average the network over in-plane flips: fewer isolated false spots and a steadier tumour core, "
              "one more pass per flip. auto = all four on a GPU, none on the CPU "
              "(four passes take 11-21 s there on 2 cores).")


def flips_said(segmenter) -> tuple[str, str]:
    """What the status line says of flip averaging: the flips used, or, where auto chose one pass, a hint."""
    mirror = getattr(segmenter, "mirror", None)  # None: an imported model, run as it is
    if mirror not in (None, "none"):
        return f", averaged over flips ({mirror})", ""
    if mirror == "none" and getattr(segmenter, "mirror_choice", "") == "auto":
        return " in one pass", " Flip averaging ▸ all: fewer false spots, about four times the time."
    return "", ""


def keep_uncertain_tip() -> str:
    from ..inference.postprocess import uncertain_rule_text

    return (f"Keep the small tumour spots the network is unsure of ({uncertain_rule_text()}). Left out by default: "
            "on phantoms most are false (cortex near the vertex, cerebellar folia), but 1 or 2 of about 40 held-out "
            "metastases were among them (docs/results/uncertain-specks).")


def uncertain_said(result) -> str:
    """What the status line says of the small uncertain components the clean-up left out ("" for none)."""
    from ..inference.postprocess import uncertain_rule_text

    if not result.uncertain_removed:  # none, or an imported model's result (never cleaned)
        return ""
    return (f" Left out {result.uncertain_removed} small unsure spot(s) ({uncertain_rule_text()}); "
            "tick 'Keep small unsure spots' to see them.")


def legend_html() -> str:
    rows = []
    for value, (r, g, b, _) in CLASS_COLORS.items():
        swatch = f"rgb({int(r * 255)},{int(g * 255)},{int(b * 255)})"
        rows.append(f"<span style='color:{swatch}'>■</span> {value} {CLASS_ABBREVIATIONS[value]} — {CLASS_NAMES[value]}")
    return "<br>".join(rows)


def restored_text(restored: RestoredSession) -> str:
    """What the Segment panel says when a case's saved session came back (not a silent 0 %)."""
    steps = f", {restored.undo_steps} undo step(s)" if restored.undo_steps else ""
    if restored.prediction is None:
        return (f"Restored {len(restored.corrected)} corrected slice(s){steps}; the saved prediction could not "
                "be read: segment the volume again (your corrections are kept).")
    return (f"Restored the saved session: the prediction of {restored.model_id}, {len(restored.corrected)} "
            f"corrected slice(s){steps}. Segment volume runs the model again (corrections are kept).")
