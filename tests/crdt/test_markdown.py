from __future__ import annotations

from typing import Any

import pytest

from crdt import markdown_from_prosemirror, new_doc, to_markdown, write_prosemirror
from tests.crdt.tiptap import (
    HARD_BREAK,
    SAMPLE,
    cell,
    due,
    item,
    link,
    mention,
    para,
    row,
    task,
    text,
    tiptap,
)

SAMPLE_MARKDOWN = """\
# Acme × Globex 🚀

Goals: **grow *usage***, ~~old~~, `api_key`, [docs](https://example.com/a%28b%29) and <u>this</u>.\\
\\*not bold\\* # 1. \\<b> | x

## Milestones

- Kick-off

  3. agenda
  4. invite
- Go live

* [ ] Sign SOW @Casey Vendor (due 2026-12-12)
  - [x] legal review @Dana
* [x] Done thing

| Owner | Due |
| --- | ---: |
| Casey<br>a\\|b | Q3 |
| Both |  |

> Quote

```python
x = 1
```

```
no lang
```

---

End
"""


def md(*blocks: dict[str, Any]) -> str:
    return markdown_from_prosemirror({"type": "doc", "content": list(blocks)})


def bullets(*items: dict[str, Any]) -> dict[str, Any]:
    return item("bulletList", *items)


def li(*content: dict[str, Any]) -> dict[str, Any]:
    return item("listItem", *content)


def test_document_written_by_real_yjs() -> None:
    update, _ = tiptap().encode(SAMPLE)
    doc = new_doc()
    doc.apply_update(update)
    assert to_markdown(doc) == SAMPLE_MARKDOWN


def test_empty_plan_is_empty_markdown() -> None:
    assert to_markdown(new_doc()) == ""
    doc = new_doc()
    write_prosemirror(doc, {"type": "doc", "content": [para(), para()]})
    assert to_markdown(doc) == ""


def test_headings_and_paragraphs() -> None:
    assert (
        md(
            {"type": "heading", "attrs": {"level": 1}, "content": [text("One")]},
            para(text("first")),
            para(),  # Tiptap's spacing paragraphs are dropped
            para(text("second")),
            {"type": "heading", "attrs": {"level": 3}, "content": [text("C# and #")]},
        )
        == "# One\n\nfirst\n\nsecond\n\n### C# and \\#\n"
    )


@pytest.mark.parametrize(
    ("marks", "expected"),
    [
        (["bold"], "**x**"),
        (["italic"], "*x*"),
        (["strike"], "~~x~~"),
        (["code"], "`x`"),
        (["underline"], "<u>x</u>"),
        ([link("https://a.example/p?q=1")], "[x](https://a.example/p?q=1)"),
        ([link("https://a.example/a b(c)"), "bold"], "[**x**](https://a.example/a%20b%28c%29)"),
        (["bold", "italic"], "***x***"),
        ([{"type": "highlight"}], "x"),  # no Markdown for it: the text stays
    ],
)
def test_marks(marks: list[Any], expected: str) -> None:
    assert md(para(text("x", *marks))) == expected + "\n"


def test_marks_spanning_several_text_nodes_nest() -> None:
    assert md(para(text("a", "bold"), text("b", "bold", "italic"), text("c"))) == "**a*b***c\n"
    # Overlapping (not nested) marks: the reopened one uses "_" so the delimiters don't fuse.
    assert md(para(text("a", "bold"), text("b", "bold", "italic"), text("c", "italic"))) == (
        "**a*b***_c_\n"
    )


def test_whitespace_moves_out_of_delimiters() -> None:
    assert md(para(text("a"), text(" bold ", "bold"), text("b"))) == "a **bold** b\n"
    assert md(para(text("a"), text(" ", "italic"), text("b"))) == "a b\n"


def test_code_spans_hold_backticks_and_are_not_escaped() -> None:
    assert md(para(text("a*b", "code"))) == "`a*b`\n"
    assert md(para(text("a`b", "code"))) == "``a`b``\n"
    assert md(para(text("`x", "code"))) == "`` `x ``\n"


@pytest.mark.parametrize(
    ("plain", "expected"),
    [
        ("*not bold*", "\\*not bold\\*"),
        ("# not heading", "\\# not heading"),
        ("## no", "\\## no"),
        ("> not quote", "\\> not quote"),
        ("- not item", "\\- not item"),
        ("+ not item", "\\+ not item"),
        ("1. not ordered", "1\\. not ordered"),
        ("2) not ordered", "2\\) not ordered"),
        ("---", "\\---"),
        ("=", "\\="),
        ("| a |", "\\| a |"),
        ("    not code", "not code"),
        ("_under_ snake_case", "\\_under\\_ snake_case"),
        ("[not](link)", "\\[not\\](link)"),
        ("`tick` ~~no~~", "\\`tick\\` \\~\\~no\\~\\~"),
        ("<b>html</b> &amp; & a\\b", "\\<b>html\\</b> \\&amp; & a\\\\b"),
        ("mid # and 1. and - stay", "mid # and 1. and - stay"),
    ],
)
def test_plain_text_stays_literal(plain: str, expected: str) -> None:
    assert md(para(text(plain))) == expected + "\n"


def test_bang_before_a_link_is_not_an_image() -> None:
    assert md(para(text("Wow!"), text("x", link("https://a.example")))) == (
        "Wow\\![x](https://a.example)\n"
    )


def test_hard_breaks_and_newlines() -> None:
    assert md(para(text("a"), HARD_BREAK, text("# b"))) == "a\\\n\\# b\n"
    assert md(para(text("a\nb"))) == "a\\\nb\n"
    assert md(para(HARD_BREAK, text("a"), HARD_BREAK)) == "a\n"
    heading = {"type": "heading", "attrs": {"level": 2}, "content": [text("a"), HARD_BREAK]}
    assert md(heading, para(text("a"), HARD_BREAK, text("b"))) == "## a\n\na\\\nb\n"


def test_nested_bullet_and_ordered_lists() -> None:
    ordered = item("orderedList", li(para(text("x"))), li(para(text("y"))), start=1)
    assert md(bullets(li(para(text("a")), ordered), li(para(text("b"))))) == (
        "- a\n  1. x\n  2. y\n- b\n"
    )


def test_ordered_list_start_is_honoured() -> None:
    ordered = item("orderedList", li(para(text("x"))), li(para(text("y"))), start=9)
    assert md(ordered) == "9. x\n10. y\n"
    # Nested under a paragraph, a list not starting at 1 needs a blank line to be a list.
    assert md(bullets(li(para(text("a")), ordered))) == "- a\n\n  9. x\n  10. y\n"


def test_list_items_with_several_blocks_indent_them() -> None:
    ordered = item("orderedList", li(para(text("a")), para(text("b"))), start=10)
    assert md(ordered) == "10. a\n\n    b\n"


def test_task_items_nested() -> None:
    tasks = item(
        "taskList",
        item(
            "taskItem",
            para(text("parent")),
            item("taskList", item("taskItem", para(text("child")), checked=True)),
            checked=False,
        ),
        item("taskItem", para(text("*done*")), checked=True),
    )
    assert md(tasks) == "- [ ] parent\n  - [x] child\n- [x] \\*done\\*\n"


def test_adjacent_lists_stay_apart() -> None:
    one = bullets(li(para(text("a"))))
    two = item("orderedList", li(para(text("b"))), start=1)
    assert md(one, one, one) == "- a\n\n* a\n\n- a\n"
    assert md(two, two, para(text("p")), two) == "1. b\n\n1) b\n\np\n\n1. b\n"


def test_table_header_escaping_and_multi_paragraph_cells() -> None:
    table = item(
        "table",
        item(
            "tableRow",
            cell("tableHeader", para(text("A|B"))),
            cell("tableHeader", para(text("mid")), align="center"),
        ),
        item(
            "tableRow",
            cell("tableCell", para(text("one")), para(text("two", "bold"))),
            cell("tableCell", para(text("x|y", "code"), HARD_BREAK, text("z"))),
        ),
        item("tableRow", cell("tableCell", bullets(li(para(text("l1"))), li(para(text("l2")))))),
    )
    assert md(table) == (
        "| A\\|B | mid |\n| --- | :---: |\n| one<br>**two** | `x\\|y`<br>z |\n| l1<br>l2 |  |\n"
    )


def test_table_spans_keep_columns_aligned() -> None:
    table = item(
        "table",
        item("tableRow", cell("tableHeader", para(text("wide")), colspan=2), cell("tableHeader")),
        item(
            "tableRow",
            cell("tableCell", para(text("tall")), rowspan=2),
            cell("tableCell", para(text("b"))),
            cell("tableCell", para(text("c"))),
        ),
        item("tableRow", cell("tableCell", para(text("e"))), cell("tableCell", para(text("f")))),
    )
    assert md(table) == ("| wide |  |  |\n| --- | --- | --- |\n| tall | b | c |\n|  | e | f |\n")


def test_blockquote_code_block_and_rule() -> None:
    quote = item("blockquote", para(text("q1")), bullets(li(para(text("q2")))))
    code = {"type": "codeBlock", "attrs": {"language": "js"}, "content": [text("a\n```\nb")]}
    assert md(quote, code, {"type": "horizontalRule"}) == (
        "> q1\n>\n> - q2\n\n````js\na\n```\nb\n````\n\n---\n"
    )


def test_unknown_nodes_keep_their_text() -> None:
    callout = {"type": "callout", "content": [text("careful", "bold"), text(" *now*")]}
    wrapper = {"type": "details", "content": [para(text("inside")), para(text("more"))]}
    emoji = {"type": "emoji", "content": [text("@casey")]}
    assert md(callout, wrapper, para(text("hi "), emoji)) == (
        "**careful** \\*now\\*\n\ninside\n\nmore\n\nhi @casey\n"
    )


def test_task_owner_and_due_date_read_as_text() -> None:
    tasks = item(
        "taskList",
        task(
            para(text("Kick-off "), mention("user:3", "Ann Lee"), text(" "), due("2026-12-12")),
            id="t_AbCdEfGh12",
            status="in_progress",
            milestone=True,
        ),
        task(para(due("2027-01-05"), text(" renewal call")), checked=True, status="done"),
        task(para(text("ask "), mention("name:Bo_b *x*", "Bo_b *x*", "customer"))),
    )
    assert md(tasks) == (
        "- [ ] Kick-off @Ann Lee (due 2026-12-12)\n"
        "- [x] (due 2027-01-05) renewal call\n"
        "- [ ] ask @Bo_b \\*x\\*\n"
    )


def test_owner_and_due_date_in_a_table_cell_and_alone() -> None:
    table = item(
        "table",
        row(cell("tableHeader", para(text("Owner"))), cell("tableHeader", para(text("Due")))),
        row(
            cell("tableCell", para(mention("contact:r_x", "Dana"))),
            cell("tableCell", para(due("2026-01-02"))),
        ),
    )
    assert md(table) == "| Owner | Due |\n| --- | --- |\n| @Dana | (due 2026-01-02) |\n"
    # A mention without a label falls back to its id; one without either (or a date-less chip)
    # leaves nothing behind.
    assert md(para(mention("user:9", ""), text(" x"))) == "@user:9 x\n"
    bare = {"type": "mention", "attrs": {"id": None, "label": None, "side": None}}
    assert (
        md(para(text("a "), bare, {"type": "dueDate", "attrs": {"date": None}}, text("b")))
        == "a b\n"
    )
