"""The constitution library: the labelled files under ``constitutions/``, their metadata schema and its checks.

Each library file is a constitution (see :mod:`stability.constitution`) whose YAML front matter follows the schema
documented in ``constitutions/README.md`` and defined here as pydantic models (one per condition, chosen by
``condition``). Cross-file links are checked too: a contradictory file's repaired ``twin``, a neutral control's
value-laden ``pair``, an axis variant's ``base`` (and that it differs from it exactly where it says).

Alternatives for rate-alternatives sit beside a constitution as ``<name>.alternatives.yaml`` and are read by
:func:`stability.alternatives.load_alternatives`.

Every problem is an :class:`InputError`: one line naming the file (and line, where known) and the problem."""

from __future__ import annotations

import datetime
import difflib
import re
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator, model_validator

from stability.alternatives import (
    ALTERNATIVES_SUFFIX,
    alternatives_path,
    load_alternatives,
)
from stability.constitution import parse_text, read_text
from stability.errors import InputError, StabilityError
from stability.resources import library_root
from stability.yaml_location import first_problem, where, yaml_line

Condition = Literal["consistent", "contradictory", "neutral", "frontier-like", "axes"]
Style = Literal["first-person", "imperative", "third-person"]
ClashKind = Literal["direct-negation", "priority", "scope", "subtle"]
CONDITIONS: tuple[str, ...] = get_args(Condition)
AXIS_VALUES: dict[str, tuple[str, ...]] = {
    "framing": ("consequentialist", "deontological", "virtue"),
    "target": ("corrigibility", "moral-alignment"),
}
AXES = ("framing", "target", "priority-order")
_ORDER = re.compile(r"^[a-z][a-z-]*(>[a-z][a-z-]*)+$")


# -- metadata schema ----------------------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(_Strict):
    """The published document a file stands for."""

    title: str = Field(min_length=1)
    publisher: str = Field(min_length=1)
    date: str = Field(pattern=r"^\d{4}(-\d{2}(-\d{2})?)?$")  # as precise as known: 1942-03 or 2025-02-12
    version: str | None = None
    url: str | None = None

    @field_validator("date", mode="before")
    @classmethod
    def _date_text(cls, value: Any) -> Any:
        return value.isoformat() if isinstance(value, datetime.date) else value


class Clash(_Strict):
    """A planted clash between principles ``a`` and ``b`` (1-based)."""

    a: int = Field(ge=1)
    b: int = Field(ge=1)
    kind: ClashKind
    note: str = Field(min_length=1)

    @model_validator(mode="after")
    def _two_principles(self) -> Clash:
        if self.a == self.b:
            raise ValueError(f"a clash needs two different principles, got a = b = {self.a}")
        return self


class _Common(_Strict):
    size: int = Field(ge=1)
    style: Style
    description: str = Field(min_length=1)
    main: bool = False
    source: Source | None = None


class ConsistentMeta(_Common):
    condition: Literal["consistent"]
    repairs: str | None = None
    repair: str | None = None

    @model_validator(mode="after")
    def _repair_pair(self) -> ConsistentMeta:
        if (self.repairs is None) != (self.repair is None):
            raise ValueError("a repaired twin gives both 'repairs' (its contradictory file) and 'repair' (the edit)")
        return self


class ContradictoryMeta(_Common):
    condition: Literal["contradictory"]
    clashes: list[Clash] = Field(min_length=1)
    twin: str


class NeutralMeta(_Common):
    condition: Literal["neutral"]
    pair: str


class FrontierMeta(_Common):
    condition: Literal["frontier-like"]
    similarity: Literal["close", "dissimilar"]

    @model_validator(mode="after")
    def _close_names_source(self) -> FrontierMeta:
        if self.similarity == "close" and self.source is None:
            raise ValueError("a 'close' frontier-like file names its 'source' (title, publisher, date)")
        return self


class AxesMeta(_Common):
    condition: Literal["axes"]
    axis: Literal["base", "framing", "target", "priority-order"]
    value: str = Field(min_length=1)
    base: str | None = None
    changes: list[int] = Field(default_factory=list)
    position: dict[str, str] | None = None  # the base's own value on each axis

    @model_validator(mode="after")
    def _axis_value(self) -> AxesMeta:
        if self.axis == "base":
            if self.value != "base" or self.base is not None or self.changes:
                raise ValueError("the base of a sweep has value: base, and no 'base' or 'changes'")
            if self.position is None or set(self.position) != set(AXES):
                raise ValueError(f"the base of a sweep gives its 'position' on each axis: {', '.join(AXES)}")
            if not _ORDER.match(self.position["priority-order"]):
                raise ValueError("the base's priority-order position must be value names joined by '>'")
            return self
        if self.position is not None:
            raise ValueError("only the base of a sweep has a 'position'; a variant has axis and value")
        if self.base is None or not self.changes:
            raise ValueError(f"an axis variant names its 'base' file and the principles it 'changes' ({self.axis})")
        allowed = AXIS_VALUES.get(self.axis)
        if allowed is not None and self.value not in allowed:
            raise ValueError(f"value {self.value!r} is not one of {', '.join(allowed)} for axis {self.axis}")
        if self.axis == "priority-order":
            names = self.value.split(">")
            if not _ORDER.match(self.value) or len(set(names)) != len(names):
                raise ValueError(f"priority-order value {self.value!r} must be distinct names joined by '>'")
        return self


Metadata = Annotated[
    ConsistentMeta | ContradictoryMeta | NeutralMeta | FrontierMeta | AxesMeta, Field(discriminator="condition")
]
_METADATA: TypeAdapter[Metadata] = TypeAdapter(Metadata)


class LibraryEntry(_Strict):
    """One library file: where it is, what it says and what it is labelled."""

    name: str  # "consistent/minimal": the path under the library root without ".md"
    path: str
    title: str | None
    hash: str
    principles: tuple[str, ...]
    metadata: Metadata
    alternatives: str | None = None  # path of the pool beside it, if there is one

    @property
    def tags(self) -> dict[str, str]:
        """Flat ``key: value`` labels for listing and ``--tag K=V`` filtering; several values join with ','."""
        meta = self.metadata
        tags = {"condition": meta.condition, "size": str(meta.size), "style": meta.style}
        if meta.main:
            tags["main"] = "yes"
        if meta.source is not None:
            tags["source"] = meta.source.publisher
            tags["source-date"] = meta.source.date
        if isinstance(meta, ContradictoryMeta):
            tags["clash-kinds"] = ",".join(sorted({c.kind for c in meta.clashes}))
            tags["twin"] = _stem(meta.twin)
        elif isinstance(meta, ConsistentMeta) and meta.repairs:
            tags["repairs"] = _stem(meta.repairs)
        elif isinstance(meta, NeutralMeta):
            tags["pair"] = _stem(meta.pair)
        elif isinstance(meta, FrontierMeta):
            tags["similarity"] = meta.similarity
        elif isinstance(meta, AxesMeta):
            tags.update({"axis": meta.axis, "value": meta.value})
            if meta.base:
                tags["base"] = _stem(meta.base)
        if self.alternatives:
            tags["alternatives"] = "yes"
        return tags


def _stem(relative: str) -> str:
    return relative.removesuffix(".md")


# -- reading one file ---------------------------------------------------------------------------------------------


def library_dir() -> Path:
    """``STABILITY_LIBRARY_DIR``, else this checkout's ``constitutions/``, else the installed package's copy."""
    return library_root()


def _front_matter_text(text: str) -> str:
    lines = text.splitlines()
    for end in range(1, len(lines)):
        if lines[end].strip() in ("---", "..."):
            return "\n".join(lines[1:end])
    return ""


def read_entry(path: Path, root: Path) -> LibraryEntry:
    """Parse one library file and check its metadata against the schema and its own principles."""
    text = read_text(path)
    constitution = parse_text(text, path=str(path))
    raw = dict(constitution.metadata)
    front = _front_matter_text(text)
    if not raw:
        raise InputError(str(path), 1, "no front matter: a library file starts with '---' metadata (see README)")
    condition = raw.get("condition")
    if condition not in CONDITIONS:
        raise InputError(str(path), yaml_line(front, ("condition",), 2),
                         f"metadata condition: {condition!r} is not one of {', '.join(CONDITIONS)}")
    relative = path.relative_to(root)
    folder = relative.parts[0] if len(relative.parts) > 1 else ""
    if folder != condition:
        raise InputError(str(path), yaml_line(front, ("condition",), 2),
                         f"metadata condition {condition!r} does not match its folder {folder or '(root)'!r}")
    try:
        metadata = _METADATA.validate_python(raw)
    except ValidationError as err:
        loc, message = first_problem(err, CONDITIONS)
        raise InputError(str(path), yaml_line(front, loc, 2), f"metadata {where(loc)}: {message}") from None
    n = len(constitution.principles)
    if metadata.size != n:
        raise InputError(str(path), yaml_line(front, ("size",), 2),
                         f"metadata size: says {metadata.size} but the file has {n} principles")
    numbers: list[tuple[tuple[int | str, ...], int]] = []
    if isinstance(metadata, ContradictoryMeta):
        for i, clash in enumerate(metadata.clashes):
            numbers += [(("clashes", i, "a"), clash.a), (("clashes", i, "b"), clash.b)]
    if isinstance(metadata, AxesMeta):
        numbers += [(("changes", i), number) for i, number in enumerate(metadata.changes)]
    for loc, number in numbers:
        if not 1 <= number <= n:
            raise InputError(str(path), yaml_line(front, loc, 2),
                             f"metadata {where(loc)}: principle {number} does not exist (the file has {n})")
    beside = alternatives_path(path)
    return LibraryEntry(name=relative.with_suffix("").as_posix(), path=str(path), title=constitution.title,
                        hash=constitution.hash, principles=constitution.principles, metadata=metadata,
                        alternatives=str(beside) if beside.exists() else None)


# -- the whole library --------------------------------------------------------------------------------------------


def library_problems(root: Path | str | None = None) -> tuple[list[LibraryEntry], list[InputError]]:
    """Read every file under ``root`` and check it and its links. Returns the good entries and every problem."""
    base = Path(root) if root is not None else library_dir()
    if not base.is_dir():
        raise InputError(str(base), None, "constitution library folder not found")
    entries: dict[str, LibraryEntry] = {}
    problems: list[InputError] = []
    for path in sorted(p for p in base.rglob("*") if p.is_file()):
        relative = path.relative_to(base)
        if path.name == "README.md" or any(part.startswith(".") for part in relative.parts):
            continue
        try:
            if path.name.endswith(ALTERNATIVES_SUFFIX):
                if not path.with_name(path.name.removesuffix(ALTERNATIVES_SUFFIX) + ".md").exists():
                    raise InputError(str(path), None, "alternatives with no constitution beside them")
            elif path.suffix == ".md":
                entry = read_entry(path, base)
                entries[relative.as_posix()] = entry
            else:
                raise InputError(str(path), None, "not a library file (expected NAME.md or NAME.alternatives.yaml)")
        except InputError as err:
            problems.append(err)
    for key, entry in entries.items():
        try:
            _check_links(key, entry, entries)
            if entry.alternatives:
                load_alternatives(entry.path)
            elif entry.metadata.main:
                raise InputError(entry.path, None, f"main: true but no {alternatives_path(entry.path).name} beside it")
        except InputError as err:
            problems.append(err)
    try:
        _check_sweeps(list(entries.values()))
    except InputError as err:
        problems.append(err)
    good = [e for e in entries.values() if not any(p.path == e.path for p in problems)]
    return good, problems


def _linked(entry: LibraryEntry, key: str, target: str, entries: dict[str, LibraryEntry]) -> LibraryEntry | None:
    """The entry a link names; None when that file exists but has problems of its own (reported for it)."""
    if target in entries:
        return entries[target]
    if (Path(entry.path).parents[1] / target).is_file():
        return None
    raise InputError(entry.path, None, f"metadata {key}: {target!r} is not a library file")


def _check_links(relative: str, entry: LibraryEntry, entries: dict[str, LibraryEntry]) -> None:
    meta = entry.metadata
    if isinstance(meta, ContradictoryMeta):
        twin = _linked(entry, "twin", meta.twin, entries)
        if twin is None:
            return
        twin_meta = twin.metadata
        if not isinstance(twin_meta, ConsistentMeta) or twin_meta.repairs != relative:
            raise InputError(entry.path, None, f"metadata twin: {meta.twin} must be consistent/ with "
                                               f"repairs: {relative}")
        _check_repair(entry, meta, twin)
    elif isinstance(meta, ConsistentMeta) and meta.repairs is not None:
        original = _linked(entry, "repairs", meta.repairs, entries)
        if original is not None and (not isinstance(original.metadata, ContradictoryMeta)
                                     or original.metadata.twin != relative):
            raise InputError(entry.path, None, f"metadata repairs: {meta.repairs} must be contradictory/ with "
                                               f"twin: {relative}")
    elif isinstance(meta, NeutralMeta):
        pair = _linked(entry, "pair", meta.pair, entries)
        if pair is not None and (pair.metadata.condition == "neutral"
                                 or (pair.metadata.size, pair.metadata.style) != (meta.size, meta.style)):
            raise InputError(entry.path, None, f"metadata pair: {meta.pair} must be value-laden (not neutral) with "
                                               f"the same size and style ({meta.size}, {meta.style}), it has "
                                               f"({pair.metadata.size}, {pair.metadata.style})")
    elif isinstance(meta, AxesMeta) and meta.base is not None:
        base = _linked(entry, "base", meta.base, entries)
        if base is None:
            return
        if not isinstance(base.metadata, AxesMeta) or base.metadata.axis != "base":
            raise InputError(entry.path, None, f"metadata base: {meta.base} is not the base of a sweep (axis: base)")
        if len(base.principles) != len(entry.principles):
            raise InputError(entry.path, None, f"an axis variant keeps its base's size: {len(entry.principles)} "
                                               f"principles here, {len(base.principles)} in {meta.base}")
        differ = [i + 1 for i, (a, b) in enumerate(zip(base.principles, entry.principles, strict=True)) if a != b]
        if sorted(meta.changes) != differ:
            raise InputError(entry.path, None, f"metadata changes: says {sorted(meta.changes)} but the principles "
                                               f"that differ from {meta.base} are {differ}")


def _check_repair(entry: LibraryEntry, meta: ContradictoryMeta, twin: LibraryEntry) -> None:
    """The twin keeps every principle outside the clashes, in order, and rewrites no more than the clashing ones."""
    clashing = {n for clash in meta.clashes for n in (clash.a, clash.b)}
    untouched = [p for i, p in enumerate(entry.principles, 1) if i not in clashing]
    kept = [p for p in twin.principles if p in untouched]
    if kept != untouched:
        missing = next((p for p in untouched if p not in twin.principles), None)
        problem = f"drops {missing!r}" if missing else "reorders the principles outside the clashes"
        raise InputError(entry.path, None, f"twin {twin.name} must differ only by the repair, but it {problem}")
    added = [p for p in twin.principles if p not in entry.principles]
    if len(added) > len(clashing):
        raise InputError(entry.path, None, f"twin {twin.name} adds {len(added)} new principles, more than the "
                                           f"{len(clashing)} clashing ones it repairs")
    if twin.hash == entry.hash:
        raise InputError(entry.path, None, f"twin {twin.name} is identical: nothing was repaired")


def _check_sweeps(entries: list[LibraryEntry]) -> None:
    """Within one base, no two files share an axis value; priority orders are permutations of the base's."""
    bases: dict[str, AxesMeta] = {}
    for e in entries:
        if isinstance(e.metadata, AxesMeta) and e.metadata.position:
            bases[e.name + ".md"] = e.metadata
    seen: dict[tuple[str, str, str], str] = {}
    for relative, base_meta in bases.items():
        for axis, value in (base_meta.position or {}).items():
            seen[(relative, axis, value)] = f"the position of the base {relative}"
    for entry in entries:
        meta = entry.metadata
        if not isinstance(meta, AxesMeta) or meta.base is None or meta.base not in bases:
            continue
        key = (meta.base, meta.axis, meta.value)
        if key in seen:
            raise InputError(entry.path, None, f"axis {meta.axis}={meta.value} is already {seen[key]}")
        seen[key] = entry.name
        base_order = (bases[meta.base].position or {}).get("priority-order", "")
        if meta.axis == "priority-order" and set(meta.value.split(">")) != set(base_order.split(">")):
            raise InputError(entry.path, None, f"priority-order {meta.value} does not reorder the values of "
                                               f"its base ({base_order})")


def load_library(root: Path | str | None = None) -> list[LibraryEntry]:
    """Every library entry, checked; the first problem is raised (with a count of the others)."""
    entries, problems = library_problems(root)
    if problems:
        first = problems[0]
        more = f" (and {len(problems) - 1} more: run `stability constitutions check`)" if len(problems) > 1 else ""
        raise InputError(first.path, first.line, first.problem + more)
    return sorted(entries, key=lambda e: e.name)


def parse_tags(pairs: list[str]) -> dict[str, str]:
    tags: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise StabilityError(f"--tag {pair!r}: expected KEY=VALUE, e.g. --tag condition=contradictory")
        tags[key.strip()] = value.strip()
    return tags


def list_constitutions(tags: list[str] | None = None, root: Path | str | None = None) -> list[LibraryEntry]:
    """The library entries whose tags match every ``K=V`` (a value matches one of a comma-joined list)."""
    wanted = parse_tags(tags or [])
    entries = load_library(root)
    known = {key for entry in entries for key in entry.tags}
    for key in wanted:
        if key not in known:
            raise StabilityError(f"--tag {key}=…: no entry has tag {key!r} (tags: {', '.join(sorted(known))})")

    def matches(entry: LibraryEntry) -> bool:
        have = entry.tags
        return all(key in have and value in have[key].split(",") + [have[key]] for key, value in wanted.items())

    return [entry for entry in entries if matches(entry)]


def find_constitution(name: str, root: Path | str | None = None) -> LibraryEntry:
    """An entry by its name (``consistent/minimal``), its file (``…/minimal.md``) or a unique last part."""
    entries = load_library(root)
    wanted = name.removesuffix(".md").removeprefix("constitutions/")
    exact = [e for e in entries if e.name == wanted]
    if exact:
        return exact[0]
    last = [e for e in entries if e.name.rsplit("/", 1)[-1] == wanted]
    if len(last) == 1:
        return last[0]
    if len(last) > 1:
        raise StabilityError(f"{name!r} is ambiguous: {', '.join(e.name for e in last)}")
    close = difflib.get_close_matches(wanted, [e.name for e in entries] + [e.name.split("/")[-1] for e in entries],
                                      n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else " (`stability constitutions` lists them)"
    raise StabilityError(f"no library constitution named {name!r}{hint}")
