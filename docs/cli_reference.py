"""Write ``docs/cli.md``, the command reference, from the commands themselves (their arguments, options and help).

    python docs/cli_reference.py          # rewrite docs/cli.md
    python docs/cli_reference.py --check  # exit 1 when docs/cli.md is stale

``tests/test_docs.py`` fails when the committed page differs from what this writes, and compares each command's
``--help`` with its section, so the two never disagree.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer.core
import typer.main

PAGE = Path(__file__).resolve().parent / "cli.md"


def _subcommands(command: Any) -> dict[str, Any]:
    return dict(getattr(command, "commands", {}) or {})


def commands() -> list[tuple[str, Any]]:
    """Every command as ``stability NAME`` (a group's commands as ``stability GROUP NAME``), in the app's order."""
    from stability.cli.app import app

    root = typer.main.get_command(app)
    found: list[tuple[str, Any]] = []

    def walk(prefix: str, group: Any) -> None:
        for name, command in _subcommands(group).items():
            found.append((f"{prefix} {name}", command))
            walk(f"{prefix} {name}", command)

    walk("stability", root)
    return found


def _cell(text: Any) -> str:
    return " ".join(str(text or "").split()).replace("|", "\\|")


def flags(command: Any) -> list[str]:
    """The option flags a command takes (``--help`` left out: every command has it)."""
    return [opt for param in command.params if isinstance(param, typer.core.TyperOption) and not param.hidden
            for opt in (*param.opts, *param.secondary_opts) if opt != "--help"]


def section(name: str, command: Any) -> list[str]:
    doc = (command.help or "").strip()
    lines = [f"## `{name}`", "", " ".join(doc.split("\n\n")[0].split()) if doc else "", ""]
    arguments = [p for p in command.params if isinstance(p, typer.core.TyperArgument) and not p.hidden]
    options = [p for p in command.params if isinstance(p, typer.core.TyperOption) and not p.hidden]
    usage = " ".join([name, "[OPTIONS]" if options else "",
                      *(p.display_name_raw.upper() + ("…" if p.nargs == -1 else "") for p in arguments)])
    lines += ["```", " ".join(usage.split()), "```", ""]
    if _subcommands(command):
        lines += ["Commands: " + ", ".join(f"`{name} {sub}`" for sub in _subcommands(command)), ""]
    if arguments or options:
        lines += ["| argument or option | meaning |", "|---|---|"]
        lines += [f"| `{p.display_name_raw.upper()}` | {_cell(getattr(p, 'help', ''))} |" for p in arguments]
        for option in options:
            names = ", ".join(f"`{o}`" for o in (*option.opts, *option.secondary_opts))
            default = ""
            if option.show_default and isinstance(option.default, str | int | float) \
                    and option.default not in ("", False):
                default = f"(default: {option.default})"
            envvar = f"(env: {option.envvar})" if option.envvar else ""
            lines.append(f"| {names} | {_cell(' '.join(t for t in (option.help or '', default, envvar) if t))} |")
        lines.append("")
    return lines


def page() -> str:
    lines = ["# Command reference", "",
             "Every `stability` command with its arguments and options, written from the commands themselves by "
             "`python docs/cli_reference.py` (`tests/test_docs.py` fails when this page and the commands' "
             "`--help` disagree). `stability COMMAND --help` says the same in the terminal.", ""]
    for name, command in commands():
        lines += section(name, command)
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    sys.path.insert(0, str(PAGE.parents[1]))
    text = page()
    if "--check" in sys.argv[1:]:
        if PAGE.read_text(encoding="utf-8") != text:
            sys.exit(f"{PAGE}: stale; run python docs/cli_reference.py")
    else:
        PAGE.write_text(text, encoding="utf-8")
