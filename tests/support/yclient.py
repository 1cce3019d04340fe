"""pycrdt clients over a real websocket: pycrdt's own Provider on a `websockets` channel."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import websockets
from pycrdt import Doc, Provider, XmlElement, XmlFragment, XmlText


class WebsocketChannel:
    """pycrdt's Channel protocol over a `websockets` client connection."""

    def __init__(self, ws: websockets.ClientConnection, path: str) -> None:
        self.ws = ws
        self._path = path

    @property
    def path(self) -> str:
        return self._path

    def __aiter__(self) -> WebsocketChannel:
        return self

    async def __anext__(self) -> bytes:
        try:
            return await self.recv()
        except websockets.ConnectionClosed:
            raise StopAsyncIteration from None

    async def send(self, message: bytes) -> None:
        await self.ws.send(message)

    async def recv(self) -> bytes:
        message = await self.ws.recv()
        assert isinstance(message, bytes)
        return message


@asynccontextmanager
async def connect(
    ws_base: str,
    plan_id: str,
    token: str,
    doc: Doc | None = None,
    *,
    compression: str | None = "deflate",
) -> AsyncIterator[tuple[Doc, websockets.ClientConnection]]:
    """A synced pycrdt document for the plan; edits to it are sent live. The client offers
    permessage-deflate, as browsers do, unless ``compression`` is None."""
    doc = doc if doc is not None else Doc()
    url = f"{ws_base}/{plan_id}?token={token}"
    async with (
        websockets.connect(url, max_size=None, compression=compression) as ws,
        Provider(doc, WebsocketChannel(ws, url)) as provider,
    ):
        # Bounded: a socket the server closes (say 4404) never syncs, and must fail, not hang.
        with anyio.fail_after(15):
            await provider.synced.wait()
        yield doc, ws


def fragment(doc: Doc) -> XmlFragment:
    return doc.get("default", type=XmlFragment)


def add_paragraph(doc: Doc, text: str) -> None:
    fragment(doc).children.append(XmlElement("paragraph", {}, [XmlText(text)]))


def paragraphs(doc: Doc) -> list[str]:
    out = []
    for child in fragment(doc).children:
        if isinstance(child, XmlElement) and child.tag == "paragraph":
            out.append("".join(str(t) for t in child.children))
    return out
