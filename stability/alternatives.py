"""Alternatives for rate-alternatives: ``<name>.alternatives.yaml`` beside a constitution, one pool per principle.

Each alternative is tagged with its relation to the principle (paraphrase, weaker, stronger, opposite, neutral,
other-axis), so analysis can report "prefers stronger versions" rather than only mean ratings. The format is
documented in ``constitutions/README.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from stability.constitution import Constitution, normalise_principle, parse_file
from stability.errors import InputError
from stability.input_files import parse_yaml, read_text
from stability.yaml_location import first_problem, where, yaml_line

ALTERNATIVES_SUFFIX = ".alternatives.yaml"
MIN_ALTERNATIVES = 6
Relation = Literal["paraphrase", "weaker", "stronger", "opposite", "neutral", "other-axis"]
RELATIONS: tuple[str, ...] = get_args(Relation)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Alternative(_Strict):
    """Another wording a principle could have had, and how it relates to the original."""

    text: str = Field(min_length=1)
    relation: Relation

    @field_validator("text")
    @classmethod
    def _normalise(cls, text: str) -> str:
        return normalise_principle(text)


class PrinciplePool(_Strict):
    """The alternatives for one principle: ``index`` is 1-based and ``text`` must equal the principle."""

    index: int = Field(ge=1)
    text: str = Field(min_length=1)
    alternatives: list[Alternative] = Field(min_length=1)

    @field_validator("text")
    @classmethod
    def _normalise(cls, text: str) -> str:
        return normalise_principle(text)

    def by_relation(self, relation: str) -> list[Alternative]:
        return [a for a in self.alternatives if a.relation == relation]


class _AlternativesFile(_Strict):
    principles: list[PrinciplePool] = Field(min_length=1)


class AlternativePool(_Strict):
    """The alternatives file of one constitution, checked against it."""

    constitution: str  # path of the constitution
    constitution_hash: str
    path: str  # path of the alternatives file
    principles: list[PrinciplePool]

    def for_principle(self, index: int) -> PrinciplePool:
        """The pool for principle ``index`` (1-based)."""
        for pool in self.principles:
            if pool.index == index:
                return pool
        raise KeyError(index)


def alternatives_path(constitution_path: Path | str) -> Path:
    path = Path(constitution_path)
    return path.with_name(path.name.removesuffix(".md") + ALTERNATIVES_SUFFIX)


def load_alternatives(constitution_path: Path | str, complete: bool = True) -> AlternativePool:
    """Read ``<name>.alternatives.yaml`` beside a constitution and check it against the constitution.

    Every principle has exactly one pool, in order, whose ``text`` is the principle's; alternatives are distinct
    from each other and from the principle. With ``complete`` (the library's rule) each pool has at least
    ``MIN_ALTERNATIVES`` alternatives and every relation at least once.
    """
    path = alternatives_path(constitution_path)
    if not path.exists():
        raise InputError(str(path), None, f"no alternatives file beside {constitution_path}")
    return pool_from_text(parse_file(constitution_path), str(constitution_path),
                          read_text(path, "a YAML file of alternatives"), str(path), complete)


def pool_from_text(constitution: Constitution, constitution_path: str, text: str, name: str,
                   complete: bool = True) -> AlternativePool:
    """:func:`load_alternatives` over text already read (``name``: the alternatives file it came from)."""
    data = parse_yaml(text, name)
    if not isinstance(data, dict):
        raise InputError(name, 1, "expected a mapping with a 'principles' list")
    try:
        parsed = _AlternativesFile.model_validate(data)
    except ValidationError as err:
        loc, message = first_problem(err)
        raise InputError(name, yaml_line(text, loc), f"{where(loc)}: {message}") from None
    n = len(constitution.principles)

    def problem(loc: tuple[int | str, ...], message: str) -> InputError:
        return InputError(name, yaml_line(text, loc), f"{where(loc)}: {message}")

    for i, pool in enumerate(parsed.principles):
        here: tuple[int | str, ...] = ("principles", i)
        if pool.index > n:
            raise problem((*here, "index"), f"principle {pool.index} does not exist (the constitution has {n})")
        if pool.index != i + 1:
            raise problem((*here, "index"), f"{pool.index} is out of order (pools list principles 1..{n} in order; "
                                            f"expected {i + 1})")
        principle = constitution.principles[i]
        if pool.text != principle:
            raise problem((*here, "text"), f"does not match principle {i + 1} of the constitution "
                                           f"({principle[:50]!r})")
        seen = {principle.casefold(): "the principle itself"}
        for j, alternative in enumerate(pool.alternatives):
            key = alternative.text.casefold()
            if key in seen:
                raise problem((*here, "alternatives", j), f"repeats {seen[key]}")
            seen[key] = f"alternative {j}"
        missing = [r for r in RELATIONS if not pool.by_relation(r)]
        if complete and (len(pool.alternatives) < MIN_ALTERNATIVES or missing):
            raise problem(here, f"principle {i + 1} has {len(pool.alternatives)} alternatives (at least "
                                f"{MIN_ALTERNATIVES}, every relation once)"
                                + (f"; missing {', '.join(missing)}" if missing else ""))
    if len(parsed.principles) < n:
        raise InputError(name, None, f"no alternatives for principle {len(parsed.principles) + 1} "
                                     f"(the constitution has {n})")
    return AlternativePool(constitution=str(constitution_path), constitution_hash=constitution.hash, path=name,
                           principles=parsed.principles)
