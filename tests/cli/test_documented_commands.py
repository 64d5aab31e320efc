"""Every `emokd ...` command line in the README and docs/ names a real command and real options, in
the current spellings (no deprecated ones). `make demo` and the end-to-end tests run them."""

import re
import shlex
from pathlib import Path

import click
import pytest

from emokd.cli import main

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def documented_commands():
    """(page:line, argv) of each `emokd ...` line inside a fenced code block (continuations joined)."""
    for page in PAGES:
        fenced, pending, start = False, "", 0
        for number, line in enumerate(page.read_text().splitlines(), start=1):
            if line.lstrip().startswith("```"):
                fenced, pending = not fenced, ""
                continue
            if not fenced:
                continue
            text = pending + line.strip()
            pending = ""
            if text.endswith("\\"):
                pending, start = text[:-1] + " ", start or number
                continue
            text = re.sub(r"^\$ ", "", text)
            if text.startswith("emokd ") and "..." not in text:
                command = re.split(r"\s+#", text)[0].split("&&")
                for part in command:
                    if part.strip().startswith("emokd "):
                        yield f"{page.name}:{start or number}", shlex.split(part)[1:]
            start = 0


def check(argv: list[str]) -> list[str]:
    """What is wrong with argv for the real CLI: unknown command or option, or a deprecated one."""
    command, i = main, 0
    while isinstance(command, click.Group) and i < len(argv) and not argv[i].startswith("-"):
        if argv[i] not in command.commands:
            return [f"no command {argv[i]!r}"]
        command, i = command.commands[argv[i]], i + 1
    options = {opt: p for p in command.params if isinstance(p, click.Option) for opt in p.opts + p.secondary_opts}
    problems = []
    for token in argv[i:]:
        if token.startswith("-") and not re.match(r"^-\d", token):
            name = token.split("=")[0]
            if name not in options and name != "--help":
                problems.append(f"no option {name}")
            elif name in options and options[name].deprecated:
                problems.append(f"deprecated option {name}")
    return problems


COMMANDS = list(documented_commands())


def test_the_docs_show_commands():
    pages = {where.split(":")[0] for where, _ in COMMANDS}
    assert {"README.md", "training.md", "predict_video.md", "walkthrough.md"} <= pages


@pytest.mark.parametrize("where, argv", COMMANDS, ids=[w for w, _ in COMMANDS])
def test_documented_command_is_real(where, argv):
    assert check(argv) == [], f"{where}: emokd {shlex.join(argv)}"


def test_the_checker_finds_stale_spellings():
    assert check(["train-from-cache", "--out", "runs/x"]) == ["deprecated option --out"]
    assert check(["evaluate", "--run", "r", "--nope"]) == ["no option --nope"]
    assert check(["fly"]) == ["no command 'fly'"]
