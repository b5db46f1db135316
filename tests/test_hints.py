"""Every hint names an option that the command has: each message of the README's reliability table is checked
against the options of the command that prints it, or of the command it names (`python -m ...`)."""
from __future__ import annotations

import argparse
import re
from typing import Set

import pytest

from stvfm_plugin.data.commands import build_parser as data_parser
from stvfm_plugin.forecast import build_parser as forecast_parser
from stvfm_plugin.leaderboard.cli import build_parser as leaderboard_parser
from stvfm_plugin.run import build_parser as run_parser

import reliability

OPTION = re.compile(r"(?<![\w-])--[a-z][a-z-]*")


def options(parser: argparse.ArgumentParser, command: str = "") -> Set[str]:
    """The option strings of `parser` (of its sub-command `command`, when it has sub-commands)."""
    found = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found |= options(action.choices[command]) if command else set()
        else:
            found |= set(action.option_strings)
    return found


COMMANDS = {
    "python -m stvfm_plugin.data prepare": options(data_parser(), "prepare"),
    "python -m stvfm_plugin.data synth": options(data_parser(), "synth"),
    "python -m basicts.run": options(run_parser()),
    "python -m stvfm_plugin.leaderboard run": options(leaderboard_parser(), "run"),
    "python -m stvfm_plugin.forecast": options(forecast_parser()),
}
CASES = [(reliability.PREPARE_BASE, case) for case in reliability.PREPARE + reliability.PREPARE_GRID] + \
    [(reliability.SYNTH_BASE, case) for case in reliability.SYNTH] + \
    [(reliability.RUN_BASE, case) for case in reliability.RUN + reliability.STVFM + reliability.STVFM_RUN] + \
    [(reliability.LEADERBOARD_BASE, case) for case in reliability.LEADERBOARD] + \
    [(reliability.FORECAST_BASE, case) for case in reliability.FORECAST + [reliability.FORECAST_STVFM]]


def command_of(base: str) -> str:
    return next(name for name in COMMANDS if base.startswith(name) or base.replace("-c STID_Tiny.py", "").startswith(
        name) or base.replace("-c STVFM_Tiny.py", "").startswith(name))


@pytest.mark.parametrize("base, case", CASES, ids=lambda x: " ".join(x.args) if hasattr(x, "args") else x.split()[2])
def test_every_option_a_message_names_is_one_of_its_command_or_of_the_command_it_names(base, case):
    allowed = set(COMMANDS[command_of(base)])
    for name, known in COMMANDS.items():  # "(python -m stvfm_plugin.data prepare ... --overwrite)": that command's
        module = " ".join(name.split()[:3])
        if module in case.message and (len(name.split()) == 3 or name.split()[3] in case.message.split(module, 1)[1]):
            allowed |= known
    named = set(OPTION.findall(case.message))
    assert named <= allowed, f"{sorted(named - allowed)} is no option of {command_of(base)}: {case.message}"


def test_the_check_catches_an_option_of_another_command():
    prepare_only = set(COMMANDS["python -m stvfm_plugin.data prepare"]) - set(COMMANDS["python -m stvfm_plugin.forecast"])
    assert "--nan-as-missing" in prepare_only and "--null-value" in prepare_only
    assert not {"--nan-as-missing"} <= set(COMMANDS["python -m stvfm_plugin.forecast"])
