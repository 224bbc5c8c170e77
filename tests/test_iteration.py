from __future__ import annotations

from pathlib import Path

import pytest

from stability.engine import IterateConfig, iterate, resume
from stability.errors import InputError, StabilityError
from stability.models import scripted
from stability.models.scripted import ScriptedModel
from stability.store import Store
from stability.vocabulary import Message
from tests.conftest import write


def grow(messages: list[Message]) -> str:
    """Add one principle per step until there are four, then decline."""
    lines = [line for line in messages[-1].content.splitlines() if line.startswith("- ")]
    if len(lines) >= 4:
        return "NO CHANGE"
    return "REVISED CONSTITUTION:\n" + "\n".join(lines + [f"- principle {len(lines) + 1}"])


class Crashy:
    """A scripted model whose behaviour a test can switch: fail from the n-th call on, then heal."""

    def __init__(self) -> None:
        self.fail_from: int | None = None
        self.model = ScriptedModel(fn=self.answer, name="scripted/crashy")

    def answer(self, messages: list[Message]) -> str:
        if self.fail_from is not None and len(self.model.calls) >= self.fail_from:
            raise ValueError("provider rejected the request")
        return grow(messages)


def test_failed_run_resumes_without_resending_completed_calls(tmp_path: Path, db: Path) -> None:
    crashy = Crashy()
    scripted.register("crashy", lambda: crashy.model)
    start = write(tmp_path / "c.md", "- principle 1\n")
    crashy.fail_from = 3
    failed = iterate(IterateConfig(model="scripted/crashy", constitution=str(start)), db)
    assert failed.run.status == "failed" and "provider rejected" in (failed.run.error or "")
    with Store.open(db) as store:
        [run] = store.runs()
        assert run.status == "failed" and run.stop_reason == "error"
        assert [r.decision for r in store.revisions(run.id)] == ["origin", "changed", "changed", "error"]
    crashy.fail_from = None
    sent_before = len(crashy.model.calls)
    result = resume(run.id, db)
    assert result.run.status == "done" and result.run.stop_reason == "declined"
    assert [r.decision for r in result.revisions] == ["origin", "changed", "changed", "changed", "declined",
                                                      "declined"]
    # Only the failed call and the ones after it were sent again.
    assert len(crashy.model.calls) - sent_before == 3
    assert result.sent == 3
    with Store.open(db) as store:
        ok = [c for c in store.calls(run.id) if c.status == "ok"]
        assert len(ok) == 5 and len({(c.cache_key, c.sample_index) for c in ok}) == 5


def test_identical_rerun_is_free_and_no_cache_pays(tmp_path: Path, db: Path) -> None:
    model = ScriptedModel(fn=grow, name="scripted/grow")
    scripted.register("grow", lambda: model)
    start = write(tmp_path / "c.md", "- principle 1\n")
    config = IterateConfig(model="scripted/grow", constitution=str(start), seed=7)
    first = iterate(config, db)
    paid = len(model.calls)
    second = iterate(config, db)
    assert len(model.calls) == paid and second.sent == 0
    assert [r.constitution_hash for r in first.revisions] == [r.constitution_hash for r in second.revisions]
    iterate(config.model_copy(update={"use_cache": False}), db)
    assert len(model.calls) == 2 * paid
    iterate(config.model_copy(update={"seed": 8}), db)
    assert len(model.calls) == 3 * paid


def test_resume_of_a_finished_run_is_refused(tmp_path: Path, db: Path) -> None:
    start = write(tmp_path / "c.md", "- a\n")
    result = iterate(IterateConfig(model="scripted/decline", constitution=str(start)), db)
    with pytest.raises(StabilityError, match="already finished"):
        resume(result.run.id, db)


@pytest.mark.parametrize(
    ("config", "error"),
    [
        ({"model": "scripted/decline", "constitution": "missing.md"}, "no such file"),
        ({"model": "nope/x", "constitution": "c.md"}, "unknown model"),
        ({"model": "scripted/decline", "constitution": "c.md", "protocol": "fresh-instanse"}, "did you mean"),
        ({"model": "scripted/decline", "constitution": "c.md", "options": {"max_steps": 0}}, "max_steps"),
        ({"model": "scripted/decline", "constitution": "c.md", "options": {"bogus": 1}}, "bogus"),
        ({"model": "scripted/decline", "constitution": "empty.md"}, "empty file"),
    ],
)
def test_bad_input_writes_nothing(tmp_path: Path, db: Path, monkeypatch: pytest.MonkeyPatch,
                                  config: dict[str, object], error: str) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "c.md", "- a\n")
    write(tmp_path / "empty.md", "")
    with pytest.raises(StabilityError, match=error):
        iterate(IterateConfig(**config), db)  # type: ignore[arg-type]
    assert not db.exists()


def test_input_error_is_a_stability_error() -> None:
    assert issubclass(InputError, StabilityError)
