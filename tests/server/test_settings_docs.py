"""Every setting is documented in the README's settings table."""

from __future__ import annotations

from server.settings import DOCUMENTED
from tests.support.servers import ROOT


def test_every_setting_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [name for name in DOCUMENTED if f"| `{name}` |" not in readme]
    assert not missing
