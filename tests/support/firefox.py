"""Debian's Firefox for the browser tests, driven by ``tests/js/firefox.mjs`` (puppeteer-core
over WebDriver BiDi) one JSON command per line, with a Playwright-like page object."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tests" / "js" / "firefox.mjs"
FIREFOX = shutil.which("firefox-esr") or shutil.which("firefox") or "/usr/bin/firefox-esr"


class FirefoxError(AssertionError):
    pass


class Firefox:
    """One Firefox process; ``page(name)`` opens a page in a fresh context (its own cookies)."""

    def __init__(self) -> None:
        self._proc = subprocess.Popen(
            ["node", str(SCRIPT), FIREFOX],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._lock = threading.Lock()
        self.version = self.call("version")["value"]

    def call(self, cmd: str, timeout_ms: int = 15_000, **args: Any) -> dict[str, Any]:
        proc = self._proc
        assert proc.stdin is not None and proc.stdout is not None
        with self._lock:
            proc.stdin.write(json.dumps({"cmd": cmd, "timeoutMs": timeout_ms, **args}) + "\n")
            proc.stdin.flush()
            # A driver that hangs past its own timeout is killed, so the test fails, not waits.
            watchdog = threading.Timer(timeout_ms / 1000 + 30, proc.kill)
            watchdog.start()
            try:
                line = proc.stdout.readline()
            finally:
                watchdog.cancel()
        if not line:
            raise FirefoxError(f"firefox driver exited during {cmd!r}: {self._stderr()}")
        answer = json.loads(line)
        if "error" in answer:
            raise FirefoxError(f"firefox {cmd} {args!r} failed: {answer['error']}")
        return answer

    def page(self, name: str) -> FirefoxPage:
        self.call("open", page=name)
        return FirefoxPage(self, name)

    def close(self) -> None:
        proc = self._proc
        assert proc.stdin is not None
        try:
            if proc.poll() is None:
                proc.stdin.write('{"cmd": "quit"}\n')
            proc.communicate(timeout=20)  # closes every pipe
        except (OSError, ValueError, subprocess.TimeoutExpired):
            proc.kill()
            proc.communicate()

    def _stderr(self) -> str:
        self._proc.kill()
        _, err = self._proc.communicate(timeout=10)
        return err[-4000:]


class FirefoxPage:
    def __init__(self, firefox: Firefox, name: str) -> None:
        self._ff = firefox
        self.name = name

    def _call(self, cmd: str, **args: Any) -> Any:
        return self._ff.call(cmd, page=self.name, **args).get("value")

    def goto(self, url: str) -> str:
        return self._call("goto", url=url)

    def fill(self, selector: str, value: str) -> None:
        self._call("fill", selector=selector, value=value)

    def click(self, selector: str, *, navigates: bool = False) -> str:
        return self._call("click", selector=selector, navigates=navigates)

    def press(self, key: str) -> None:
        self._call("press", key=key)

    def type(self, text: str, delay: int = 10) -> None:
        self._call("type", text=text, delay=delay)

    def wait_for(self, js: str, timeout_ms: int = 15_000) -> None:
        """Wait until the JavaScript expression ``js`` is truthy in the page."""
        self._ff.call("waitFor", timeout_ms=timeout_ms, page=self.name, js=js)

    def eval(self, js: str) -> Any:
        return self._call("eval", js=js)

    def set_viewport(self, width: int, height: int) -> None:
        self._call("viewport", width=width, height=height)

    def screenshot(self, path: Path) -> None:
        self._call("screenshot", path=str(path))

    @property
    def url(self) -> str:
        return self.eval("location.href")
