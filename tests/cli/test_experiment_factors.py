"""``stability experiments`` sees every run setting a spec varies: a framing factor (``templates``) is a varied
factor, and replicates are counted per combination of all the others (issue 27: it said ``varied: [seed]`` and
``replicates: 4``)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from stability.cli.app import app
from stability.experiment.runner import register_experiment
from stability.experiment.spec import expand, load_spec
from stability.store import Store

runner = CliRunner()


def _registered(tmp_path: Path, spec_text: str) -> Path:
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(spec_text)
    spec = load_spec(spec_path)
    db = tmp_path / "s.duckdb"
    with Store.open(db) as store:
        register_experiment(store, spec, spec_path, expand(spec, spec_path))
    return db


def test_a_template_variant_grid_is_a_varied_factor_with_its_replicates(tmp_path: Path) -> None:
    db = _registered(tmp_path, "name: framing\nmodels: [scripted/a]\nprotocols: [blank-slate]\n"
                               "templates: [default, neutral]\nreplicates: 2\n")
    listed = runner.invoke(app, ["experiments", "--db", str(db), "--json"])
    assert listed.exit_code == 0, listed.output
    [found] = json.loads(listed.output)
    assert found["varied"] == ["templates", "seed"]
    assert found["replicates"] == 2 and found["cells"] == 4
    assert found["factors"]["templates"] == ["default", "neutral"]
    table = runner.invoke(app, ["experiments", "--db", str(db)], terminal_width=200)
    assert table.exit_code == 0 and "templates: default, neutral" in table.output


def test_every_sampling_setting_a_spec_varies_is_a_varied_factor(tmp_path: Path) -> None:
    db = _registered(tmp_path, "name: sampling\nmodels: [scripted/a]\nprotocols: [blank-slate]\n"
                               "parameters: {answer_format: [text, structured], thinking_budget: [1024, 2048]}\n")
    listed = runner.invoke(app, ["experiments", "--db", str(db), "--json"])
    [found] = json.loads(listed.output)
    assert found["varied"] == ["thinking_budget", "answer_format"] and found["replicates"] == 1
