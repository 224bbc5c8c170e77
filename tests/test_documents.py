"""Documents people wrote, read into principles (``stability.documents``): every shape is read, none refused."""

from __future__ import annotations

import pytest

from stability.documents import read_document
from stability.errors import InputError

DOCUMENT = """\
---
owner: a lab
---
# The Charter

An opening paragraph
that wraps over two lines.

## Honesty

- Be honest.
  - Say what you know.
    - Cite where you read it.
  - Say what you know.
- **Candour.** Share doubts
  with the user.

1. First numbered rule.
2) Second numbered rule.

### Limits

Ask when the request is unclear.

---

```
- fenced bullet
```

## Care

- Be honest.
"""


def test_headings_nested_bullets_numbered_lists_bold_lead_ins_and_paragraphs_become_principles() -> None:
    reading = read_document(DOCUMENT, "charter.md")
    constitution = reading.constitution
    assert constitution.title == "The Charter"
    assert constitution.metadata == {"owner": "a lab"}
    assert constitution.principles == (
        "An opening paragraph that wraps over two lines.", "Be honest.", "Say what you know.",
        "Cite where you read it.", "Say what you know.", "Candour. Share doubts with the user.",
        "First numbered rule.", "Second numbered rule.", "Ask when the request is unclear.", "fenced bullet",
        "Be honest.")
    kinds = [p.kind for p in reading.principles]
    assert kinds == ["paragraph", "bullet", "bullet", "bullet", "bullet", "bullet", "numbered", "numbered",
                     "paragraph", "bullet", "bullet"]
    cite = reading.principles[3]
    assert cite.parents == ["Be honest.", "Say what you know."] and cite.section == "Honesty"
    assert cite.line == 13
    assert reading.principles[0].section is None
    assert reading.principles[8].section == "Honesty > Limits"
    assert reading.principles[-1].section == "Care" and reading.principles[-1].parents == []
    assert reading.sections == 3
    assert reading.repeated == 2  # "Say what you know." and "Be honest." again: kept, counted twice
    assert reading.summary("charter.md") == ("charter.md: 11 principles (9 list items, 3 of them nested; "
                                             "2 paragraphs) in 3 sections; 2 repeated lines kept")


def test_a_hash_is_the_principles_in_order_whatever_the_headings() -> None:
    plain = read_document("- Be honest.\n- Be kind.\n")
    sectioned = read_document("# T\n\n## A\n\n- Be honest.\n\n## B\n\n* Be kind.\n")
    assert plain.constitution.hash == sectioned.constitution.hash


@pytest.mark.parametrize("text", [
    "---\nnot: [closed\n\n- still read\n",  # front matter that is not YAML: read as text
    "| a table | row |\n|---|---|\n",
    "just one line with no bullet",
    "- \u200b\n- visible\n",  # an invisible bullet is skipped, the rest read
    "#### only a deep heading\n\ntext under it\n",
])
def test_odd_documents_are_read_not_refused(text: str) -> None:
    reading = read_document(text, "odd.md")
    assert reading.constitution.principles and all(p.strip() for p in reading.constitution.principles)


@pytest.mark.parametrize(("text", "problem"), [("", "empty file"), ("  \n\n", "empty file"),
                                               ("# Title only\n", "no visible text"),
                                               ("\u200b\n", "no visible text")])
def test_a_document_without_text_is_one_line_naming_the_file(text: str, problem: str) -> None:
    with pytest.raises(InputError, match=problem) as caught:
        read_document(text, "blank.md")
    assert str(caught.value).startswith("blank.md: ") and "\n" not in str(caught.value)
