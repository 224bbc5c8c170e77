"""The layers, as the package's imports tell them (docs/architecture.md draws the same picture).

An AST walk over ``stability/`` (imports under ``if TYPE_CHECKING:`` count: an annotation is a dependency too):
- no import circle anywhere;
- analysis and the judge do not both import each other (the judge may read analysis; analysis never the judge);
- protocols decide: nothing under ``stability/protocols/`` imports the store or a concrete provider module, or
  opens a file (the engine reads the input files a protocol declares, and hashes them);
- nothing imports the CLI (but ``python -m stability``);
- no code outside ``stability/protocols/`` compares a protocol's name with a string;
- every module opens with its contract (a docstring).
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

PACKAGE = Path(__file__).resolve().parents[1] / "stability"
PROVIDERS = {"stability.models.openai", "stability.models.anthropic", "stability.models.litellm",
             "stability.models.local", "stability.models.local_smollm2", "stability.models.hf",
             "stability.models.hf_training", "stability.models.scripted"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    hidden: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", getattr(node.test, "attr", "")) == "TYPE_CHECKING":
            hidden |= {id(n) for n in ast.walk(node)}
    return hidden


def imports(name: str, path: Path, known: set[str], type_checking: bool = True) -> set[str]:
    """The package modules ``name`` imports (a ``from X import y`` of a submodule counts as importing it), those
    under ``if TYPE_CHECKING:`` too unless ``type_checking`` is false."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    hidden = set() if type_checking else _type_checking_nodes(tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in hidden:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return {m for m in found if m in known and m != name}


def import_graph() -> nx.DiGraph:
    found = modules()
    graph = nx.DiGraph()
    for name, path in found.items():
        graph.add_node(name)
        for target in imports(name, path, set(found)):
            # a package's __init__ re-exporting its modules is its face, not a dependency of theirs
            if found[target].name == "__init__.py" and name.startswith(target + "."):
                continue
            if path.name == "__init__.py" and target.startswith(name + "."):
                continue
            graph.add_edge(name, target)
    return graph


def test_no_import_circles() -> None:
    cycles = list(nx.simple_cycles(import_graph()))
    assert cycles == [], "import circles: " + "; ".join(" -> ".join([*c, c[0]]) for c in cycles)


def test_analysis_and_the_judge_do_not_import_each_other() -> None:
    graph = import_graph()
    analysis_to_judge = [(a, b) for a, b in graph.edges
                         if a.startswith("stability.analysis") and b.startswith("stability.judge")]
    assert analysis_to_judge == [], "analysis reads the judgements from the store, never the judge"


def test_protocols_import_neither_the_store_nor_a_provider() -> None:
    graph = import_graph()
    bad = [(a, b) for a, b in graph.edges if a.startswith("stability.protocols")
           and (b.startswith("stability.store") or b in PROVIDERS)]
    assert bad == []


#: calls that read files; a protocol declares its input files (``input_files``) and the engine reads them
FILE_READS = {"open", "parse_file", "load_yaml", "read_text", "read_bytes", "load_alternatives", "is_file",
              "is_dir", "exists", "glob", "rglob", "iterdir", "stat"}


def file_reads(path: Path) -> list[str]:
    """``path:line: name`` of every call in a module that reads a file (or looks at the file system)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            name = getattr(node.func, "id", getattr(node.func, "attr", ""))
            if name in FILE_READS:
                found.append((node.lineno, f"{path.name}:{node.lineno}: {name}"))
    return [hit for _, hit in sorted(found)]


def test_protocols_open_no_file() -> None:
    bad = [hit for path in sorted((PACKAGE / "protocols").glob("*.py")) for hit in file_reads(path)]
    assert bad == []


def test_a_protocol_module_that_opens_a_file_is_caught(tmp_path: Path) -> None:
    module = tmp_path / "sneaky.py"
    module.write_text("from pathlib import Path\n\ndef options(p):\n    if Path(p).is_file():\n"
                      "        return open(p).read()\n    return Path(p).read_text()\n")
    assert file_reads(module) == ["sneaky.py:4: is_file", "sneaky.py:5: open", "sneaky.py:6: read_text"]


def test_nothing_imports_the_cli() -> None:
    graph = import_graph()
    bad = [(a, b) for a, b in graph.edges if b.startswith("stability.cli")
           and not a.startswith("stability.cli") and a != "stability.__main__"]
    assert bad == []


def test_no_protocol_names_compared_outside_protocols() -> None:
    from stability.protocols import all_protocols

    names = set(all_protocols())
    offenders = []
    for name, path in modules().items():
        if name.startswith("stability.protocols"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Compare):
                for operand in [node.left, *node.comparators]:
                    if isinstance(operand, ast.Constant) and operand.value in names:
                        offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []


def test_the_walk_finds_a_planted_circle(tmp_path: Path) -> None:
    """The checks above could fail: a circle planted in a copy of two modules is found."""
    a = tmp_path / "a.py"
    a.write_text("from stability.b import x\n")
    assert imports("stability.a", a, {"stability.a", "stability.b"}) == {"stability.b"}
    hidden = tmp_path / "h.py"
    hidden.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from stability.b import x\n")
    assert imports("stability.h", hidden, {"stability.h", "stability.b"}) == {"stability.b"}
    assert imports("stability.h", hidden, {"stability.h", "stability.b"}, type_checking=False) == set()
    planted = nx.DiGraph([("stability.a", "stability.b"), ("stability.b", "stability.a")])
    assert list(nx.simple_cycles(planted))


def test_every_module_opens_with_its_contract() -> None:
    missing = [name for name, path in modules().items()
               if path.stat().st_size and ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) is None]
    assert missing == []


def test_the_cli_names_no_protocol_option() -> None:
    """``iterate``'s protocol flags are derived from the protocols' ``cli_flags``: no CLI module spells one."""
    from stability.protocols import protocol_flags

    flags = {"--" + name.replace("_", "-") for name in protocol_flags()}
    assert "--max-steps" in flags and "--agents" in flags
    spelled = [(path.name, flag) for path in (PACKAGE / "cli").glob("*.py") for flag in flags
               if f'"{flag}"' in path.read_text(encoding="utf-8")]
    assert spelled == []


def test_every_command_is_registered_one_way() -> None:
    """The app's commands are exactly ``stability.cli.app.COMMANDS`` (and the ``constitutions`` group)."""
    from stability.cli.app import COMMANDS, app

    assert [c.name for c in app.registered_commands] == list(COMMANDS)
    assert [g.name for g in app.registered_groups] == ["constitutions"]


def test_the_vocabulary_is_below_every_other_layer() -> None:
    """``stability.vocabulary`` reaches (through any chain of imports) only the leaf modules it is built on: never
    a provider, the call path, the engine, a protocol, the judge or analysis."""
    graph = import_graph()
    reached = set().union(*(nx.descendants(graph, name) for name in graph if name.startswith("stability.vocabulary")))
    leaves = {"stability.bounds", "stability.errors", "stability.json_text", "stability.records", "stability.tokens"}
    assert {name for name in reached if not name.startswith("stability.vocabulary")} <= leaves
