"""`emokd` subcommands: inspect (filled in by its issue)."""

COMMANDS: list = []
