"""The event-loop lag monitor notes how late its timer fires, and warns past its threshold."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from server.live import LoopLag


def test_a_blocked_loop_is_measured_and_reported(caplog: pytest.LogCaptureFixture) -> None:
    lag = LoopLag(interval=0.01, warn_ms=50)

    async def main() -> None:
        monitor = asyncio.create_task(lag.run())
        await asyncio.sleep(0.05)
        assert lag.samples > 0 and lag.max_ms < 50  # an idle loop: on time, no warning
        time.sleep(0.12)  # a blocking call on the loop: everything waits
        await asyncio.sleep(0.03)
        monitor.cancel()

    with caplog.at_level(logging.WARNING, logger="server.live.lag"):
        asyncio.run(main())
    assert lag.max_ms >= 100
    assert [r.getMessage() for r in caplog.records if "ran" in r.getMessage()]
    snap = lag.snapshot()
    assert snap["max_ms"] == lag.max_ms and snap["samples"] == lag.samples
    lag.reset()
    assert lag.max_ms == 0
