"""The adaptation options ``adapt``, ``bench-adapt`` and ``experiment effort`` share: one declaration."""

from __future__ import annotations

import argparse

import pytest

from napari_tumorseg.adapt.config import AdaptConfig
from napari_tumorseg.cli import build_parser
from napari_tumorseg.cli._adapt_options import SHARED, given

# A value for every shared option, none of them the default.
SET_EVERY_OPTION = ["--steps", "7", "--lr", "0.003", "--inner-lr", "0.004", "--tolerance", "0.03", "--budget", "0.07",
                    "--max-shrink", "0.2", "--replay", "4", "--replay-by-case", "--layers", "decoder",
                    "--replay-faint", "--replay-distill", "0.5", "--keep-absent", "--keep-absent-faint"]
EXPECTED = {"steps": 7, "lr": 0.003, "inner_lr": 0.004, "tolerance": 0.03, "budget": 0.07, "max_shrink": 0.2,
            "replay": 4, "replay_by_case": True, "layers": "decoder", "replay_faint": True, "replay_distill": 0.5,
            "keep_absent": True, "keep_absent_faint": True}


def test_every_shared_option_is_an_adapt_config_field():
    assert set(SHARED) == set(EXPECTED)
    assert set(SHARED) <= set(AdaptConfig.__dataclass_fields__)


@pytest.mark.parametrize("command", [["adapt", "--case", "c", "--corrected", "m"], ["bench-adapt"],
                                     ["experiment", "effort", "--out", "o"]])
def test_each_command_reads_the_same_options(command):
    args = build_parser().parse_args([*command, *SET_EVERY_OPTION])
    assert given(args) == EXPECTED
    assert given(build_parser().parse_args(command)) == {}


def test_the_adapt_config_gets_them():
    from napari_tumorseg.cli.adapt import _config

    config = _config(build_parser().parse_args(["bench-adapt", *SET_EVERY_OPTION]))
    assert {name: getattr(config, name) for name in SHARED} == EXPECTED


def _help_of(parser: argparse.ArgumentParser, flag: str) -> str:
    return next(action.help for action in parser._actions if flag in action.option_strings)


def test_the_help_states_adapt_configs_defaults():
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    effort = next(a for a in subparsers.choices["experiment"]._actions
                  if isinstance(a, argparse._SubParsersAction)).choices["effort"]
    defaults = AdaptConfig()
    for flag, field in (("--tolerance", "tolerance"), ("--budget", "budget"), ("--replay", "replay")):
        assert f"(default: {getattr(defaults, field):g})" in _help_of(subparsers.choices["adapt"], flag)
        assert f"(default: the plugin's, {getattr(defaults, field):g})" in _help_of(effort, flag)
