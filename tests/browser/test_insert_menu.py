"""The Insert menu says what each section brings: a table's hint names every column it adds."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect

from tests.browser.conftest import sign_in
from tests.browser.test_editor import editor_json, open_plan
from tests.browser.test_editor_structure import nodes, task_text
from tests.browser.test_first_hour import create_from_template
from tests.support.servers import Server

pytestmark = pytest.mark.browser


def test_each_table_sections_hint_names_the_columns_it_inserts(
    browser: Browser, web_server: Server
) -> None:
    base = web_server.http
    page = sign_in(browser, base, "casey@vendor.example").new_page()
    plan_id = create_from_template(page, base, "")
    open_plan(page, base, plan_id)
    insert = page.locator("#toolbar [data-action=insert-section]")
    for value in ("contacts", "key-results", "risks"):
        page.locator("#editor .ProseMirror").press("Control+End")
        insert.click()
        item = page.locator(f"#insert-menu [data-value={value}]")
        expect(item).to_be_visible()
        hint = item.locator(".popup-hint").inner_text()
        item.click()
        expect(page.locator("#insert-menu")).to_have_count(0)
        table = nodes(editor_json(page), "table")[-1]
        header = [task_text({"content": [c["content"][0]]}) for c in table["content"][0]["content"]]
        assert hint == " · ".join(header), value
