"""The passes' arithmetic: "auto" resolves by the CPU's bfloat16 units; bf16 adapts in mixed precision."""

from __future__ import annotations

import pytest
import torch
from test_adapt_helpers import drive, state_copy, tiny_model, toy_corrections
from test_adapt_methods import RUNNERS, TOY, corrections_loss

from napari_tumorseg.adapt import config as adapt_config
from napari_tumorseg.adapt.config import AdaptConfig, default_config
from napari_tumorseg.errors import AdaptationError
from napari_tumorseg.models import precision
from napari_tumorseg.models.precision import PRECISION_ENV, compute_precision, native_bf16, resolve_precision

torch.set_num_threads(1)


def _capabilities(monkeypatch, **flags):
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"amx_bf16": False, "avx512_bf16": False, **flags})


def test_the_config_knows_the_same_precisions_as_the_models():
    assert adapt_config.PRECISIONS == precision.PRECISIONS
    assert AdaptConfig().precision == "auto"
    with pytest.raises(AdaptationError, match="unknown precision 'fp16'"):
        AdaptConfig(precision="fp16")


@pytest.mark.parametrize("flags, expected", [({}, False), ({"amx_bf16": True}, True), ({"avx512_bf16": True}, True)])
def test_native_bf16_follows_the_cpu_units(monkeypatch, flags, expected):
    _capabilities(monkeypatch, **flags)
    assert native_bf16("cpu") is expected
    assert native_bf16("cuda") is False  # not measured on a GPU: auto stays float32 there


def test_auto_takes_bf16_only_where_native_unless_the_environment_pins_it(monkeypatch):
    monkeypatch.delenv(PRECISION_ENV, raising=False)
    _capabilities(monkeypatch, amx_bf16=True)
    assert resolve_precision("auto", "cpu") == "bf16"
    assert resolve_precision("fp32", "cpu") == "fp32"
    monkeypatch.setenv(PRECISION_ENV, "fp32")
    assert resolve_precision("auto", "cpu") == "fp32"
    assert resolve_precision("bf16", "cpu") == "bf16", "an explicit choice wins over the environment"
    _capabilities(monkeypatch)
    monkeypatch.setenv(PRECISION_ENV, "auto")
    assert resolve_precision("auto", "cpu") == "fp32"
    monkeypatch.setenv(PRECISION_ENV, "half")
    with pytest.raises(ValueError, match="TUMORSEG_PRECISION='half'"):
        resolve_precision("auto", "cpu")


def test_compute_precision_runs_convolutions_in_bf16_and_refuses_an_unresolved_choice():
    conv = torch.nn.Conv2d(2, 3, 3)
    x = torch.randn(1, 2, 8, 8)
    with compute_precision("fp32", "cpu"):
        assert conv(x).dtype == torch.float32
    with compute_precision("bf16", "cpu"):
        assert conv(x).dtype == torch.bfloat16
    assert conv(x).dtype == torch.float32, "autocast must not outlive the block"
    with pytest.raises(ValueError, match="not resolved"):
        with compute_precision("auto", "cpu"):
            pass


def _conv_output_dtypes(model: torch.nn.Module) -> set[torch.dtype]:
    """The dtypes of the convolutions' outputs in ``model``'s training passes (a working copy keeps the hooks).

    Passes without gradients (active's ranking of the slices, the scoring) are inference, left in float32.
    """
    seen: set[torch.dtype] = set()

    def record(_module, _inputs, output):
        if torch.is_grad_enabled():
            seen.add(output.dtype)

    for module in model.modules():
        if isinstance(module, torch.nn.Conv2d):
            module.register_forward_hook(record)
    return seen


@pytest.mark.parametrize("method", ["naive", "active", "dycnn"])
@pytest.mark.parametrize("chosen", ["fp32", "bf16"])
def test_each_method_adapts_in_the_chosen_precision_with_float32_weights(method, chosen):
    model = tiny_model("dycnn" if method == "dycnn" else "unet")
    seen = _conv_output_dtypes(model)
    corrections = toy_corrections()
    _, result = drive(RUNNERS[method](model, corrections, default_config(method, **TOY, precision=chosen)))
    assert result.details["precision"] == chosen
    assert seen == {torch.bfloat16 if chosen == "bf16" else torch.float32}
    assert {t.dtype for t in state_copy(result.model).values() if t.is_floating_point()} == {torch.float32}
    assert corrections_loss(result.model, corrections) < corrections_loss(model, corrections) - 0.05


def test_the_suite_pins_auto_to_float32(monkeypatch):
    """conftest pins TUMORSEG_PRECISION so results do not depend on the CPU the tests run on."""
    _capabilities(monkeypatch, amx_bf16=True)  # even on a CPU with bfloat16 units
    model = tiny_model()
    _, result = drive(RUNNERS["naive"](model, toy_corrections(), default_config("naive", steps=1, crop=16)))
    assert result.details["precision"] == "fp32"


def test_the_report_says_the_arithmetic_beside_the_device():
    from napari_tumorseg.adapt.report import AdaptationReport

    report = AdaptationReport(method="active", parent_id=None, version_id=None, status="active", activated=True,
                              forced=False, reason="accepted", anchor_drop=0.0, tolerance=0.02, hyperparameters={},
                              corrections_hash="", corrections=[], replay={}, anchor={}, dice={},
                              details={"precision": "bf16"})
    assert report.summary_lines()[0] == "active on cpu (bf16): accepted"


def test_class_map_is_the_arg_max_over_channels_ties_to_the_first():
    from napari_tumorseg.models.labels import class_map

    logits = torch.randn(3, 4, 9, 7)
    logits[0, 1:3, 2, 2] = 5.0  # a tie between classes 1 and 2 at one pixel
    assert torch.equal(class_map(logits), logits.argmax(dim=1))
    assert class_map(logits)[0, 2, 2] == 1
    assert torch.equal(class_map(logits.bfloat16()), logits.bfloat16().argmax(dim=1))


def test_the_loss_sees_float32_logits_after_a_bf16_pass_and_float64_stays_float64():
    from napari_tumorseg.models.precision import full_precision

    assert full_precision(torch.zeros(2, dtype=torch.bfloat16)).dtype == torch.float32
    assert full_precision(torch.zeros(2, dtype=torch.float64)).dtype == torch.float64


def test_the_command_line_takes_a_precision_and_experiments_record_it_resolved(monkeypatch, capsys):
    import argparse

    from napari_tumorseg.cli.adapt import _config
    from napari_tumorseg.cli.experiment import _resolved_precision
    from napari_tumorseg.cli import build_parser

    args = build_parser().parse_args(["bench-adapt", "--precision", "bf16"])
    assert _config(args).precision == "bf16"
    assert _config(build_parser().parse_args(["bench-adapt"])).precision == "auto"
    with pytest.raises(SystemExit) as refused:
        build_parser().parse_args(["bench-adapt", "--precision", "fp16"])
    assert refused.value.code == 2 and "invalid choice: 'fp16'" in capsys.readouterr().err
    monkeypatch.setenv(PRECISION_ENV, "fp32")
    assert _resolved_precision(argparse.Namespace(precision=None), "cpu") == "fp32"
    assert _resolved_precision(argparse.Namespace(precision="bf16"), "cpu") == "bf16"
