"""Both experiments end to end at tiny settings: the files, their structure, determinism, the figures.

Each experiment runs twice with the same settings (the second run reads the
prepared cases from the cache the first one wrote) and must produce the same
results, clock fields aside. Tiny grids and networks keep this to seconds.
"""

from __future__ import annotations

import json

import pytest
import torch

from napari_tumorseg.experiments.api import lifelong_experiment, meta_tune_experiment
from napari_tumorseg.experiments.common import without_timings
from napari_tumorseg.jobs import Cancelled, drive
from napari_tumorseg.experiments.lifelong import LifelongConfig
from napari_tumorseg.experiments.meta_tune import METHOD_SPECS, SETS, MetaTuneConfig
from napari_tumorseg.models import build_model

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TINY_SHAPE = (32, 48, 48)
TINY_STEPS = {m: {"steps": 1, "crop": 16} for m in ("naive", "passive", "active")}


def assert_png(path):
    import matplotlib.image

    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE), path
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert image[..., :3].std() > 0.01  # something was drawn


def meta_tune_run(out, cache, cancel=None, reports=None):
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = build_model("unet", base_width=4, depth=2)  # untrained: the structure is what is tested
    config = MetaTuneConfig.quick(patients=2, held_out=1, eval_slices=2, held_out_slices=2, ks=(1, 2), main_k=2,
                                  seeds=2, shape=TINY_SHAPE, adapt_overrides=TINY_STEPS, anchor_per_case=1,
                                  methods=tuple(METHOD_SPECS))
    generator = meta_tune_experiment(model, config, out, model_description="tiny untrained U-Net",
                                     command="test", cache_dir=cache, anchor_cache=cache, cancel=cancel)
    reports = [] if reports is None else reports
    results = drive(generator, reports.append)
    return config, results, reports


@pytest.fixture(scope="module")
def meta_tune_twice(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    first = meta_tune_run(tmp_path_factory.mktemp("mt1"), cache)
    out2 = tmp_path_factory.mktemp("mt2")
    second = meta_tune_run(out2, cache)
    return first, second, out2, cache


def test_meta_tune_writes_results_and_figures(meta_tune_twice):
    _, (config, results, reports), out, _ = meta_tune_twice
    assert {p.name for p in out.iterdir()} >= {"results.json", "results.md", "dice_vs_k.png", "forgetting_vs_gain.png"}
    for name in ("dice_vs_k.png", "forgetting_vs_gain.png"):
        assert_png(out / name)
    document = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert document == json.loads(json.dumps(document))  # strictly valid JSON (no NaN)
    assert document["experiment"] == "meta-tune"
    assert reports[-1].done == reports[-1].total == config.units()
    # One baseline per patient, then every (k, patient, seed, method).
    methods = [m for m in config.methods if m != "baseline"]
    expected = len(document["patients"]) * (1 + len(config.ks) * config.seeds * len(methods))
    assert len(document["records"]) == expected
    for record in document["records"]:
        for set_name in SETS:
            assert set(record[set_name]) == {"WT", "TC", "ET", "mean"}
            assert all(0.0 <= v <= 1.0 for v in record[set_name].values())
    summary = document["analysis"]["summary"]
    assert set(summary) == {str(k) for k in config.ks}
    stats = summary["2"]["active"]["own"]["ET"]
    assert set(stats) == {"mean", "std_patients", "std_seeds", "n_patients", "n_seeds"}
    assert (stats["n_patients"], stats["n_seeds"]) == (2, 2)
    tests = document["analysis"]["tests"]
    pairs = {(t["a"], t["b"]) for t in tests}
    assert {("active", "naive"), ("active", "passive"), ("active-fo", "naive"), ("active-fo", "passive")} <= pairs
    assert any(t["primary"] for t in tests)
    assert [row["method"] for row in document["analysis"]["table_b"]] == list(config.methods)
    markdown = (out / "results.md").read_text(encoding="utf-8")
    assert "Table (b)" in markdown and "Wilcoxon" in markdown and "![Dice against k](dice_vs_k.png)" in markdown


def test_meta_tune_corrections_are_nested_and_disjoint_from_evaluation(meta_tune_twice):
    _, (_, results, _), _, _ = meta_tune_twice
    for patient in results["patients"]:
        assert not set(patient["eval_slices"]) & set(patient["correction_order"])
        assert len(patient["correction_order"]) == 2  # max k, first k used for each k
    held = {p["seed"] for p in results["held_out"]}
    assert not held & {p["seed"] for p in results["patients"]}


def test_meta_tune_is_deterministic_for_a_seed(meta_tune_twice):
    (_, first, _), (_, second, _), _, _ = meta_tune_twice
    assert without_timings(first) == without_timings(second)


def test_meta_tune_resumes_after_a_cancel_with_the_same_results(meta_tune_twice, tmp_path):
    from napari_tumorseg.experiments.api import JOURNAL_NAME

    (_, uninterrupted, _), _, _, cache = meta_tune_twice
    reports = []
    with pytest.raises(Cancelled):
        meta_tune_run(tmp_path, cache, cancel=lambda: len(reports) >= 20, reports=reports)
    journal = tmp_path / JOURNAL_NAME
    finished = len(journal.read_text(encoding="utf-8").splitlines()) - 1  # minus the header
    assert finished > 0 and not (tmp_path / "results.json").exists()
    _, resumed, _ = meta_tune_run(tmp_path, cache)
    assert without_timings(resumed) == without_timings(uninterrupted)
    assert not journal.exists()  # discarded once the results are written


def lifelong_run(out, cache):
    torch.set_num_threads(1)
    config = LifelongConfig.quick(seeds=2, steps_per_patient=1, batch_size=2)
    reports = []
    results = drive(lifelong_experiment(config, out, command="test", cache_dir=cache), reports.append)
    return config, results, reports


@pytest.fixture(scope="module")
def lifelong_twice(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    first = lifelong_run(tmp_path_factory.mktemp("ll1"), cache)
    out2 = tmp_path_factory.mktemp("ll2")
    second = lifelong_run(out2, cache)
    return first, second, out2


def test_lifelong_writes_results_and_figures(lifelong_twice):
    _, (config, results, reports), out = lifelong_twice
    for name in ("figure1_static_unet.png", "figure1_dycnn.png", "figure3_unet_vs_dycnn.png"):
        assert_png(out / name)
    document = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert reports[-1].done == reports[-1].total == config.units()
    assert len(document["runs"]) == len(config.archs) * len(config.settings) * config.seeds
    for run in document["runs"]:
        batches = config.train_patients // config.batch_patients(run["setting"])
        assert len(run["curve"]) == batches
        assert len(run["losses"]) == config.total_steps  # the same budget in every setting and network
        modalities = [b["modality"] for b in run["curve"]]
        if run["setting"] == "joint":
            assert set(modalities) == {"mixed"}
        else:
            assert modalities == ["t2", "flair"] * (batches // 2)  # alternating, T2 first
        assert {"t2", "flair"} <= set(run["curve"][0])
    summary = document["analysis"]["summary"]
    assert set(summary["small"]["dycnn"]["WT"]) >= {"final_average", "backward_transfer", "drop_on_switch"}
    assert summary["joint"]["unet"]["WT"]["backward_transfer"]["mean"] is None
    assert "Backward transfer" in (out / "results.md").read_text(encoding="utf-8")


def test_lifelong_is_deterministic_for_a_seed(lifelong_twice):
    (_, first, _), (_, second, _), _ = lifelong_twice
    assert without_timings(first) == without_timings(second)


def test_render_redraws_markdown_and_figures_from_results_json(lifelong_twice):
    from napari_tumorseg.cli import main

    _, _, out = lifelong_twice
    markdown = (out / "results.md").read_text(encoding="utf-8")
    (out / "results.md").unlink()
    (out / "figure3_unet_vs_dycnn.png").unlink()
    assert main(["experiment", "render", str(out)]) == 0
    assert (out / "results.md").read_text(encoding="utf-8") == markdown
    assert_png(out / "figure3_unet_vs_dycnn.png")
    assert main(["experiment", "render", str(out / "nowhere")]) == 2


def test_meta_tune_replays_source_slices_like_the_plugin(meta_tune_twice, tmp_path):
    # The default runs each method as "Adapt model" does: with replay of glioma source slices.
    (config, results, _), _, out_with, cache = meta_tune_twice
    assert config.replay and all(c["replay"] > 0 for c in results["adapt_configs"].values())
    assert "Replay: on" in (out_with / "results.md").read_text(encoding="utf-8")
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = build_model("unet", base_width=4, depth=2)
    plain = MetaTuneConfig.quick(patients=2, held_out=1, eval_slices=2, held_out_slices=2, ks=(2,), main_k=2,
                                 seeds=1, shape=TINY_SHAPE, adapt_overrides=TINY_STEPS, anchor_per_case=1,
                                 methods=("naive",), replay=False)
    without = drive(meta_tune_experiment(model, plain, tmp_path, model_description="tiny", command="test",
                                         cache_dir=cache, anchor_cache=cache), lambda _: None)
    assert without["adapt_configs"]["naive"]["replay"] == 0
    assert "Replay: off" in (tmp_path / "results.md").read_text(encoding="utf-8")

    def naive_losses(document):
        return [r["losses"] for r in document["records"] if r["method"] == "naive" and r["k"] == 2 and r["seed"] == 0]

    # Same patients, seed and step: the loss with replay also counts the source slices.
    assert len(naive_losses(without)) == 2 and naive_losses(without) != naive_losses(results)
