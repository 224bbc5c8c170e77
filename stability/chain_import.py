"""``stability import-chain``: a revision history someone else produced, stored as one run of protocol ``external``.

Where the versions come from, in the order given:

- files, as given; a folder, its files in natural sort order (``v2`` before ``v10``; hidden files left out);
- ``--git FILE``: the file's git history, oldest commit first (renames followed);
- a ``.jsonl`` (or ``.ndjson``) file: one JSON object per line with a ``constitution`` string and optional
  ``model``, ``prompt`` and ``answer`` strings (a line with a prompt or an answer is stored as the call that made
  its version; other fields are kept as the version's provenance).

Each version is read by :func:`stability.documents.read_document` (headings, nested bullets, paragraphs: never
refused for its shape) and becomes a node; the first is the run's start (``origin``), each later one ``changed``,
or ``declined`` where it is the same as the one before; a return to an earlier node is marked as a cycle as the
walk marks one. Every version's source (path, commit, line), the label and each principle's reading (kind,
section, parents) are its provenance: the metadata of its ``constitution_sources`` row, under ``import`` and
``principle_readings``.

Everything is read and checked before the store is opened: bad input is one line naming the file and the
problem, and nothing is written.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import uuid
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from stability.documents import DocumentReading, read_document
from stability.errors import InputError, StabilityError
from stability.input_files import MAX_INPUT_BYTES, decode_text, read_text
from stability.provenance import git_commit, package_version
from stability.records import CallRecord, Decision, EdgeKind, EdgeRecord, RevisionRecord, RunRecord, now

PROTOCOL = "external"
#: a JSON-lines file holds every version, so it may be as large as many constitution files
MAX_LINES_BYTES = 32 * MAX_INPUT_BYTES
JSON_LINES = (".jsonl", ".ndjson")
EDGE_KIND: dict[Decision, EdgeKind] = {"changed": "edit", "declined": "decline"}


class Version(BaseModel):
    """One version of the chain, read and checked, nothing written yet."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(description="the file, FILE@COMMIT for a git version, FILE:LINE for a JSON line")
    reading: DocumentReading
    commit: str | None = None
    committed_at: str | None = None
    model: str | None = None
    prompt: str | None = None
    answer: str | None = None
    fields: dict[str, Any] = Field(default_factory=dict, description="a JSON line's other fields")


class ImportedChain(BaseModel):
    model_config = ConfigDict(extra="forbid")

    run_id: str
    versions: int
    nodes: int
    changed: int
    declined: int
    lines: list[str] = Field(description="one per version: what was read from it")


def natural_key(name: str) -> list[Any]:
    """Sort key that puts ``v2`` before ``v10``."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part.casefold()) for part in re.split(r"(\d+)", name)]


def _folder_files(folder: Path) -> list[Path]:
    files = sorted((p for p in folder.iterdir() if not p.name.startswith(".") and p.is_file()),
                   key=lambda p: natural_key(p.name))
    if not files:
        raise InputError(str(folder), None, "no files in the folder (expected one file per version)")
    return files


def _json_lines(path: Path) -> list[Version]:
    text = read_text(path, "a JSON-lines file of versions", limit=MAX_LINES_BYTES)
    versions = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as err:
            raise InputError(str(path), number, f"not a valid JSON line ({err.msg})") from None
        if not isinstance(entry, dict) or not isinstance(entry.get("constitution"), str):
            raise InputError(str(path), number, "expected an object with a 'constitution' string")
        for key in ("model", "prompt", "answer"):
            if entry.get(key) is not None and not isinstance(entry[key], str):
                raise InputError(str(path), number, f"'{key}' must be a string")
        source = f"{path}:{number}"
        versions.append(Version(source=source, reading=read_document(entry["constitution"], source),
                                model=entry.get("model"), prompt=entry.get("prompt"), answer=entry.get("answer"),
                                fields={k: v for k, v in entry.items()
                                        if k not in ("constitution", "model", "prompt", "answer")}))
    if not versions:
        raise InputError(str(path), None, "no versions (expected one JSON object per line)")
    return versions


def _git(args: list[str], where: Path, path: Path) -> bytes:
    try:
        done = subprocess.run(["git", "-C", str(where), *args], capture_output=True, timeout=120, check=False)
    except (OSError, subprocess.SubprocessError) as err:
        raise InputError(str(path), None, f"cannot run git ({err})") from None
    if done.returncode != 0:
        problem = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise InputError(str(path), None, f"git: {problem[-1] if problem else 'failed'}")
    return done.stdout


def _git_versions(path: Path) -> list[Version]:
    """The file's versions in its git history, oldest first (renames followed)."""
    if not path.exists() and not path.parent.is_dir():
        raise InputError(str(path), None, "no such file")
    folder = path.parent.resolve()
    top = Path(_git(["rev-parse", "--show-toplevel"], folder, path).decode().strip())
    relative = (folder / path.name).relative_to(top).as_posix()
    log = _git(["log", "--follow", "--format=%x00%H %cI", "--name-only", "--", relative], top, path).decode()
    entries = []
    for block in log.split("\x00")[1:]:
        lines = [line for line in block.splitlines() if line.strip()]
        commit, when = lines[0].split(" ", 1)
        entries.append((commit, when, lines[1] if len(lines) > 1 else relative))
    if not entries:
        raise InputError(str(path), None, "no commits in its git history")
    versions = []
    for commit, when, name in reversed(entries):
        source = f"{path}@{commit[:12]}"
        data = _git(["show", f"{commit}:{name}"], top, path)
        if len(data) > MAX_INPUT_BYTES:
            raise InputError(source, None, f"file too large ({len(data) / 1e6:.1f} MB; the limit is "
                                           f"{MAX_INPUT_BYTES / 1e6:.0f} MB)")
        versions.append(Version(source=source, reading=read_document(decode_text(data, source), source),
                                commit=commit, committed_at=when))
    return versions


def read_versions(paths: list[Path], git: Path | None = None) -> list[Version]:
    """Every version the sources name, in order (see the module's docstring); bad input raises."""
    if git is not None and paths:
        raise StabilityError("import-chain: give files or a folder, or --git FILE, not both")
    if git is not None:
        return _git_versions(git)
    if not paths:
        raise StabilityError("import-chain: give the versions (files, a folder, a .jsonl file) or --git FILE")
    versions: list[Version] = []
    for path in paths:
        files = _folder_files(path) if path.is_dir() else [path]
        for file in files:
            if file.suffix.lower() in JSON_LINES:
                versions += _json_lines(file)
            else:
                text = read_text(file, "a version of the constitution")
                versions.append(Version(source=str(file), reading=read_document(text, str(file))))
    return versions


def _call(run_id: str, step: int, version: Version, model: str) -> CallRecord:
    request = {"model": version.model or model,
               "messages": [{"role": "user", "content": version.prompt}] if version.prompt is not None else []}
    key = "sha256:" + hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()
    return CallRecord(id=f"c-{uuid.uuid4().hex[:12]}", run_id=run_id, step=step, purpose="external",
                      model=version.model or model, cache_key=key, sample_index=0, status="ok", request=request,
                      text=version.answer, created_at=now())


def import_chain(paths: list[Path], db: Path | str | None, model: str | None = None, label: str | None = None,
                 git: Path | None = None) -> ImportedChain:
    """Read the versions (nothing written on bad input), then store them as one run of protocol ``external``."""
    from stability.engine.prepare import IterateConfig
    from stability.engine.templates import TemplateSet
    from stability.protocols import protocol_class
    from stability.store.store import Store

    versions = read_versions(paths, git)
    models = {v.model for v in versions if v.model}
    run_model = model or (models.pop() if len(models) == 1 else "external")
    start = versions[0].reading.constitution
    run_id = "r-" + uuid.uuid4().hex[:12]
    created = now()
    sources = [v.source for v in versions]
    options = protocol_class(PROTOCOL).configure(
        {"label": label, "sources": sources, "git": str(git) if git else None}).options.model_dump()
    config = IterateConfig.model_validate({"protocol": PROTOCOL, "model": run_model, "constitution": sources[0],
                                           "options": options})
    templates = TemplateSet([], config.templates)  # none: the hash of no template, as a resume recomputes it
    run = RunRecord(id=run_id, protocol=PROTOCOL, model=run_model,
                    config={**config.model_dump(), "templates": config.templates}, seed=config.seed,
                    start_hash=start.hash, template_hash=templates.hash, package_version=package_version(),
                    git_commit=git_commit(), status="done", stop_reason="imported", created_at=created,
                    finished_at=created)
    visited: dict[str, str] = {}
    changed = declined = 0
    with Store.open(db) as store:
        store.insert_run(run)
        parent: RevisionRecord | None = None
        for step, version in enumerate(versions):
            constitution = version.reading.constitution
            digest = store.put_constitution(constitution)
            store.add_source(constitution.model_copy(update={"metadata": {
                **constitution.metadata, "import": {"label": label, "step": step, "run": run_id,
                                                    "commit": version.commit, "committed_at": version.committed_at,
                                                    "model": version.model, "fields": version.fields},
                "principle_readings": [r.model_dump(exclude_defaults=True) for r in version.reading.principles]}}),
                version.source)
            decision: Decision = "origin" if parent is None else (
                "declined" if digest == parent.constitution_hash else "changed")
            changed += decision == "changed"
            declined += decision == "declined"
            calls = []
            if parent is not None and (version.prompt is not None or version.answer is not None):
                calls = [_call(run_id, step, version, run_model)]
                store.insert_call(calls[0])
            revision = RevisionRecord(id=f"{run_id}:{step}", run_id=run_id, step=step, constitution_hash=digest,
                                      parent_id=parent.id if parent else None, decision=decision,
                                      cycle_to=visited.get(digest) if decision == "changed" else None,
                                      detail=version.source, created_at=now())
            edge = None if parent is None else EdgeRecord(
                id=revision.id, run_id=run_id, source_id=parent.id, target_id=revision.id,
                source_hash=parent.constitution_hash, target_hash=digest, kind=EDGE_KIND[decision],
                protocol=PROTOCOL, call_ids=[c.id for c in calls])
            store.insert_revision(revision, edge)
            visited.setdefault(digest, revision.id)
            parent = revision
        store.flush()
    return ImportedChain(run_id=run_id, versions=len(versions), nodes=len(visited), changed=changed,
                         declined=declined, lines=[v.reading.summary(v.source) for v in versions])
