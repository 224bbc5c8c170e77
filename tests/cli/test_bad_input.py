"""Malformed files through the CLI: one line naming the file and the problem, exit status 2, nothing written."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.conftest import run_cli, write

GOOD = "- principle one\n- principle two\n"
UTF16 = "- principle one\n".encode("utf-16")
LATIN1 = "- café principle\n".encode("latin-1")
BINARY = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
HUGE_LINE = ("- " + "word " * 2_000_000 + "\n").encode()  # one 10 MB principle
MANY = "".join(f"- principle {i}\n" for i in range(150)).encode()  # over the 100-principle limit

SPEC_HEAD = "name: bad\nmodels: [scripted/decline]\nprotocols: [fresh-instance]\n"

# (name, file contents, command line with {f} for the file and {good} for a good constitution)
CASES: list[tuple[str, bytes | None, str]] = [
    ("c-empty.md", b"", "iterate -m scripted/decline -c {f}"),
    ("c-prose.md", b"Just some prose, no bullets at all.\n", "iterate -m scripted/decline -c {f}"),
    ("c-title-only.md", b"# A title\n", "iterate -m scripted/decline -c {f}"),
    ("c-empty-bullets.md", b"- \n- \n", "iterate -m scripted/decline -c {f}"),
    ("c-binary.md", BINARY, "iterate -m scripted/decline -c {f}"),
    ("c-latin1.md", LATIN1, "iterate -m scripted/decline -c {f}"),
    ("c-utf16.md", UTF16, "iterate -m scripted/decline -c {f}"),
    ("c-huge-line.md", HUGE_LINE, "iterate -m scripted/decline -c {f}"),
    ("c-many.md", MANY, "iterate -m scripted/decline -c {f}"),
    ("c-huge-many.md", "".join(f"- p{i}\n" for i in range(400_000)).encode(), "iterate -m scripted/decline -c {f}"),
    ("c-missing.md", None, "iterate -m scripted/decline -c {f}"),
    ("c-dir.md", b"<dir>", "iterate -m scripted/decline -c {f}"),
    ("s-empty.yaml", b"", "run {f}"),
    ("s-list.yaml", b"- a\n- b\n", "run {f}"),
    ("s-bad-yaml.yaml", b"name: [unclosed\n", "run {f}"),
    ("s-tabs.yaml", b"name: x\n\tmodels: [a]\n", "run {f}"),
    ("s-binary.yaml", BINARY, "run {f}"),
    ("s-latin1.yaml", "name: café\n".encode("latin-1"), "run {f}"),
    ("s-models-int.yaml", b"name: x\nmodels: 5\nprotocols: [fresh-instance]\n", "run {f}"),
    ("s-unknown-key.yaml", SPEC_HEAD.encode() + b"colour: blue\n", "run {f}"),
    ("s-replicates-neg.yaml", SPEC_HEAD.encode() + b"replicates: -1\n", "run {f}"),
    ("s-replicates-str.yaml", SPEC_HEAD.encode() + b"replicates: three\n", "run {f}"),
    ("s-no-protocols.yaml", b"name: x\nmodels: [scripted/decline]\n", "run {f}"),
    ("s-unknown-protocol.yaml", b"name: x\nmodels: [scripted/decline]\nprotocols: [nope]\n", "run {f}"),
    ("s-unknown-model.yaml", b"name: x\nmodels: [gtp-4o]\nprotocols: [fresh-instance]\n", "run {f}"),
    ("s-glob-nothing.yaml", SPEC_HEAD.encode() + b"constitutions: [/nonexistent/*.md]\n", "run {f}"),
    ("s-bad-parameter.yaml", SPEC_HEAD.encode() + b"parameters: {colour: [1]}\n", "run {f}"),
    ("s-name-spaces.yaml", b"name: has spaces\nmodels: [scripted/decline]\nprotocols: [fresh-instance]\n",
     "run {f}"),
    ("s-grid-not-list.yaml", b"name: x\nmodels: [scripted/decline]\nprotocols:\n  - name: fresh-instance\n"
                             b"    grid: {max_steps: 3}\n", "run {f}"),
    ("s-bad-option.yaml", b"name: x\nmodels: [scripted/decline]\nprotocols:\n  - name: fresh-instance\n"
                          b"    options: {max_steps: many}\n", "run {f}"),
    ("s-huge.yaml", b"name: x\nmodels: [scripted/decline]\nprotocols: [fresh-instance]\nseeds: ["
     + b",".join(b"%d" % i for i in range(500_000)) + b"]\nconstitutions: [/nonexistent.md]\n", "run {f}"),
    ("p-prices.yaml", b"openai/x: {input: cheap}\n", "run {good_spec} --prices {f}"),
    ("o-options-list.yaml", b"- a\n", "iterate -m scripted/decline -c {good} --options {f}"),
    ("o-options-latin1.yaml", "max_steps: 3 # café\n".encode("latin-1"),
     "iterate -m scripted/decline -c {good} --options {f}"),
    ("o-options-unknown.yaml", b"colour: blue\n", "iterate -m scripted/decline -c {good} --options {f}"),
    ("o-options-missing.yaml", None, "iterate -m scripted/decline -c {good} --options {f}"),
    ("a-alternatives.md", BINARY, "iterate -m scripted/decline -c {good} -p rate-alternatives --alternatives {f}"),
    ("i-oct-not-json.json", b"{not json", "import {f} --format oct -o {out}"),
    ("i-oct-object.json", b'{"trait": "x"}', "import {f} --format oct -o {out}"),
    ("i-oct-wrong-types.json", b'[{"trait": 5, "questions": "q"}]', "import {f} --format oct -o {out}"),
    ("i-oct-latin1.json", '[{"trait": "café", "questions": []}]'.encode("latin-1"),
     "import {f} --format oct -o {out}"),
    ("i-identities-empty.json", b"[]", "import {f} --format identities -o {out}"),
    ("i-identities-types.json", b'[{"name": 1, "description": [], "boundary": null, "system_prompt": {}}]',
     "import {f} --format identities -o {out}"),
    ("i-placeholders.yaml", b"- not a mapping\n",
     "import {identities} --format identities -o {out} --placeholders {f}"),
]


def _digest(db: Path) -> str:
    return "".join(hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(db.parent.glob(db.name + "*")))


def _cli(args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    code, _, err = run_cli(args, capsys, monkeypatch)
    return code, err


def test_malformed_files_give_one_line_exit_2_and_write_nothing(tmp_path: Path, db: Path,
                                                               capsys: pytest.CaptureFixture[str],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    assert len(CASES) >= 30
    good = write(tmp_path / "good.md", GOOD)
    good_spec = write(tmp_path / "good.yaml", SPEC_HEAD + f"constitutions: [{good}]\n")
    identities = write(tmp_path / "identities.json", json.dumps([{
        "name": "n", "description": "d", "boundary": "b", "system_prompt": "I am {name}."}]))
    out = tmp_path / "out"
    code, err = _cli(["iterate", "-m", "scripted/decline", "-c", str(good), "--db", str(db)], capsys, monkeypatch)
    assert code == 0, err
    before = _digest(db)
    problems = []
    for name, content, command in CASES:
        path = tmp_path / "bad" / name
        path.parent.mkdir(exist_ok=True)
        if content == b"<dir>":
            path.mkdir()
        elif content is not None:
            path.write_bytes(content)
        args = command.format(f=path, good=good, good_spec=good_spec, out=out, identities=identities).split()
        code, err = _cli([*args, "--db", str(db)] if args[0] != "import" else args, capsys, monkeypatch)
        lines = err.strip().splitlines()
        named = name
        if code != 2 or len(lines) != 1 or named not in lines[0] or "Traceback" in err:
            problems.append(f"{name}: exit {code}: {err.strip()[:300]}")
        elif _digest(db) != before or out.exists():
            problems.append(f"{name}: wrote something")
    assert problems == []


# -- bad values, wrong kinds of file, and stores that must not be created (issue 19) ------------------------------

SPEC = "name: bad\nmodels: [scripted/decline]\nprotocols: [fresh-instance]\nconstitutions: [{good}]\n"
HUGE_SEED = str(2**64 + 1)

# (id, files to write {name: text or "<dir>"}, command line, fragments the one line must hold, what must not change)
# In command lines {t} is the test's folder, {good} a good constitution, {db} the store. "store": the store's bytes
# stay the same; "none": the named path (the last {t}/... argument given as `absent`) must not come to exist.
VALUES: list[tuple[str, dict[str, str], str, tuple[str, ...], str]] = [
    ("max-tokens-negative", {}, "iterate -m scripted/decline -c {good} --max-tokens -5", ("--max-tokens -5",), "store"),
    ("max-tokens-zero", {}, "iterate -m scripted/decline -c {good} --max-tokens 0", ("--max-tokens 0",), "store"),
    ("seed-over-2^64", {}, "iterate -m scripted/decline -c {good} --seed " + HUGE_SEED, ("--seed " + HUGE_SEED,),
     "store"),
    ("seed-under-minus-2^63", {}, "iterate -m scripted/decline -c {good} --seed -" + HUGE_SEED,
     ("--seed -" + HUGE_SEED,), "store"),
    ("temperature-nan", {}, "iterate -m scripted/decline -c {good} --temperature nan", ("--temperature nan",), "store"),
    ("temperature-inf", {}, "iterate -m scripted/decline -c {good} --temperature inf", ("--temperature inf",), "store"),
    ("temperature-negative", {}, "iterate -m scripted/decline -c {good} --temperature -0.5", ("--temperature -0.5",),
     "store"),
    ("temperature-high", {}, "iterate -m scripted/decline -c {good} --temperature 7", ("--temperature 7",), "store"),
    ("model-provider-only", {}, "iterate -m openai/ -c {good}", ("'openai/'", "give a model name"), "store"),
    ("editor-unknown", {}, "iterate -m scripted/decline -c {good} -p multi-agent-discussion --editor nobody",
     ("editor 'nobody' is not one of the agents",), "store"),
    ("constitution-dev-zero", {}, "iterate -m scripted/decline -c /dev/zero", ("/dev/zero", "not a regular file"),
     "store"),
    ("constitution-folder", {"folder.md": "<dir>"}, "iterate -m scripted/decline -c {t}/folder.md",
     ("folder.md", "is a directory, expected a Markdown constitution"), "store"),
    ("constitution-nested", {"nested.md": "- one\n  - one point one\n- two\n"},
     "iterate -m scripted/decline -c {t}/nested.md", ("nested.md:2: nested bullet",), "store"),
    ("constitution-zero-width", {"zw.md": "- fine\n- \u200b\u200d\n"}, "iterate -m scripted/decline -c {t}/zw.md",
     ("zw.md:2: principle has no visible characters",), "store"),
    ("constitution-blank-letters", {"blank.md": "- \u3164\u2800\n- fine\n"},
     "iterate -m scripted/decline -c {t}/blank.md", ("blank.md:1: principle has no visible characters",), "store"),
    ("constitution-ansi-duplicate", {"ansi.md": "- \x1b[31mred\n- \x1b[31mRED\n"},
     "iterate -m scripted/decline -c {t}/ansi.md", ("ansi.md:2: duplicate principle", "\\x1b[31mRED"), "store"),
    ("options-folder", {"opts": "<dir>"}, "iterate -m scripted/decline -c {good} --options {t}/opts",
     ("opts", "is a directory, expected a YAML file of protocol options"), "store"),
    ("options-bad-yaml-line", {"opts.yaml": "max_steps: 3\nrounds: [1\n"},
     "iterate -m scripted/decline -c {good} --options {t}/opts.yaml", ("opts.yaml:3: not valid YAML",), "store"),
    ("options-bad-value-line", {"opts.yaml": "# options\noptions:\n  declines: 2\n  max_steps: many\n"},
     "iterate -m scripted/decline -c {good} --options {t}/opts.yaml", ("opts.yaml:4: options.max_steps",), "store"),
    ("options-overridden-by-flag", {"opts.yaml": "max_steps: many\n"},
     "iterate -m scripted/decline -c {good} --options {t}/opts.yaml --max-steps -3",
     ("option max_steps",), "store"),
    ("resume-missing-db", {}, "iterate --resume r-nothing --db {t}/new.duckdb", ("new.duckdb", "no such database"),
     "none:new.duckdb"),
    ("spec-concurrency-zero", {"s.yaml": SPEC + "concurrency: {openai: 0}\n"}, "run {t}/s.yaml",
     ("s.yaml:5: concurrency.openai",), "store"),
    ("spec-concurrency-negative", {"s.yaml": SPEC + "concurrency: {default: -1}\n"}, "run {t}/s.yaml",
     ("s.yaml:5: concurrency.default",), "store"),
    ("spec-rate-limit-zero", {"s.yaml": SPEC + "rate_limits: {openai: 0}\n"}, "run {t}/s.yaml",
     ("s.yaml:5: rate_limits.openai",), "store"),
    ("spec-rate-limit-nan", {"s.yaml": SPEC + "rate_limits: {openai: .nan}\n"}, "run {t}/s.yaml",
     ("s.yaml:5: rate_limits.openai",), "store"),
    ("spec-seed-over-2^64", {"s.yaml": SPEC + f"seeds: [1, {HUGE_SEED}]\n"}, "run {t}/s.yaml",
     ("s.yaml:5: seeds.1",), "store"),
    ("spec-temperature-word", {"s.yaml": SPEC + "parameters: {temperature: [hot]}\n"}, "run {t}/s.yaml",
     ("s.yaml:5: parameters", "temperature[0] = 'hot'"), "store"),
    ("spec-max-tokens-negative", {"s.yaml": SPEC + "parameters: {max_tokens: [100, -5]}\n"}, "run {t}/s.yaml",
     ("s.yaml:5: parameters", "max_tokens[1] = -5"), "store"),
    ("spec-top-p-zero", {"s.yaml": SPEC + "parameters: {top_p: [0]}\n"}, "run {t}/s.yaml",
     ("s.yaml:5: parameters", "top_p[0] = 0"), "store"),
    ("spec-replicates-billion", {"s.yaml": SPEC + "replicates: 1000000000\n"}, "run {t}/s.yaml --dry-run",
     ("s.yaml:5: replicates",), "store"),
    ("spec-grid-too-large", {"s.yaml": SPEC + "replicates: 100000\nparameters: {temperature: [0.1, 0.2, 0.3]}\n"},
     "run {t}/s.yaml --dry-run", ("s.yaml", "300,000 runs"), "store"),
    ("spec-dev-zero", {}, "run /dev/zero", ("/dev/zero", "not a regular file, expected a YAML experiment spec"),
     "store"),
    ("spec-folder", {"spec.yaml": "<dir>"}, "run {t}/spec.yaml",
     ("spec.yaml", "is a directory, expected a YAML experiment spec"), "store"),
    ("prices-folder", {"s.yaml": SPEC, "prices": "<dir>"}, "run {t}/s.yaml --prices {t}/prices",
     ("prices", "is a directory, expected a YAML file of prices"), "store"),
    ("prices-negative", {"s.yaml": SPEC, "p.yaml": "openai/x: {input: 1, output: 1}\nopenai/y: {input: -1}\n"},
     "run {t}/s.yaml --prices {t}/p.yaml", ("p.yaml:2: openai/y.input",), "store"),
    ("max-cost-nan", {"s.yaml": SPEC}, "run {t}/s.yaml --max-cost nan", ("--max-cost nan",), "store"),
    ("max-cost-negative", {"s.yaml": SPEC}, "run {t}/s.yaml --max-cost -5", ("--max-cost -5",), "store"),
    ("max-cost-inf", {"s.yaml": SPEC}, "run {t}/s.yaml --max-cost inf", ("--max-cost inf",), "store"),
    ("run-resume-missing-db", {"s.yaml": SPEC}, "run {t}/s.yaml --resume --db {t}/new.duckdb",
     ("new.duckdb", "no such database"), "none:new.duckdb"),
    ("runs-missing-db", {}, "runs --db {t}/typo.duckdb", ("typo.duckdb", "no such database"), "none:typo.duckdb"),
    ("show-missing-db", {}, "show r-x --db {t}/typo.duckdb", ("typo.duckdb", "no such database"), "none:typo.duckdb"),
    ("analyze-missing-db", {}, "analyze --all --embedder hashing --db {t}/typo.duckdb",
     ("typo.duckdb", "no such database"), "none:typo.duckdb"),
    ("report-missing-db", {}, "report --all --embedder hashing --db {t}/typo.duckdb -o {t}/r.html",
     ("typo.duckdb", "no such database"), "none:typo.duckdb"),
    ("graph-missing-db", {}, "graph --all --db {t}/typo.duckdb", ("typo.duckdb", "no such database"),
     "none:typo.duckdb"),
    ("report-into-missing-folder", {}, "report --all --embedder hashing -o {t}/nowhere/r.html",
     ("nowhere/r.html", "no folder"), "none:nowhere"),
    ("report-onto-folder", {"out": "<dir>"}, "report --all --embedder hashing -o {t}/out",
     ("out", "is a directory, expected a file to write"), "store"),
    ("graph-onto-folder", {"out": "<dir>"}, "graph --all -o {t}/out", ("out", "is a directory"), "store"),
    ("db-truncated", {}, "runs --db {t}/truncated.duckdb", ("truncated.duckdb", "cannot "),
     "store"),
    ("db-not-duckdb", {"text.duckdb": "just some text\n"}, "show r-x --db {t}/text.duckdb",
     ("text.duckdb", "cannot open as a DuckDB database"), "store"),
    ("db-folder", {"dir.duckdb": "<dir>"}, "iterate -m scripted/decline -c {good} --db {t}/dir.duckdb",
     ("dir.duckdb", "is a directory"), "store"),
]


@pytest.mark.parametrize(("case", "files", "command", "fragments", "unchanged"), VALUES, ids=[v[0] for v in VALUES])
def test_bad_values_give_one_line_exit_2_and_write_nothing(
        case: str, files: dict[str, str], command: str, fragments: tuple[str, ...], unchanged: str, tmp_path: Path,
        db: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    good = write(tmp_path / "good.md", GOOD)
    code, err = _cli(["iterate", "-m", "scripted/decline", "-c", str(good), "--db", str(db)], capsys, monkeypatch)
    assert code == 0, err
    (tmp_path / "truncated.duckdb").write_bytes(db.read_bytes()[: db.stat().st_size // 3])
    for name, text in files.items():
        if text == "<dir>":
            (tmp_path / name).mkdir()
        else:
            write(tmp_path / name, text.replace("{good}", str(good)))
    before = _digest(db), _digest(tmp_path / "truncated.duckdb")
    args = command.format(t=tmp_path, good=good).split()
    code, err = _cli(args if "--db" in args else [*args, "--db", str(db)], capsys, monkeypatch)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err and "\x1b" not in err, err
    assert all(fragment in lines[0] for fragment in fragments), lines[0]
    assert "did you mean" not in lines[0] and "Value error" not in lines[0], lines[0]
    assert (_digest(db), _digest(tmp_path / "truncated.duckdb")) == before
    if unchanged.startswith("none:"):
        assert not (tmp_path / unchanged.removeprefix("none:")).exists()


def test_a_stored_run_with_values_now_out_of_range_is_refused_on_resume(
        tmp_path: Path, db: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A run stored before values were range-checked (``--temperature nan`` used to be stored) resumes to one line."""
    import duckdb

    good = write(tmp_path / "good.md", GOOD)
    code, err = _cli(["iterate", "-m", "scripted/decline", "-c", str(good), "--db", str(db)], capsys, monkeypatch)
    assert code == 0, err
    con = duckdb.connect(str(db))
    con.execute("UPDATE runs SET status = 'failed', config = json_merge_patch(config, '{\"temperature\": \"nan\"}')")
    [(run_id,)] = con.execute("SELECT id FROM runs").fetchall()
    con.close()
    before = _digest(db)
    code, err = _cli(["iterate", "--resume", run_id, "--db", str(db)], capsys, monkeypatch)
    [line] = err.strip().splitlines()
    assert code == 2 and f"run {run_id} cannot be resumed: its temperature is invalid" in line, err
    assert _digest(db) == before
