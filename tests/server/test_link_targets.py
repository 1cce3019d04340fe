"""Only http(s) and mailto link targets leave the server, whatever a client stored.

The document is written by a real pycrdt client over the websocket, the way a hostile client
(not our editor, which refuses such links) would write it; then read back through every export.
"""

from __future__ import annotations

import anyio
import pytest
from pycrdt import XmlElement, XmlText

from crdt import markdown_from_prosemirror
from crdt.prosemirror import safe_href
from tests.support.access import World
from tests.support.yclient import connect, fragment

BAD = [
    "javascript:alert(1)",
    "JavaScript:alert(1)",
    " javascript:alert(1)",
    "java\tscript:alert(1)",
    "java\nscript:alert(1)",
    "\x01javascript:alert(1)",
    "vbscript:msgbox(1)",
    "data:text/html,<script>alert(1)</script>",
    "//evil.example/x",
    "/relative/path",
    "https:evil.example",
    "https://",
    "file:///etc/passwd",
    "",
    " https://example.com",
    "https://exa\nmple.com",
]
GOOD = ["https://example.com/a?b=c#d", "HTTP://example.com", "mailto:ada@example.com"]


def link(href: str) -> dict:
    return {"href": href, "target": "_blank", "rel": "noopener", "class": None, "title": None}


@pytest.mark.parametrize("href", BAD)
def test_unsafe_targets(href: str) -> None:
    assert not safe_href(href)


@pytest.mark.parametrize("href", GOOD)
def test_safe_targets(href: str) -> None:
    assert safe_href(href)


def test_a_pycrdt_clients_script_links_reach_no_export(world: World) -> None:
    owner = world.callers["owner_api"].client
    hrefs = [*BAD, *GOOD]

    async def write() -> None:
        async with connect(world.server.ws, world.plan, world.owner_token) as (doc, _):
            para = fragment(doc).children.append(XmlElement("paragraph", {}))
            text = para.children.append(XmlText())
            for i, href in enumerate(hrefs):
                text.insert(len(text), f"L{i} ", {"link": link(href), "bold": {}})
            # A second link mark on the same text, as y-prosemirror keys overlapping marks.
            text.insert(len(text), "twice", {"link--abcdefgh": link("javascript:alert(2)")})
            await anyio.sleep(0.5)

    anyio.run(write)
    pm = owner.get(f"/api/plans/{world.plan}/document").json()
    md = owner.get(f"/api/plans/{world.plan}/document", params={"format": "markdown"}).text
    found = [
        mark["attrs"]["href"]
        for node in pm["content"][-1]["content"]
        for mark in node.get("marks", [])
        if mark["type"] == "link"
    ]
    assert sorted(found) == sorted(GOOD)
    words = "".join(node["text"] for node in pm["content"][-1]["content"])
    assert all(f"L{i} " in words for i in range(len(hrefs))) and "twice" in words
    for bad in ("script:", "data:", "evil.example", "/relative", "file:"):
        assert bad not in md.lower()
        assert bad not in str(pm).lower()
    for good in GOOD:
        assert f"]({good})" in md


def test_markdown_from_given_prosemirror_drops_unsafe_links() -> None:
    pm = {
        "type": "doc",
        "content": [
            {
                "type": "paragraph",
                "content": [
                    {"type": "text", "text": "x", "marks": [{"type": "link", "attrs": link(h)}]}
                    for h in ("javascript:alert(1)", "https://ok.example")
                ],
            }
        ],
    }
    md = markdown_from_prosemirror(pm)
    assert "javascript" not in md and "(https://ok.example)" in md
