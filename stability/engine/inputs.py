"""Reading a protocol's input files: the files its options name, read once by the engine and hashed.

Contract: :func:`read_inputs` reads every file a configured protocol declares (:meth:`input_files`), parses it as
declared (:data:`~stability.protocols.inputs.InputKind`), hands the contents to the protocol (its ``inputs``) and
returns one :class:`~stability.records.RunInputRecord` per file read, the sha256 of the very bytes parsed. A bad
file is an :class:`~stability.errors.InputError` naming it, before anything is written. :func:`changed_input`
compares a resumed run's files with what it recorded, like its template hash.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from stability.alternatives import ALTERNATIVES_SUFFIX, pool_from_text
from stability.constitution import Constitution, parse_text
from stability.errors import InputError
from stability.input_files import decode_text, parse_yaml, read_bytes
from stability.protocols.base import ReflectionProtocol
from stability.protocols.inputs import InputKind, Inputs
from stability.records import RunInputRecord

_WHAT: dict[str, str] = {"yaml": "a YAML file", "constitution": "a Markdown constitution",
                         "constitution-or-name": "a Markdown constitution",
                         "constitutions": "a folder or a YAML list of constitution files",
                         "alternatives-pool": "a YAML file of alternatives"}


class _Reader:
    """Reads files for one option, keeping the hash of each file's bytes."""

    def __init__(self, option: str) -> None:
        self.option = option
        self.read: list[RunInputRecord] = []

    def text(self, path: Path | str, what: str) -> str:
        data = read_bytes(path, what)
        self.read.append(RunInputRecord(run_id="", option=self.option, path=str(path),
                                        sha256="sha256:" + hashlib.sha256(data).hexdigest()))
        return decode_text(data, str(path), what)

    def constitution(self, path: Path | str) -> Constitution:
        return parse_text(self.text(path, "a Markdown constitution"), path=str(path))

    def parse(self, value: str, kind: InputKind) -> Any:
        if kind == "yaml":
            return parse_yaml(self.text(value, _WHAT[kind]), value)
        if kind == "constitution":
            return self.constitution(value)
        if kind == "constitution-or-name":
            return self.constitution(value) if Path(value).is_file() else None
        if kind == "constitutions":
            return [self.constitution(p) for p in self._constitution_files(value)]
        return self._pool(value)

    def _constitution_files(self, value: str) -> list[Path]:
        source = Path(value)
        if source.is_dir():
            return sorted(p for p in source.glob("*.md") if p.name != "README.md")
        data = parse_yaml(self.text(value, "a YAML list of constitution files"), value)
        if not isinstance(data, list) or not all(isinstance(x, str) for x in data):
            raise InputError(value, None, "expected a YAML list of constitution file paths")
        return [source.parent / x if not Path(x).is_absolute() else Path(x) for x in data]

    def _pool(self, value: str) -> Any:
        constitution_path = value.removesuffix(ALTERNATIVES_SUFFIX) + ".md"
        if not Path(value).exists():
            raise InputError(value, None, f"no alternatives file beside {constitution_path}")
        constitution = self.constitution(constitution_path)
        return pool_from_text(constitution, constitution_path, self.text(value, _WHAT["alternatives-pool"]), value,
                              complete=False)


def read_inputs(protocol: ReflectionProtocol[Any]) -> list[RunInputRecord]:
    """Read the files ``protocol`` declares, set its ``inputs``, and return one record per file read (``run_id``
    left empty: the run does not exist yet)."""
    values: dict[str, Any] = {}
    records: list[RunInputRecord] = []
    for option, kind in protocol.input_files().items():
        value = getattr(protocol.options, option)
        if value is None:
            continue
        reader = _Reader(option)
        values[option] = reader.parse(str(value), kind)
        records += reader.read
    protocol.inputs = Inputs(values)
    return records


def for_run(records: list[RunInputRecord], run_id: str) -> list[RunInputRecord]:
    """``records`` as the inputs of run ``run_id``."""
    return [r.model_copy(update={"run_id": run_id}) for r in records]


def changed_input(recorded: list[RunInputRecord], read: list[RunInputRecord]) -> str | None:
    """The first input file whose bytes (or presence) differ from what the run recorded; None when all match."""
    before = {(r.option, r.path): r.sha256 for r in recorded}
    now = {(r.option, r.path): r.sha256 for r in read}
    for key in sorted(before.keys() | now.keys()):
        if before.get(key) != now.get(key):
            return key[1]
    return None
