"""``tumorseg train`` and ``tumorseg evaluate`` end to end; the shipped models and their cards."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from napari_tumorseg.cli import main

TINY = "40,64,64"  # the conftest's SMALL_SHAPE: its anatomy is resampled once per session
REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "resources" / "models"
MAX_BYTES = 20 * 1024 * 1024


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A tiny Dy-CNN trained for a few steps by the CLI (float16 storage), with its card."""
    folder = tmp_path_factory.mktemp("train")
    out = folder / "tiny.safetensors"
    status = main([
        "train", "--arch", "dycnn", "--out", str(out), "--synthetic-seeds", "0:2", "--val-seeds", "100:101",
        "--shape", TINY, "--steps", "4", "--batch", "2", "--crop", "32", "--base-width", "4", "--depth", "2",
        "--epoch-steps", "2", "--tumour-slices", "3", "--empty-slices", "1", "--threads", "1", "--workers", "1",
        "--cache-dir", str(folder / "cache"), "--float16", "--device", "cpu",
    ])
    assert status == 0
    return out


def test_train_cli_writes_a_loadable_checkpoint_card_and_state(tiny_model, capsys):
    from napari_tumorseg.models.checkpoint import load_checkpoint
    from napari_tumorseg.training.card import REQUIRED_FIELDS, card_path_for
    from napari_tumorseg.training.state import load_training_state, state_path_for

    loaded = load_checkpoint(tiny_model)
    assert loaded.config.arch == "dycnn" and loaded.config.base_width == 4 and loaded.config.temperature == 1.0
    card = json.loads(card_path_for(tiny_model).read_text(encoding="utf-8"))
    assert set(REQUIRED_FIELDS) <= set(card)
    assert "not for clinical use" in card["intended_use"]
    training = card["training"]
    assert training["command"].startswith("tumorseg train --arch dycnn") and "--synthetic-seeds 0:2" in training["command"]
    assert training["data"]["cases"] == 2 and training["data"]["generator_version"]
    assert training["steps"] == 4 and training["wall_time_s"] > 0 and training["hardware"]["device"] == "cpu"
    assert card["architecture"]["storage"] == "float16"
    assert loaded.info.metadata["card"]["name"] == "tiny"
    assert load_training_state(state_path_for(tiny_model)).step == 4
    assert (tiny_model.parent / "MODEL_CARD.md").read_text(encoding="utf-8").count("not for clinical use") >= 1


def test_train_cli_resume_of_a_finished_run_keeps_its_step(tiny_model, tmp_path):
    from napari_tumorseg.training.state import load_training_state, state_path_for

    out = tmp_path / "again.safetensors"
    state = state_path_for(tiny_model)
    assert main(["train", "--resume", str(state), "--out", str(out), "--steps", "5", "--threads", "1",
                 "--device", "cpu", "--workers", "1"]) == 0
    assert load_training_state(state_path_for(out)).step == 5
    card = json.loads(out.with_name("again.card.json").read_text(encoding="utf-8"))
    assert card["training"]["steps"] == 5 and len(card["training"]["resumed_with"]) == 1


def test_train_cli_writes_the_weight_average_and_on_request_the_last_weights(tiny_model, tmp_path):
    import torch

    from napari_tumorseg.models.checkpoint import load_checkpoint
    from napari_tumorseg.training.state import load_training_state, state_path_for

    out, last = tmp_path / "avg.safetensors", tmp_path / "last.safetensors"
    assert main(["train", "--arch", "unet", "--out", str(out), "--last-out", str(last), "--ema-decay", "0.5",
                 "--smoothing", "0.5",
                 "--synthetic-seeds", "0:2", "--val-seeds", "100:101", "--shape", TINY, "--steps", "3", "--batch", "2",
                 "--crop", "32", "--base-width", "4", "--depth", "2", "--epoch-steps", "3", "--tumour-slices", "3",
                 "--empty-slices", "1", "--threads", "1", "--workers", "1", "--cache-dir", str(tiny_model.parent /
                 "cache"), "--device", "cpu"]) == 0
    cards = {p.stem: json.loads(p.with_name(p.stem + ".card.json").read_text(encoding="utf-8"))["training"]
             for p in (out, last)}
    assert cards["avg"]["weights"].startswith("exponential moving average") and "--ema-decay 0.5" in cards["avg"]["command"]
    assert cards["last"]["weights"].startswith("the last step's")
    state = load_training_state(state_path_for(out))
    assert state.info["args"]["smoothing"] == 0.5  # a resumed run keeps smoothing its crops
    history = state.info["history"][-1]
    assert cards["avg"]["final_validation_dice"] == history["validation_average"]
    assert cards["last"]["final_validation_dice"] == history["validation"]
    averaged, trained = load_checkpoint(out).model.state_dict(), load_checkpoint(last).model.state_dict()
    assert not all(torch.equal(averaged[k], trained[k]) for k in averaged)
    assert main(["train", "--arch", "unet", "--out", str(out), "--last-out", str(last)]) == 2  # no average to compare


def test_train_cli_on_a_folder_of_brats_cases(small_glioma_folder, tmp_path):
    from napari_tumorseg.io import write_case
    from napari_tumorseg.models.checkpoint import load_checkpoint
    from napari_tumorseg.synth.generate import make_case

    folder = tmp_path / "brats"
    write_case(make_case("glioma", 1, shape=(40, 64, 64)), folder / "case_b", layout="brats2023")
    (folder / "case_a").symlink_to(small_glioma_folder, target_is_directory=True)
    out = tmp_path / "real.safetensors"
    assert main(["train", "--arch", "unet", "--out", str(out), "--data", str(folder), "--val-cases", "1",
                 "--steps", "2", "--batch", "2", "--crop", "32", "--base-width", "4", "--depth", "2",
                 "--threads", "1", "--device", "cpu"]) == 0
    card = json.loads(out.with_name("real.card.json").read_text(encoding="utf-8"))
    assert card["training"]["data"]["source"] == "folder" and card["training"]["data"]["cases"] == 1
    assert card["training"]["data"]["validation"] == ["case_b"]
    assert load_checkpoint(out).config.arch == "unet"


def test_train_cli_rejects_bad_input(tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path / "m.safetensors")]) == 2
    assert "--arch" in capsys.readouterr().err
    assert main(["train", "--arch", "unet", "--out", str(tmp_path / "m.pt")]) == 2
    assert main(["train", "--arch", "unet", "--out", str(tmp_path / "m.safetensors"), "--data", str(tmp_path / "none")]) == 2


def test_evaluate_cli_prints_cases_and_mean_std_and_records_in_the_card(tiny_model, tmp_path, capsys):
    from napari_tumorseg.training.card import card_path_for

    out = tmp_path / "scores.json"
    status = main(["evaluate", "--synthetic", "glioma", "--seeds", "10000:10002", "--shape", TINY, "--model",
                   str(tiny_model), "--missing", "t1,T1ce", "--json", str(out), "--record", "--threads", "1",
                   "--device", "cpu"])
    assert status == 0
    printed = capsys.readouterr().out
    assert "glioma_10000" in printed and "glioma_10001" in printed and "only flair+t2" in printed
    assert printed.count("±") >= 6  # Dice and HD95 for three regions
    document = json.loads(out.read_text(encoding="utf-8"))
    summary = document["models"]["tiny"]["summary"]
    assert summary["ET"]["dice"]["n"] == 2 and len(document["models"]["tiny"]["per_case"]) == 2
    per_case = [c["WT"]["dice"] for c in document["models"]["tiny"]["per_case"]]
    assert summary["WT"]["dice"]["mean"] == pytest.approx(np.mean(per_case))
    card = json.loads(card_path_for(tiny_model).read_text(encoding="utf-8"))
    recorded = card["evaluation"]["synthetic-glioma-only-flair+t2"]
    assert recorded["summary"]["WT"]["dice"]["mean"] == pytest.approx(summary["WT"]["dice"]["mean"])
    assert recorded["command"].startswith("tumorseg evaluate --synthetic glioma --seeds 10000:10002")


def test_evaluate_cli_scores_the_generator_version_asked_and_says_so(tiny_model, tmp_path, capsys):
    outs = {}
    for version in ("2", "3"):
        outs[version] = tmp_path / f"v{version}.json"
        assert main(["evaluate", "--synthetic", "glioma", "--seeds", "10001:10002", "--shape", TINY, "--model",
                     str(tiny_model), "--generator-version", version, "--json", str(outs[version]),
                     "--threads", "1", "--device", "cpu"]) == 0
        assert f"generator version {version}" in capsys.readouterr().out
    documents = {v: json.loads(path.read_text(encoding="utf-8")) for v, path in outs.items()}
    assert "--generator-version 3" in documents["3"]["command"]
    volumes = [json.dumps(documents[v]["models"]["tiny"]["per_case"]) for v in ("2", "3")]
    assert volumes[0] != volumes[1], "the same cases were scored"


def test_evaluate_cli_records_flip_averaged_figures_apart_from_one_pass(tiny_model, tmp_path, capsys):
    from napari_tumorseg.training.card import card_path_for

    common = ["evaluate", "--synthetic", "glioma", "--seeds", "10001:10002", "--shape", TINY, "--model",
              str(tiny_model), "--record", "--threads", "1", "--device", "cpu"]
    assert main(common) == 0
    assert main([*common, "--mirror", "all", "--json", str(tmp_path / "all.json")]) == 0
    assert "softmax averaged over flips (all)" in capsys.readouterr().out
    card = json.loads(card_path_for(tiny_model).read_text(encoding="utf-8"))["evaluation"]
    one_pass, averaged = card["synthetic-glioma"], card["synthetic-glioma-mirror-all"]
    assert averaged["command"].endswith("--mirror all") and "--mirror" not in one_pass["command"]
    assert averaged["per_case"] != one_pass["per_case"]


def test_evaluate_cli_records_figures_with_uncertain_components_kept_apart(tiny_model, tmp_path, capsys):
    from napari_tumorseg.training.card import card_path_for

    common = ["evaluate", "--synthetic", "glioma", "--seeds", "10001:10002", "--shape", TINY, "--model",
              str(tiny_model), "--record", "--threads", "1", "--device", "cpu"]
    assert main(common) == 0
    assert main([*common, "--keep-uncertain"]) == 0
    assert "small uncertain components kept" in capsys.readouterr().out
    card = json.loads(card_path_for(tiny_model).read_text(encoding="utf-8"))["evaluation"]
    kept, cleaned = card["synthetic-glioma-keep-uncertain"], card["synthetic-glioma"]
    assert kept["command"].endswith("--keep-uncertain") and "--keep-uncertain" not in cleaned["command"]
    assert kept["cleanup"]["uncertain_max_ml"] == 0 and cleaned["cleanup"]["uncertain_max_ml"] == 1.0
    assert cleaned["cleanup"]["uncertain_mean"] == 0.8 and cleaned["cleanup"]["min_lesion_mm3"] == 20.0


def test_evaluate_cli_needs_cases(capsys):
    assert main(["evaluate"]) == 2
    assert main(["evaluate", "--synthetic", "glioma"]) == 2


def test_evaluation_of_a_perfect_segmenter_and_of_missing_modalities(small_glioma):
    from napari_tumorseg.training.evaluation import evaluate, without_modalities

    class Oracle:
        def segment(self, case):
            assert case.modalities == ("flair", "t2")
            return type("Result", (), {"labels": small_glioma.label})()

    generator = evaluate({"oracle": Oracle()}, [small_glioma], missing=("t1", "t1c"))
    scored = [progress.data for progress in generator]
    assert len(scored) == 1 and all(scored[0].scores[r]["dice"] == 1.0 for r in ("WT", "TC", "ET"))
    assert all(scored[0].scores[r]["hd95"] == 0.0 for r in ("WT", "TC", "ET"))
    with pytest.raises(ValueError, match="no modality"):
        without_modalities(small_glioma, ("flair", "t1", "t1c", "t2"))


def test_evaluate_reads_a_folder_of_cases(small_glioma_folder, tiny_model, capsys):
    assert main(["evaluate", str(small_glioma_folder.parent), "--model", str(tiny_model), "--threads", "1",
                 "--device", "cpu"]) == 0
    assert small_glioma_folder.name in capsys.readouterr().out


def test_evaluate_keeps_two_models_of_the_same_name_apart(small_glioma_folder, tiny_model, tmp_path):
    import shutil

    copy = tmp_path / "retrained" / tiny_model.name
    copy.parent.mkdir()
    shutil.copy(tiny_model, copy)
    out = tmp_path / "both.json"
    assert main(["evaluate", str(small_glioma_folder.parent), "--model", str(tiny_model), "--model", str(copy),
                 "--threads", "1", "--device", "cpu", "--json", str(out)]) == 0
    models = json.loads(out.read_text(encoding="utf-8"))["models"]
    assert sorted(models) == sorted(f"{tiny_model.stem} ({path})" for path in (tiny_model, copy))


@pytest.mark.parametrize("name", ["glioma-unet", "glioma-dycnn"])
def test_shipped_models_load_fit_in_20_mb_and_have_complete_cards(name):
    from napari_tumorseg.models.checkpoint import load_checkpoint
    from napari_tumorseg.training.card import REQUIRED_FIELDS

    path = SHIPPED / f"{name}.safetensors"
    assert path.stat().st_size <= MAX_BYTES
    loaded = load_checkpoint(path)
    assert loaded.config.arch == name.split("-")[1] and loaded.config.base_width == 16 and loaded.config.depth == 4
    card = json.loads((SHIPPED / f"{name}.card.json").read_text(encoding="utf-8"))
    assert set(REQUIRED_FIELDS) <= set(card) and card == loaded.info.metadata["card"]
    assert "synthetic" in card["intended_use"] and "not for clinical use" in card["intended_use"]
    training = card["training"]
    assert training["command"].startswith(f"tumorseg train --arch {loaded.config.arch}")
    assert training["data"]["generator_version"] and training["data"]["cases"] >= 20
    assert training["wall_time_s"] > 0 and training["hardware"]["cpu"] and training["finished"].endswith("+00:00")
    for key in ("synthetic-glioma", "synthetic-metastasis"):
        evaluation = card["evaluation"][key]
        assert evaluation["cases"] >= 20 and evaluation["command"].startswith("tumorseg evaluate")
        assert {"WT", "TC", "ET"} <= set(evaluation["summary"])
    if loaded.config.arch == "dycnn":
        assert loaded.config.temperature == 1.0
    assert "not for clinical use" in (SHIPPED / "MODEL_CARD.md").read_text(encoding="utf-8")


def test_training_and_evaluation_seeds_do_not_overlap():
    from napari_tumorseg.adapt.anchors import ANCHOR_SEEDS, REPLAY_SEEDS
    from napari_tumorseg.training.data import seed_range

    for name in ("glioma-unet", "glioma-dycnn"):
        card = json.loads((SHIPPED / f"{name}.card.json").read_text(encoding="utf-8"))
        trained = set(seed_range(card["training"]["data"]["seeds"]))
        held_out = set(seed_range(card["training"]["data"]["validation_seeds"]))
        for evaluation in card["evaluation"].values():
            if "--seeds " in evaluation["command"]:  # synthetic sets; a real folder has no seeds
                held_out |= set(seed_range(evaluation["command"].split("--seeds ")[1].split()[0]))
        assert not trained & held_out
        assert not trained & {*ANCHOR_SEEDS, *REPLAY_SEEDS}


def test_the_model_card_page_says_how_many_real_cases_had_a_reference_and_what_each_got():
    from napari_tumorseg.training.card import render_markdown

    labelled = {"case": "lgg", "reference": True, "volumes_ml": {"predicted": {"WT": 24.4}},
                "WT": {"status": "scored", "dice": 0.886, "predicted_ml": 24.4, "reference_ml": 24.2},
                "ET": {"status": "reference_empty", "dice": 0.0, "predicted_ml": 0.3, "reference_ml": 0.0}}
    unlabelled = {"case": "met", "reference": False, "components": {"WT": 9},
                  "volumes_ml": {"predicted": {"WT": 105.9, "NCR": 41.7, "ED": 55.5, "ET": 8.7}}}
    summary = {"WT": {"dice": {"mean": 0.886, "std": 0.0, "n": 1}}}
    card = {"name": "m", "evaluation": {"real": {"cases": 2, "summary": summary, "description": "d", "command": "c",
                                                  "per_case": [unlabelled, labelled]}}}
    page = render_markdown([card])
    assert "| real | 2 (1 with reference) | 0.886 ± 0.000 |" in page
    assert "met: no reference; marked WT 105.9 ml (NCR 41.7, ED 55.5, ET 8.7) in 9 components" in page
    assert "lgg: WT 0.886 (24.4 ml marked, 24.2 ml in the reference); ET absent from the reference, 0.3 ml marked" in page
