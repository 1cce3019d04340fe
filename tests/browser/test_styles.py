"""Styles without inline CSS: every page loads under a content security policy whose style-src has
no 'unsafe-inline' without a single violation, and the top bar fits at phone, tablet, laptop and
wide widths on the plan's pages (screenshots in test-artifacts/ to look at)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.test_editor import ARTIFACTS, open_plan, type_at_end
from tests.browser.test_layout import plan_with_two_people
from tests.support.servers import Database, Server

pytestmark = pytest.mark.browser

# Every violation the page reports, kept on the window (an init script runs before the page's
# own HTML is parsed, so style attributes in the markup are caught too).
RECORD_VIOLATIONS = """
window.__csp = []
document.addEventListener('securitypolicyviolation', (e) => {
  window.__csp.push(`${e.violatedDirective} ${e.blockedURI} ${e.sample || ''}`.trim())
})
"""


class Violations:
    """CSP violations seen by one browser context: events on the page and console reports."""

    def __init__(self) -> None:
        self.console: list[str] = []

    def watch(self, page: Page) -> Page:
        page.add_init_script(RECORD_VIOLATIONS)
        page.on(
            "console",
            lambda m: self.console.append(m.text) if "Content Security Policy" in m.text else None,
        )
        return page

    def check(self, page: Page, what: str) -> list[str]:
        found = page.evaluate("window.__csp || []") + self.console
        self.console.clear()
        return [f"{what}: {v}" for v in found]


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[Server]:
    """A server with no account yet: the one that shows the setup page."""
    data = tmp_path / "fresh"
    data.mkdir()
    srv = Server(data_dir=data, database_url=Database("sqlite", data, at_head=True).url).start()
    yield srv
    srv.stop()


def test_no_page_breaks_the_content_security_policy(
    browser: Browser, web_server: Server, fresh_server: Server
) -> None:
    csp = httpx.get(f"{web_server.http}/login").headers["content-security-policy"]
    style_src = next(d for d in csp.split(";") if d.strip().startswith("style-src"))
    assert "'unsafe-inline'" not in style_src, csp

    # Two people in a plan with tasks and tables: the plan list then shows presence dots and a
    # progress bar, the editor carets and other people's names.
    plan = plan_with_two_people(browser, web_server, "Globex")
    base = plan.base
    type_at_end(plan.casey, "Casey was here")
    seen = Violations()
    page = seen.watch(plan.casey.context.new_page())
    problems: list[str] = []

    open_plan(page, base, plan.id)
    # Casey (once, however many tabs she has open) and Robin
    expect(page.locator("#presence .presence-person")).to_have_count(2)
    problems += seen.check(page, "editor")
    page.goto(f"{base}/")
    expect(page.locator(f'tr[data-plan="{plan.id}"] .presence-dots .dot').first).to_be_visible()
    expect(page.locator(f'tr[data-plan="{plan.id}"] .ov-bar')).to_be_visible()
    problems += seen.check(page, "plan list")
    for path in (
        f"/plans/{plan.id}/dashboard",
        f"/plans/{plan.id}/history",
        f"/plans/{plan.id}/share",
        f"/plans/{plan.id}/access",
        f"/plans/{plan.id}/settings",
        f"/plans/{plan.id}/internal",
        "/workspace/people",
        "/settings/notifications",
        "/no-such-page",
    ):
        page.goto(base + path)
        page.wait_for_load_state("load")
        problems += seen.check(page, path)

    # A share link's visit page, then the plan through it, and an embed: what outsiders see.
    token = web_server.create_token("casey@vendor.example")
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as api:
        link = api.post(f"/api/plans/{plan.id}/links", json={"role": "viewer", "label": "Board"})
        embed = api.post(f"/api/plans/{plan.id}/embeds", json={"role": "viewer", "label": "CRM"})
    assert link.status_code == embed.status_code == 201, (link.text, embed.text)
    outsider = browser.new_context()
    visitor = seen.watch(outsider.new_page())
    visitor.goto(link.json()["url"])
    visitor.wait_for_load_state("load")
    problems += seen.check(visitor, "share link visit page")
    visitor.goto(f"{base}/embed/{embed.json()['token']}")
    expect(visitor.locator("#editor")).to_have_attribute("data-synced", "true")
    problems += seen.check(visitor, "embed")
    for path in ("/login", "/password-reset"):
        visitor.goto(base + path)
        visitor.wait_for_load_state("load")
        problems += seen.check(visitor, path)
    visitor.goto(f"{fresh_server.http}/setup")
    expect(visitor.locator("h1")).to_have_text("Welcome to Tandem")
    problems += seen.check(visitor, "/setup")
    outsider.close()

    assert problems == [], "\n".join(problems)


WIDTHS = (360, 768, 1280, 1600)

# Where the top bar and what must stay reachable in it are, in the window's coordinates.
TOPBAR = """() => {
  const box = (e) => { const r = e.getBoundingClientRect(); return [r.left, r.right, r.width] }
  const bar = document.querySelector('.topbar')
  const signOut = [...bar.querySelectorAll('button')]
    .find((b) => b.textContent.trim() === 'Sign out')
  return {
    pageOverflow: document.documentElement.scrollWidth - innerWidth,
    barOverflow: bar.scrollWidth - bar.clientWidth,
    signOut: signOut ? box(signOut) : null,
    tabs: [...bar.querySelectorAll('.plan-nav a')].map((a) => [a.textContent.trim(), ...box(a)]),
    width: innerWidth,
  }
}"""


def test_the_top_bar_fits_at_every_width(browser: Browser, web_server: Server) -> None:
    plan = plan_with_two_people(browser, web_server, "Northwind Traders")
    base, page = plan.base, plan.casey
    problems: list[str] = []
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 800})
        for name, path in (
            ("editor", f"/plans/{plan.id}"),
            ("dashboard", f"/plans/{plan.id}/dashboard"),
            ("history", f"/plans/{plan.id}/history"),
            ("share", f"/plans/{plan.id}/share"),
        ):
            if name == "editor":
                open_plan(page, base, plan.id)
                expect(page.locator("#presence .presence-person")).to_have_count(2)
            else:
                page.goto(base + path)
            page.evaluate("window.scrollTo(0, 0)")
            shot = ARTIFACTS / f"topbar-{name}-{width}.png"
            page.screenshot(path=str(shot), clip={"x": 0, "y": 0, "width": width, "height": 200})
            bar = page.evaluate(TOPBAR)
            where = f"{name} at {width}px"
            if bar["pageOverflow"] > 0:
                wider = bar["pageOverflow"]
                problems.append(f"{where}: the page is {wider}px wider than the window")
            if bar["barOverflow"] > 0:
                problems.append(f"{where}: the top bar overflows by {bar['barOverflow']}px")
            if bar["signOut"] is None:
                problems.append(f"{where}: no Sign out")
            elif bar["signOut"][0] < 0 or bar["signOut"][1] > width:
                problems.append(f"{where}: Sign out is out of view at {bar['signOut']}")
            expect(page.get_by_role("button", name="Sign out")).to_be_visible()
            if name != "share":
                tabs = [t[0] for t in bar["tabs"]]
                assert tabs[:3] == ["Editor", "Dashboard", "History"] and tabs[-1] == "Share", tabs
            for label, left, right, w in bar["tabs"]:
                if left < 0 or right > width or w == 0:
                    problems.append(f"{where}: the {label} tab is out of view ({left}..{right})")
    # The plan list on a phone: each plan a block of labelled lines, none squeezed into a column
    # a letter wide (a grid for an older four-column list once did that to "Status").
    page.set_viewport_size({"width": 360, "height": 800})
    page.goto(f"{base}/")
    cells = page.eval_on_selector_all(
        ".overview-table td[data-label]:not(:empty)",
        "els => els.map((e) => [e.dataset.label, e.getBoundingClientRect().width])",
    )
    assert cells
    problems += [f"plan list at 360px: {label} is {w:.0f}px wide" for label, w in cells if w < 200]
    page.screenshot(path=str(ARTIFACTS / "plan-list-360.png"), full_page=True)
    assert problems == [], "\n".join(problems)
