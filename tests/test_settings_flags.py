"""Settings, CLI flags, their help text and `wakeword train`'s defaults cannot drift apart."""

from __future__ import annotations

import argparse
import dataclasses
import json
import re

import pytest

from wakeword.classifiers.shipped import default_model_dir
from wakeword.cli.app import build_parser
from wakeword.config import Settings, default_text
from wakeword.daemon import serve
from wakeword.stream.capture import CaptureConfig
from wakeword.stream.detector import DetectorConfig
from wakeword.stream.vad import VadConfig

FLAG_OF = {"vad": "--no-vad", "handoff": "--no-handoff"}  # booleans that are on by default have a --no- flag
CONFIG_ONLY = {"thresholds", "exec", "exec_transcript", "hooks", "callback"}  # tables and lists: TOML only


def subparser(name: str) -> argparse.ArgumentParser:
    if name == "serve":
        parser = argparse.ArgumentParser(prog="wakeword")
        return serve.add_parser(parser.add_subparsers())
    actions = build_parser()._subparsers._group_actions[0]  # argparse keeps the subcommands action here
    return actions.choices[name]


def flags(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {option: action for action in parser._actions for option in action.option_strings}


def test_every_setting_has_a_flag_and_every_flag_a_setting():
    known = {**flags(subparser("run")), **flags(subparser("listen")), **flags(subparser("serve"))}
    for field in dataclasses.fields(Settings):
        if field.name in CONFIG_ONLY:
            continue
        flag = FLAG_OF.get(field.name, "--" + field.name.replace("_", "-"))
        assert flag in known, f"setting {field.name} has no flag {flag}"
        assert known[flag].dest == field.name, (flag, known[flag].dest)


@pytest.mark.parametrize("command", ["run", "listen", "serve"])
def test_help_defaults_are_the_settings_defaults(command):
    """Every '(DEFAULT)' a setting's help shows is the value Settings would use."""
    names = {f.name for f in dataclasses.fields(Settings)}
    checked = 0
    for action in subparser(command)._actions:
        if action.dest not in names or not action.help:
            continue
        shown = re.findall(r"\(([^()]*)\)\s*$", action.help)
        expected = default_text(action.dest).strip(" ()")
        if expected and shown and not shown[0].startswith("default:"):
            assert shown[0] == expected, (action.option_strings, action.help, expected)
            checked += 1
    assert checked >= 10  # the check ran over the engine's options


def test_settings_take_the_component_configs_defaults():
    s = Settings()
    assert (s.smoothing_hops, s.refractory_s) == (DetectorConfig().smoothing_hops, DetectorConfig().refractory_s)
    vad = VadConfig()
    assert (s.vad, s.vad_aggressiveness, s.vad_frame_ms, s.vad_hangover_ms) == (
        vad.enabled,
        vad.aggressiveness,
        vad.frame_ms,
        vad.hangover_ms,
    )
    assert (s.command_silence_s, s.command_max_s) == (CaptureConfig().silence_s, CaptureConfig().max_s)
    assert s.engine_config().vad == vad and s.engine_config().handoff == CaptureConfig()


def test_settings_coerce_by_their_annotations():
    s = Settings.from_mapping({"hop_ms": 80, "threshold": 1, "vad": False, "model": "tone"}, "test")
    assert (s.hop_ms, s.threshold, s.vad, s.model) == (80, 1.0, False, "tone") and isinstance(s.threshold, float)
    for key, value, message in [
        ("hop_ms", 8.5, "an integer"),
        ("vad", "yes", "true or false"),
        ("threshold", "high", "a number"),
        ("model", 3, "a string"),
    ]:
        with pytest.raises(Exception, match=message):
            Settings.from_mapping({key: value}, "test")


def test_train_defaults_are_the_shipped_models_recipe():
    """The data sizes differ (35 words need more clips than one phrase); every recipe choice is the same."""
    from wakeword.training import cli as train_cli

    parser = argparse.ArgumentParser()
    defaults = vars(train_cli.add_parser(parser.add_subparsers()).parse_args(["word", "--out", "x"]))
    recipe = json.loads((default_model_dir() / "manifest.json").read_text())["training"]
    real = recipe["real_speech"]
    assert defaults["epochs"] == recipe["epochs"]
    assert defaults["ema_decay"] == recipe["ema_decay"] and defaults["mixup"] == recipe["mixup"]
    assert defaults["embedding_step"] == recipe["embedding_step"] and defaults["tune_blocks"] == recipe["tune_blocks"]
    assert defaults["width"] == recipe["width"]
    assert defaults["mel_augment"] == recipe["mel_mask_p"] == recipe["mel_warp_p"]
    assert not defaults["no_real_speech"]
    assert (defaults["real_copies"], defaults["context"], defaults["rooms"], defaults["channel"]) == (
        real["real_copies"],
        real["context_p"],
        real["room_p"],
        real["channel_p"],
    )
    assert defaults["target_fa_per_hour"] == real["target_fa_per_hour"]
