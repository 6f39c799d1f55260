"""``tumorseg experiment``: the subcommands exist, settings reach the configs, bad settings fail cleanly."""

from __future__ import annotations

import pytest

from napari_tumorseg.cli import build_parser, main


def test_experiment_subcommands_are_registered():
    parser = build_parser()
    args = parser.parse_args(["experiment", "meta-tune", "--out", "x", "--quick", "--ks", "1,3", "--main-k", "3"])
    assert args.experiment == "meta-tune" and args.quick and args.ks == (1, 3) and args.main_k == 3
    args = parser.parse_args(["experiment", "lifelong", "--out", "x", "--settings", "large,small", "--seeds", "3"])
    assert args.experiment == "lifelong" and args.settings == ("large", "small") and args.seeds == 3


def test_bad_settings_exit_with_one_line(tmp_path, capsys):
    status = main(["experiment", "lifelong", "--out", str(tmp_path / "o"), "--train-patients", "5", "--threads", "1"])
    assert status == 2
    assert "train_patients" in capsys.readouterr().err
    status = main(["experiment", "meta-tune", "--out", str(tmp_path / "o"), "--ks", "1,3", "--main-k", "5",
                   "--threads", "1", "--no-cache"])
    assert status == 2
    assert "main_k" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # nothing written


def test_missing_model_file_is_a_clean_error(tmp_path, capsys):
    missing = str(tmp_path / "none.safetensors")
    status = main(["experiment", "meta-tune", "--out", str(tmp_path / "o"), "--model", missing, "--threads", "1"])
    assert status == 2
    assert "none.safetensors" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["0", "a,b", ""])
def test_ks_must_be_positive_integers(value):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["experiment", "meta-tune", "--out", "x", "--ks", value])


@pytest.mark.parametrize("experiment, figures", [("meta-tune", 2), ("lifelong", 2), ("effort", 1), ("sequence", 1)])
def test_quick_mode_runs_end_to_end_from_the_command_line(tmp_path, experiment, figures):
    # The CI smoke test of the experiments: the real command, its --quick settings, every output file.
    out = tmp_path / experiment
    status = main(["experiment", experiment, "--out", str(out), "--quick", "--threads", "1",
                   "--cache-dir", str(tmp_path / "cache")])
    assert status == 0
    names = {p.name for p in out.iterdir()}
    assert {"results.json", "results.md"} <= names
    assert sum(name.endswith(".png") for name in names) >= figures
    assert not any(name.startswith(".") for name in names)  # the journal is gone once the results are written
    assert f"tumorseg experiment {experiment} --out" in (out / "results.md").read_text(encoding="utf-8")


def test_the_guards_bounds_reach_every_method_of_the_effort_experiment(tmp_path, monkeypatch, torch_single_thread):
    from napari_tumorseg.experiments import api

    seen = {}

    def fake_effort(bases, config, out, **kwargs):
        seen["config"], seen["command"] = config, kwargs["command"]
        return {"timings": {"wall_time_s": 0.0}}
        yield  # a generator, like the real one

    monkeypatch.setattr(api, "effort_experiment", fake_effort)
    for by_case in (True, False):
        flag = "--replay-by-case" if by_case else "--no-replay-by-case"
        status = main(["experiment", "effort", "--out", str(tmp_path / "o"), "--quick", "--threads", "1",
                       "--no-real", "--runs", "suggest/active", "--tolerance", "1", "--budget", "1", "--max-shrink",
                       "0.1", "--replay", "8", flag, "--layers", "decoder", "--replay-distill", "0.5",
                       "--replay-faint"])
        assert status == 0
        for method in ("naive", "active", "passive", "dycnn"):
            adapt = seen["config"].adapt_config(method, 0)
            assert (adapt.tolerance, adapt.budget, adapt.max_shrink, adapt.replay, adapt.replay_by_case,
                    adapt.layers, adapt.replay_distill, adapt.replay_faint) == (1.0, 1.0, 0.1, 8, by_case, "decoder", 0.5, True)
        assert (f"--tolerance 1.0 --budget 1.0 --max-shrink 0.1 --replay 8 {flag} --layers decoder "
                "--replay-distill 0.5 --replay-faint") in seen["command"]
