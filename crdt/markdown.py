"""The plan's rich text as GitHub-flavoured Markdown (for export, e-mail and prompts).

Rendered from the ProseMirror JSON of :mod:`crdt.prosemirror`. User text is escaped so that it
stays literal (``*not bold*``, ``# not a heading``); structure the schema has and Markdown
lacks degrades to text (underline becomes ``<u>``, table cells are one line each, a task owner
``mention`` becomes ``@Label`` and a ``dueDate`` chip ``(due 2026-12-12)``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pycrdt import Doc, XmlFragment

from .prosemirror import safe_href, to_prosemirror
from .schema import FRAGMENT

Node = Mapping[str, Any]

# Delimiters of marks Markdown can express; code is rendered on the text itself, and marks not
# listed here keep their text unformatted.
_DELIMS = {
    "bold": ("**", "**"),
    "italic": ("*", "*"),
    "strike": ("~~", "~~"),
    "underline": ("<u>", "</u>"),
}
# Which mark goes outside when several open together and last equally long.
_NESTING = ("link", "bold", "italic", "strike", "underline")
_LISTS = {"bulletList": "bullet", "taskList": "bullet", "orderedList": "ordered"}
_INLINE_NODES = {"text", "hardBreak", "mention", "dueDate"}

# Characters that can start inline syntax anywhere; `_` only outside words (snake_case is safe).
_INLINE_SPECIAL = re.compile(r"[\\*`\[\]<~]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])|&(?=#?\w+;)")
# Line starts that would begin a block: heading, quote, list, setext underline, table, ordered list.
_LINE_START = re.compile(r"^([#>+=|-])|^(\d{1,9})([.)])(?=\s|$)")


def to_markdown(doc: Doc) -> str:
    """The plan's rich text as GitHub-flavoured Markdown (empty string for an empty plan)."""
    return markdown_from_prosemirror(to_prosemirror(doc))


def markdown_from_prosemirror(pm_json: Node) -> str:
    """Markdown for a ProseMirror JSON document (as from :func:`crdt.to_prosemirror`).

    Blocks are separated by a blank line and the result ends with one newline. Empty
    paragraphs (Tiptap's spacing) are dropped; unknown node types keep their text as a
    paragraph, or their child blocks if they wrap blocks.
    """
    body = _blocks(pm_json.get("content") or [])
    return body + "\n" if body else ""


# --- blocks ----------------------------------------------------------------------------------


def _blocks(nodes: Sequence[Node], tight: bool = False) -> str:
    """Render blocks; in a tight list item a nested list follows the paragraph directly."""
    parts: list[str] = []
    prev_kind, alt = None, False
    for node in nodes:
        kind = _LISTS.get(node.get("type", ""))
        # Two lists in a row with the same marker would merge into one: alternate the marker.
        alt = (not alt) if kind is not None and kind == prev_kind else False
        text = _block(node, alt)
        if not text:
            continue
        if parts:
            parts.append("\n" if tight and _interrupts(node) else "\n\n")
        parts.append(text)
        prev_kind = kind
    return "".join(parts)


def _interrupts(node: Node) -> bool:
    """Whether a list can follow a paragraph line directly (an ordered one must start at 1)."""
    kind = node.get("type", "")
    if kind == "orderedList":
        return _int((node.get("attrs") or {}).get("start"), 1) == 1
    return kind in _LISTS


def _block(node: Node, alt: bool = False) -> str:
    kind = node.get("type")
    content = node.get("content") or []
    attrs = node.get("attrs") or {}
    if kind == "paragraph":
        return _paragraph(content)
    if kind in _INLINE_NODES:  # stray inline node among blocks: its own paragraph
        return _paragraph([node])
    if kind == "heading":
        level = min(max(_int(attrs.get("level"), 1), 1), 6)
        text = _inline(content, hard_break=" ").strip()
        # A trailing run of '#' after a space would be read as a closing sequence.
        text = re.sub(r"(^|\s)(#+)$", r"\1\\\2", text)
        return "#" * level + (" " + text if text else "")
    if kind in _LISTS:
        return _list(node, alt)
    if kind == "blockquote":
        lines = _blocks(content).split("\n")
        return "\n".join("> " + line if line else ">" for line in lines) if any(lines) else ""
    if kind == "codeBlock":
        return _code_block(content, attrs.get("language"))
    if kind == "horizontalRule":
        return "---"
    if kind == "table":
        return _table(content)
    # Unknown (or misplaced) node: keep its text, or its blocks if it wraps blocks.
    if any(child.get("type") in _INLINE_NODES for child in content):
        return _paragraph(content)
    return _blocks(content)


def _paragraph(content: Sequence[Node]) -> str:
    # A hard break at either end of a paragraph would render as a literal backslash.
    content = list(content)
    while content and content[-1].get("type") == "hardBreak":
        content.pop()
    while content and content[0].get("type") == "hardBreak":
        content.pop(0)
    lines = _inline(content, hard_break="\\\n").split("\n")
    # Leading spaces would make an indented code block; Markdown ignores them anyway.
    return "\n".join(
        _LINE_START.sub(_escape_line_start, line.lstrip(" \t")) for line in lines
    ).strip()


def _escape_line_start(m: re.Match[str]) -> str:
    return "\\" + m.group(1) if m.group(1) else m.group(2) + "\\" + m.group(3)


def _list(node: Node, alt: bool) -> str:
    kind = node.get("type")
    start = max(_int((node.get("attrs") or {}).get("start"), 1), 0)
    items = []
    for i, item in enumerate(node.get("content") or []):
        if kind == "orderedList":
            marker = f"{start + i}{')' if alt else '.'}"
            indent = len(marker) + 1
        else:
            marker = "*" if alt else "-"
            indent = 2
            if kind == "taskList":
                checked = (item.get("attrs") or {}).get("checked")
                marker += " [x]" if checked else " [ ]"
        body = _blocks(item.get("content") or [], tight=True)
        lines = body.split("\n")
        first = marker + (" " + lines[0] if lines[0] else "")
        rest = [" " * indent + line if line else "" for line in lines[1:]]
        items.append("\n".join([first, *rest]))
    return "\n".join(items)


def _code_block(content: Sequence[Node], language: Any) -> str:
    code = "".join(child.get("text", "") for child in content if child.get("type") == "text")
    longest = max((len(run) for run in re.findall(r"`+", code)), default=0)
    fence = "`" * max(3, longest + 1)
    info = re.sub(r"[`\s]", "", language) if isinstance(language, str) else ""
    if code and not code.endswith("\n"):
        code += "\n"
    return f"{fence}{info}\n{code}{fence}"


def _table(rows: Sequence[Node]) -> str:
    # Lay cells on a grid honouring colspan/rowspan, so columns line up; spanned slots stay empty.
    grid: list[list[str]] = []
    aligns: dict[int, str] = {}
    taken: set[tuple[int, int]] = set()
    for r, row in enumerate(rows):
        cells: list[str] = []
        col = 0
        for cell in row.get("content") or []:
            while (r, col) in taken:
                cells.append("")
                col += 1
            attrs = cell.get("attrs") or {}
            colspan = max(_int(attrs.get("colspan"), 1), 1)
            rowspan = max(_int(attrs.get("rowspan"), 1), 1)
            if r == 0 and attrs.get("align") in ("left", "center", "right"):
                aligns[col] = attrs["align"]
            cells.extend([_cell(cell.get("content") or [])] + [""] * (colspan - 1))
            taken.update((r + dr, col + dc) for dr in range(1, rowspan) for dc in range(colspan))
            col += colspan
        grid.append(cells)
    width = max((len(cells) for cells in grid), default=0)
    if not width:
        return ""
    rule = {"left": ":---", "center": ":---:", "right": "---:"}
    lines = [
        _row(grid[0], width),
        _row([rule.get(aligns.get(c, ""), "---") for c in range(width)], width),
    ]
    lines += [_row(cells, width) for cells in grid[1:]]
    return "\n".join(lines)


def _row(cells: list[str], width: int) -> str:
    padded = cells + [""] * (width - len(cells))
    return "| " + " | ".join(padded) + " |"


def _cell(blocks: Sequence[Node]) -> str:
    """A cell on one line: its text blocks joined with <br>, pipes escaped (even in code)."""
    parts = [_inline(content, hard_break="<br>").strip() for content in _textblocks(blocks)]
    return "<br>".join(part for part in parts if part).replace("|", "\\|")


def _textblocks(nodes: Sequence[Node]) -> list[Sequence[Node]]:
    """The inline contents of the text blocks under ``nodes``, in document order."""
    found: list[Sequence[Node]] = []
    for node in nodes:
        content = node.get("content") or []
        if any(child.get("type") in _INLINE_NODES for child in content):
            found.append(content)
        else:
            found.extend(_textblocks(content))
    return found


# --- inline ----------------------------------------------------------------------------------


def _inline(content: Sequence[Node], hard_break: str) -> str:
    """Inline Markdown for text nodes, hard breaks and unknown inline nodes (their text kept)."""
    runs = list(_runs(content, hard_break))
    tokens: list[tuple[str, str]] = []  # ("open"|"close", delimiter) or ("text"|"raw", string)
    stack: list[tuple[str, str, str]] = []  # (key, opening, closing) of the open marks
    for i, (text, is_raw, marks) in enumerate(runs):
        keys = {m[0] for m in marks}
        keep = 0
        while keep < len(stack) and stack[keep][0] in keys:
            keep += 1
        for _, _, closing in reversed(stack[keep:]):
            tokens.append(("close", closing))
        del stack[keep:]
        kept = {key for key, _, _ in stack}
        # Open the marks that last longest outermost, so fewer have to close and reopen.
        opening = [m for m in marks if m[0] not in kept]
        opening.sort(key=lambda m: (-_run_length(runs, i, m[0]), _NESTING.index(m[3])))
        for key, opener, closer, _ in opening:
            last = tokens[-1] if tokens else ("", "")
            if opener[0] == "*" and last[0] == "close" and last[1].endswith("*"):
                # "**a*b****c*" doesn't parse: reopen right after a close with "_" instead.
                opener = closer = opener.replace("*", "_")
            tokens.append(("open", opener))
            stack.append((key, opener, closer))
        tokens.append(("raw" if is_raw else "text", text))
    tokens.extend(("close", closing) for _, _, closing in reversed(stack))
    return "".join(value for _, value in _tidy(tokens))


def _runs(
    content: Sequence[Node], hard_break: str
) -> Iterator[tuple[str, bool, list[tuple[str, str, str, str]]]]:
    """(markdown text, is raw, marks) per piece; marks as (key, opener, closer, type)."""
    for node in content:
        kind = node.get("type")
        if kind == "hardBreak":
            yield hard_break, True, []
        elif kind in ("mention", "dueDate"):
            text = _atom_text(node)
            if text:
                yield _INLINE_SPECIAL.sub(r"\\\g<0>", text), False, []
        elif kind == "text":
            text = node.get("text") or ""
            marks = node.get("marks") or []
            types = {mark.get("type") for mark in marks}
            if "code" in types:
                yield _code_span(text), True, _mark_delims(marks)
                continue
            # A newline inside text (pasted, or written by a script) shows as a line break.
            for j, line in enumerate(text.split("\n")):
                if j:
                    yield hard_break, True, []
                if line:
                    yield _INLINE_SPECIAL.sub(r"\\\g<0>", line), False, _mark_delims(marks)
        else:
            yield from _runs(node.get("content") or [], hard_break)


def _atom_text(node: Node) -> str:
    """The text of an inline atom: a mention as ``@Label``, a due date as ``(due YYYY-MM-DD)``."""
    attrs = node.get("attrs") or {}
    if node.get("type") == "mention":
        label = attrs.get("label") or attrs.get("id") or ""
        label = " ".join(str(label).split())  # one line, whatever was stored
        return f"@{label}" if label else ""
    date = attrs.get("date")
    return f"(due {' '.join(str(date).split())})" if date else ""


def _mark_delims(marks: Sequence[Node]) -> list[tuple[str, str, str, str]]:
    out = []
    for mark in marks:
        kind = mark.get("type")
        if kind == "link":
            href = (mark.get("attrs") or {}).get("href")
            if not isinstance(href, str) or not safe_href(href):
                continue  # the text stays, without the link
            # Keep the destination one token: no spaces, balanced-free parentheses.
            href = href.replace(" ", "%20").replace("(", "%28").replace(")", "%29")
            out.append((f"link:{href}", "[", f"]({href})", "link"))
        elif kind in _DELIMS:
            out.append((kind, *_DELIMS[kind], kind))
    return out


def _run_length(runs: list, start: int, key: str) -> int:
    length = 0
    for _, _, marks in runs[start:]:
        if key not in {m[0] for m in marks}:
            break
        length += 1
    return length


def _code_span(text: str) -> str:
    text = text.replace("\n", " ")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    # A space pad keeps a leading/trailing backtick off the fence; Markdown strips one each side.
    pad = " " if text.startswith(("`", " ")) or text.endswith(("`", " ")) else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _tidy(tokens: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Move whitespace out of delimiters (``** a**`` is no emphasis) and drop empty marks."""
    out: list[tuple[str, str]] = []
    for kind, value in tokens:
        if kind == "text" and out and out[-1][0] == "open":
            stripped = value.lstrip()
            if stripped != value:
                j = len(out)
                while j and out[j - 1][0] == "open":
                    j -= 1
                out.insert(j, ("text", value[: len(value) - len(stripped)]))
                value = stripped
        if kind == "close" and out and out[-1][0] == "text":
            stripped = out[-1][1].rstrip()
            if stripped != out[-1][1]:
                space = out[-1][1][len(stripped) :]
                out[-1] = ("text", stripped)
                out.append(("close", value))
                out.append(("text", space))
                continue
        if value == "[" and kind == "open" and out and out[-1][1].endswith("!"):
            out[-1] = (out[-1][0], out[-1][1][:-1] + "\\!")  # or "![" would make an image
        if kind == "close":
            # Skip whitespace moved out earlier to find an opener with nothing inside.
            j = len(out)
            while j and out[j - 1][0] == "text" and not out[j - 1][1].strip():
                j -= 1
            if j and out[j - 1][0] == "open":
                del out[j - 1]
                continue
        out.append((kind, value))
    return out


def _int(value: Any, default: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    return int(value)


# Yrs does not escape text in its XML rendering: only a tag's whole shape counts as one.
_XML_TAG = re.compile(r'</?[A-Za-z][\w-]*(?:\s+[\w-]+="[^"]*")*\s*/?>')
_XML_HEADING = re.compile(r"<heading\b[^>]*>(.*?)</heading>", re.S)


def text_sections(doc: Doc) -> dict[str, str]:
    """The plan's words by section heading ('' for what comes before the first heading),
    read from Yrs' own XML rendering of the document: tags become spaces, so the text of
    each block stays apart (text typed in the shape of a tag is taken for one). Much faster
    than the Markdown (one call into Yrs, no Python per element), for counting the words a
    change added and removed."""
    xml = str(doc.get(FRAGMENT, type=XmlFragment))
    out: dict[str, list[str]] = {}
    current, pos = "", 0
    for m in _XML_HEADING.finditer(xml):
        out.setdefault(current, []).append(_XML_TAG.sub(" ", xml[pos : m.start()]))
        current = " ".join(_XML_TAG.sub(" ", m.group(1)).split()) or current
        pos = m.end()
    out.setdefault(current, []).append(_XML_TAG.sub(" ", xml[pos:]))
    return {k: " ".join(" ".join(v).split()) for k, v in out.items() if k or " ".join(v).strip()}
