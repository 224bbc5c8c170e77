"""Synthetic test data for ``stability import-chain``: a chain of versions of one long, sectioned constitution.

    python bench/sectioned_chain.py FOLDER [VERSIONS] [SEED]

Writes ``FOLDER/v1.md`` ... ``vN.md`` (default 8 versions): Markdown documents shaped like the constitutions
people publish, written from a small synthetic vocabulary (never anyone's text): a title, parts (``##``) and
chapters (``###``), an opening paragraph per chapter, bullets nested up to three deep, numbered lists, bold
lead-ins (``**Care.** ...``) and a few lines repeated across chapters. The first version has about 550 bullets
and 50 kB; each next one adds items and chapters, rewords about one item in twelve and drops one in fifty, up to
about 1,450 bullets and 230 kB in the eighth. Deterministic for a seed. Prints one JSON line per version (bytes,
bullets, headings, paragraphs).
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

_WORD_TEXT = ("care honesty harm people model answer question truth trust power world user operator privacy safety "
         "context judgement risk benefit consent autonomy fairness evidence reason doubt mistake learning oversight "
         "correction humility clarity respect law culture child adult expert stranger request refusal help "
         "instruction goal value principle exception conflict balance priority detail summary source claim "
         "fact opinion belief uncertainty estimate harmless useful kind direct careful candid open transparent "
         "steady calm patient curious thorough concise complete accurate current verified")
_VERB_TEXT = ("weigh consider explain protect respect avoid prefer support question acknowledge check state decline "
         "follow notice share keep ask tell correct admit help defer escalate clarify")
WORDS = tuple(_WORD_TEXT.split())
VERBS = tuple(_VERB_TEXT.split())
LEADS = ("Care", "Candour", "Restraint", "Proportion", "Oversight", "Privacy", "Clarity", "Humility", "Fairness")
REPEATED = ("Ask when the request is unclear.", "When in doubt, say so plainly.")


def sentence(rng: random.Random, words: int) -> str:
    body = [rng.choice(VERBS)] + [rng.choice(WORDS) for _ in range(words - 1)]
    return " ".join(body).capitalize() + "."


def item(rng: random.Random, long: bool) -> str:
    text = " ".join(sentence(rng, rng.randint(8, 14)) for _ in range(rng.randint(1, 2) if long else 1))
    return f"**{rng.choice(LEADS)}.** {text}" if rng.random() < 0.15 else text


class Document:
    """The evolving content: chapters of items (depth, text, numbered)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.chapters: list[tuple[str, str, list[tuple[int, str, bool]]]] = []
        self.serial = 0

    def new_items(self, n: int, long: bool) -> list[tuple[int, str, bool]]:
        items, depth = [], 0
        numbered = self.rng.random() < 0.25
        for _ in range(n):
            depth = 0 if depth == 0 and self.rng.random() < 0.5 else min(2, max(0, depth + self.rng.choice((-1, 0, 1))))
            items.append((depth, item(self.rng, long), numbered and depth == 0))
        return items

    def add_chapter(self, long: bool) -> None:
        self.serial += 1
        part = f"Part {1 + (self.serial - 1) // 6}: {self.rng.choice(WORDS).capitalize()}"
        title = f"{self.serial}. {self.rng.choice(WORDS).capitalize()} and {self.rng.choice(WORDS)}"
        items = self.new_items(self.rng.randint(14, 22), long)
        if self.serial % 3 == 0:
            items.append((0, REPEATED[self.serial % 2], False))
        self.chapters.append((part, title, items))

    def evolve(self, target_bullets: int, long: bool) -> None:
        rng = self.rng
        for _, _, items in self.chapters:
            for i, (depth, text, numbered) in enumerate(items):
                if text in REPEATED:
                    continue
                if rng.random() < 1 / 12:
                    items[i] = (depth, item(rng, long), numbered)
            items[:] = [it for it in items if it[1] in REPEATED or rng.random() >= 1 / 50]
        while self.bullets() < target_bullets:
            if not self.chapters or rng.random() < 0.35:
                self.add_chapter(long)
            else:
                _, _, items = rng.choice(self.chapters)
                items[rng.randrange(len(items) + 1):0] = self.new_items(rng.randint(2, 6), long)

    def bullets(self) -> int:
        return sum(len(items) for _, _, items in self.chapters)

    def render(self, version: int) -> str:
        rng = random.Random(version)
        out = [f"# A synthetic constitution, version {version}", "",
               "This document is generated test data for stability's chain import.", ""]
        part = None
        for chapter_part, title, items in self.chapters:
            if chapter_part != part:
                part = chapter_part
                out += [f"## {part}", "", sentence(rng, 18), ""]
            out += [f"### {title}", "", sentence(rng, 16) + " " + sentence(rng, 12), ""]
            number = 0
            for depth, text, numbered in items:
                if numbered:
                    number += 1
                    out.append(f"{number}. {text}")
                else:
                    out.append("  " * depth + f"- {text}")
            out.append("")
        return "\n".join(out)


def write_chain(folder: Path, versions: int = 8, seed: int = 29) -> list[dict[str, object]]:
    rng = random.Random(seed)
    document = Document(rng)
    folder.mkdir(parents=True, exist_ok=True)
    facts = []
    for version in range(1, versions + 1):
        share = (version - 1) / max(1, versions - 1)
        document.evolve(int(560 + 870 * share), long=share > 0.5)
        text = document.render(version)
        path = folder / f"v{version}.md"
        path.write_text(text, encoding="utf-8")
        lines = text.splitlines()
        facts.append({"file": path.name, "bytes": len(text.encode()),
                      "bullets": sum(1 for line in lines if line.lstrip()[:2] == "- " or line[:1].isdigit()),
                      "headings": sum(1 for line in lines if line.startswith("#"))})
    return facts


if __name__ == "__main__":
    target = Path(sys.argv[1])
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 29
    for fact in write_chain(target, count, seed):
        print(json.dumps(fact))
