"""The worker's one way to change a plan: ask the serving process, whose live room makes the
change (schema guard, update log, every open client), as for any edit.

Ids are asked for, not sent: the serving process gives ids on the live document as it stands
when the request arrives, so an edit that landed meanwhile is kept, a task already given its
id is left alone, and two requests for the same plan give each task one id."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request

import anyio

from .credential import mint

TIMEOUT = 10.0
# Straight to the server: a proxy from the environment (http_proxy) has no business here.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def internal_url(server_url: str, plan_id: str) -> str:
    return f"{server_url.rstrip('/')}/internal/plans/{urllib.parse.quote(plan_id, safe='')}/ids"


class AssignThroughServer:
    """``Assign`` (``server.plan``) for a worker in its own process."""

    def __init__(self, server_url: str, secret_key: str) -> None:
        self.server_url = server_url
        self.secret_key = secret_key

    async def __call__(self, plan_id: str, author_id: int | None) -> int | None:
        return await anyio.to_thread.run_sync(self._post, plan_id, author_id)

    def _post(self, plan_id: str, author_id: int | None) -> int | None:
        request = urllib.request.Request(
            internal_url(self.server_url, plan_id),
            data=json.dumps({"author_id": author_id}).encode(),
            method="POST",
            headers={
                "Authorization": f"Bearer {mint(self.secret_key, plan_id)}",
                "Content-Type": "application/json",
            },
        )
        # Raises when the server cannot be reached (starting, stopping, gone) or refuses: the
        # materialiser then leaves the plan's tables behind and asks again later.
        with _DIRECT.open(request, timeout=TIMEOUT) as response:
            log_id = json.load(response).get("log_id")
        return log_id if isinstance(log_id, int) else None
