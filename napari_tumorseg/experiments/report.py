"""results.md of both experiments: the command, the machine, the tables, the tests, the figures.

Every number is read from the results document the experiment wrote; the
text says how to read it and never claims what the numbers do not show.
"""

from __future__ import annotations

from typing import Any

from .common import format_mean_std, format_p
from .meta_tune import METHOD_LABELS

SET_NAMES = {"own": "own other slices", "held_out": "held-out patients", "anchor": "glioma anchor"}


def _header(results: dict[str, Any], title: str) -> list[str]:
    machine = results.get("machine", {})
    timings = results.get("timings", {})
    lines = [f"# {title}", "", "Command:", "", f"    {results['command']}", ""]
    # Results written before the machine had one description used "processor", "cores", "load_average_1min".
    cpu = machine.get("cpu", machine.get("processor", "?"))
    cores = machine.get("usable_cores", machine.get("cores", "?"))
    load = (machine.get("load_average") or [machine.get("load_average_1min")])[0]
    lines.append(f"Machine: {cpu}, {cores} cores, "
                 f"torch {machine.get('torch', '?')} with {machine.get('torch_threads', '?')} threads, "
                 f"device {machine.get('device', '?')}"
                 + (f", 1-min load average {load} at the start" if load is not None else "") + ".")
    if "wall_time_s" in timings:
        lines.append(f"Wall time: {timings['wall_time_s'] / 60:.1f} min.")
    reused = results.get("adaptations_from_journal", results.get("runs_from_journal"))
    if reused:
        lines.append(f"{reused} units came from the journal of earlier runs with the same settings (resumed or "
                     "run in parallel); the wall time above is this run's only.")
    lines.append("")
    return lines


def meta_tune_markdown(results: dict[str, Any]) -> str:
    """The meta-tune experiment as Markdown."""
    lines = _header(results, "Active meta-tune on synthetic metastasis (paper 000, table b)")
    lines += _meta_tune_setup(results)
    lines += _meta_tune_table_b(results)
    lines += _meta_tune_tests(results)
    lines += _meta_tune_against_k(results)
    lines += _meta_tune_gain(results)
    lines += ["", "## Figures", "", "![Dice against k](dice_vs_k.png)", "",
              "![Forgetting against gain](forgetting_vs_gain.png)", ""]
    return "\n".join(lines)


def _meta_tune_setup(results: dict[str, Any]) -> list[str]:
    """The model, the patients, the sets and how the ± read."""
    config, model = results["config"], results["model"]
    skipped = results["patients_skipped"]
    sweep = config["sweep_patients"] and len(config["ks"]) > 1
    return [
        f"Model: {model['description']}. Patients: {len(results['patients'])} synthetic metastasis cases "
        f"(seeds {results['patients'][0]['seed']}-{results['patients'][-1]['seed']}"
        + (f", {len(skipped)} skipped for too few tumour slices" if skipped else "")
        + f"), {config['eval_slices']} evaluation slices each; held-out: {len(results['held_out'])} "
        f"patients x {config['held_out_slices']} slices; anchor: {results['anchor']['slices']} glioma slices. "
        f"Repeat seeds: {config['seeds']} at k = {config['main_k']}"
        + (f"; the k sweep uses the first {config['sweep_patients']} patients" if sweep else "")
        + ".",
        "",
        _replay_sentence(config, results.get("adapt_configs", {})),
        "",
        "Dice is computed over the pooled voxels of each set; ± is the standard deviation over patients (of each "
        "patient's mean over seeds); [s: ...] is the standard deviation over seeds (of each seed's mean over "
        "patients).",
    ]


def _meta_tune_table_b(results: dict[str, Any]) -> list[str]:
    """Paper 000's table (b): enhancing-tumour Dice of each method at the main k."""
    lines = ["", f"## Table (b): enhancing-tumour Dice, k = {results['config']['main_k']} corrected slices per patient",
             "", "| method | ET, own other slices | ET, held-out patients | ET, glioma anchor | WT, own other slices "
             "| paper 000 (ET) |", "|---|---|---|---|---|---|"]
    for row in results["analysis"]["table_b"]:
        paper = row["paper_ET"]
        paper_text = "" if paper is None else (f"{paper['mean']:.2f}" + (f" ± {paper['std']:.2f}" if paper["std"]
                                                                        else " (on BraTS)"))
        seeds = row["own_ET"].get("std_seeds")
        lines.append(
            f"| {METHOD_LABELS[row['method']]} | {format_mean_std(row['own_ET'])}"
            + (f" [s: {seeds:.3f}]" if seeds is not None else "")
            + f" | {format_mean_std(row['held_out_ET'])} | {format_mean_std(row['anchor_ET'])} "
            f"| {format_mean_std(row['own_WT'])} | {paper_text} |")
    return lines


def _meta_tune_tests(results: dict[str, Any]) -> list[str]:
    """The paired tests: the main k in full, the primary measure at the other ks (results.json has all)."""
    k = str(results["config"]["main_k"])
    lines = ["", "## Paired tests (active against naive and passive)", "",
             "Two-sided Wilcoxon signed-rank test over patients (each patient's mean over seeds). "
             "`a>b` counts patients where the active variant scored higher. The primary test is k = "
             f"{k}, own other slices, ET; the others are many comparisons, read them with that in mind. With k = 1 "
             "there is one task, so active and passive order it the same way.", "",
             "| k | comparison | set | region | n | mean diff | a>b / b>a | p |", "|---|---|---|---|---|---|---|---|"]
    for test in results["analysis"]["tests"]:
        if str(test["k"]) != k and not (test["set"] == "own" and test["region"] == "ET"):
            continue
        diff = test["mean_difference"]
        mark = " **(primary)**" if test["primary"] else ""
        lines.append(f"| {test['k']} | {test['a']} vs {test['b']}{mark} | {SET_NAMES[test['set']]} | {test['region']} "
                     f"| {test['n']} | {'n/a' if diff is None else f'{diff:+.3f}'} | {test['a_better']} / "
                     f"{test['b_better']} | {format_p(test['p_value'])} |")
    return lines


def _meta_tune_against_k(results: dict[str, Any]) -> list[str]:
    """Dice of every method, set and region at every k."""
    config, summary = results["config"], results["analysis"]["summary"]
    lines = ["", "## Dice against k (mean ± std over patients)", "",
             "| method | set | region | " + " | ".join(f"k = {kk}" for kk in config["ks"]) + " |",
             "|---|---|---|" + "---|" * len(config["ks"])]
    for method in config["methods"]:
        for set_name in ("own", "held_out", "anchor"):
            for region in ("ET", "WT"):
                cells = [format_mean_std(summary[str(kk)][method][set_name][region]) for kk in config["ks"]]
                lines.append(f"| {method} | {SET_NAMES[set_name]} | {region} | " + " | ".join(cells) + " |")
    return lines


def _meta_tune_gain(results: dict[str, Any]) -> list[str]:
    """What each method gains on the new domain and loses on the old, at the main k, and what it costs."""
    config, analysis = results["config"], results["analysis"]
    k = str(config["main_k"])
    lines = ["", f"## Gain and forgetting at k = {k} (change against the baseline, mean ± std over patients)", "",
             "| method | ET gain, own | ET gain, held-out | ET change, anchor | WT change, anchor | steps | s / run |",
             "|---|---|---|---|---|---|---|"]
    for method in config["methods"][1:]:
        change = analysis["change"][k][method]
        cost = analysis["costs"][method]
        seconds = results.get("timings", {}).get("mean_seconds", {}).get(method)
        lines.append(f"| {method} | {format_mean_std(change['own']['ET'])} "
                     f"| {format_mean_std(change['held_out']['ET'])} "
                     f"| {format_mean_std(change['anchor']['ET'])} | {format_mean_std(change['anchor']['WT'])} "
                     f"| {cost['steps']} | {'n/a' if seconds is None else f'{seconds:.1f}'} |")
    return lines


def lifelong_markdown(results: dict[str, Any]) -> str:
    """The lifelong experiment as Markdown."""
    config, analysis = results["config"], results["analysis"]
    region = analysis["primary_region"]
    lines = _header(results, "Lifelong training on alternating modalities (paper 004)")
    data = results["data"]
    lines += [
        f"Stream: {config['train_patients']} synthetic glioma patients (half T2-only, half FLAIR-only) on a "
        f"{'x'.join(map(str, config['shape']))} grid; test: {len(data['test']['t2'])} T2-only and "
        f"{len(data['test']['flair'])} FLAIR-only patients ({data['test_slices']['t2']} and "
        f"{data['test_slices']['flair']} slices). Every run: {config['train_patients'] * config['steps_per_patient']} "
        f"steps of {config['batch_size']} crops of {config['crop']}x{config['crop']}; large batches = "
        f"{config['large_batch']} patients, small = {config['small_batch']}; networks from scratch "
        f"(base width {config['base_width']}, depth {config['depth']}); {config['seeds']} seeds. "
        + ("The networks are told which modality is present (availability planes, as the segmenter is)."
           if config.get("availability", True) else
           "The networks are not told which modality is present (constant availability planes)."),
        "",
        f"Primary region {region} (T2 and FLAIR show the oedema and the whole tumour; the enhancing tumour needs T1c). "
        "± is the standard deviation over seeds. Backward transfer < 0 and drop on switch > 0 mean forgetting.",
        "",
        f"## {region} Dice and forgetting",
        "",
        "| setting | network | final T2-only | final FLAIR-only | final average | backward transfer "
        "| drop on switch | curve average |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for setting in config["settings"]:
        for arch in config["archs"]:
            s = analysis["summary"][setting][arch][region]
            cells = [_seed_cell(s[m]) for m in ("final_t2", "final_flair", "final_average", "backward_transfer",
                                                "drop_on_switch", "curve_average")]
            name = "static U-Net" if arch == "unet" else "Dy-CNN"
            lines.append(f"| {setting} | {name} | " + " | ".join(cells) + " |")
    if analysis["comparisons"]:
        lines += ["", f"## Dy-CNN against static U-Net, paired over seeds ({region})", "",
                  "Two-sided Wilcoxon signed-rank over seeds: with n seeds the smallest possible p is 2 / 2^n "
                  "(0.25 for 3), so these tests cannot show significance; the per-seed differences are the evidence.",
                  "", "| setting | measure | n | mean diff (Dy-CNN - U-Net) | Dy-CNN better / worse | p |",
                  "|---|---|---|---|---|---|"]
        for c in analysis["comparisons"]:
            diff = c["mean_difference"]
            lines.append(f"| {c['setting']} | {c['measure']} | {c['n']} | {'n/a' if diff is None else f'{diff:+.3f}'} "
                         f"| {c['a_better']} / {c['b_better']} | {format_p(c['p_value'])} |")
    lines += ["", "## Other regions (final average, mean ± std over seeds)", "",
              "| setting | network | WT | TC | ET | mean |", "|---|---|---|---|---|---|"]
    for setting in config["settings"]:
        for arch in config["archs"]:
            cells = [_seed_cell(analysis["summary"][setting][arch][r]["final_average"])
                     for r in ("WT", "TC", "ET", "mean")]
            lines.append(f"| {setting} | {arch} | " + " | ".join(cells) + " |")
    lines += ["", "## Figures", ""]
    if "unet" in config["archs"]:
        lines += ["![Figure 1: static U-Net](figure1_static_unet.png)", ""]
    if "dycnn" in config["archs"]:
        lines += ["![Figure 1 for the Dy-CNN](figure1_dycnn.png)", ""]
    lines += ["![Figure 3: U-Net against Dy-CNN](figure3_unet_vs_dycnn.png)", ""]
    return "\n".join(lines)


def _seed_cell(stats: dict[str, Any]) -> str:
    if stats["mean"] is None:
        return "n/a"
    return f"{stats['mean']:.3f}" if stats["std"] is None else f"{stats['mean']:.3f} ± {stats['std']:.3f}"


def _replay_sentence(config: dict[str, Any], adapt_configs: dict[str, Any]) -> str:
    """Whether the methods replayed source slices (the plugin's default) or saw the corrections alone."""
    if not config.get("replay", True):
        return "Replay: off; every method adapts on the corrections alone, as the paper states them."
    counts = sorted({c.get("replay", 0) for c in adapt_configs.values()})
    per_step = sorted({c.get("replay_per_step", 0) for c in adapt_configs.values()})
    return (f"Replay: on, as in the plugin: {', '.join(map(str, counts))} glioma source slices (not the anchor "
            f"slices), {', '.join(map(str, per_step))} mixed into every step.")
