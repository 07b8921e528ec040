"""README *Command line*: its summary names every option of every command, and no other (#22: it
had lost `watch --workers/--wait` and `evaluate --grid/--layer/--wait`)."""

import re

from conftest import REPO
from pipeline.cli import main


def summary() -> dict[str, set[str]]:
    """Each command of the summary block → the options it shows."""
    section = (REPO / "README.md").read_text().split("\n## Command line\n", 1)[1]
    block = section.split("```\n", 1)[1].split("```", 1)[0]
    commands: dict[str, set[str]] = {}
    current = None
    for line in block.splitlines():
        if line.startswith("minemap "):
            current = line.split()[1]
            commands[current] = set()
        commands[current] |= set(re.findall(r"--[a-z][a-z-]*", line))
    return commands


def test_summary_shows_every_option_of_every_command():
    shown = summary()
    assert set(shown) == set(main.commands)
    for name, command in main.commands.items():
        options = {o for p in command.params for o in getattr(p, "opts", []) if o.startswith("--")}
        assert shown[name] == options, name
