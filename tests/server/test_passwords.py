"""Password hashing costs argon2's 64 MiB per hash: none at start-up, a bounded number at once."""

from __future__ import annotations

import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from argon2 import PasswordHasher

from server.identity.auth import DUMMY_HASH
from tests.support.servers import ROOT, Server

MiB = 1024 * 1024


def _kib(pid: int | str, field: str) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(rf"^{field}:\s+(\d+) kB", status, re.M)
    assert found
    return int(found.group(1))


def test_importing_auth_allocates_no_hash() -> None:
    script = (
        "import re, pathlib\n"
        "def hwm():\n"
        "    s = pathlib.Path('/proc/self/status').read_text()\n"
        "    return int(re.search(r'VmHWM:\\s+(\\d+)', s).group(1))\n"
        "import argon2, itsdangerous, persistence, server.store\n"
        "before = hwm()\n"
        "import server.identity.auth\n"
        "print(hwm() - before)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) * 1024 < 16 * MiB  # a hash at import was 64 MiB


def test_the_dummy_hash_costs_what_a_real_one_does() -> None:
    # Unknown emails are checked against it: with other parameters the timing would differ.
    assert not PasswordHasher().check_needs_rehash(DUMMY_HASH)


def test_concurrent_sign_ins_hash_a_bounded_number_at_once(database, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    srv = Server(
        data_dir=tmp_path,
        database_url=database.url,
        extra_env={"TANDEM_MAX_CONCURRENT_HASHES": "1"},
    ).start()
    try:
        srv.create_user("csm@vendor.example", "Casey CSM")
        assert srv.proc is not None
        pid = srv.proc.pid
        with httpx.Client(base_url=srv.http) as client:  # warm: one sign-in before measuring
            client.post("/login", data={"email": "csm@vendor.example", "password": "x" * 9})
        Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM from here on
        before = _kib(pid, "VmRSS")

        def attempt(i: int) -> int:
            with httpx.Client(base_url=srv.http, timeout=60) as client:
                email = "csm@vendor.example" if i % 2 else f"nobody{i}@vendor.example"
                r = client.post("/login", data={"email": email, "password": "wrong password"})
                return r.status_code

        with ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(attempt, range(8)))
        assert codes == [401] * 8
        grew = (_kib(pid, "VmHWM") - before) * 1024
        # One hash at a time: one 64 MiB block at most, not eight.
        assert grew < 100 * MiB, grew / MiB
    finally:
        srv.stop()
