"""Browser steps for the H5 registration org picker (contest/static/h5/orgpicker.js).

The picker (``data-testid=register-org``, its ``data-org-id`` the chosen unit) offers a search
box (``org-search``, results ``org-result`` with ``data-org-id``) and a cascade of selects
(``org-level`` with ``data-level``), one per level, the single root chosen by itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["pick_by_cascade", "pick_by_search"]

TIMEOUT_MS = 10_000


async def pick_by_cascade(page: Any, path_ids: Sequence[str]) -> None:
    """Choose ``path_ids[-1]`` level by level (``path_ids``: root first)."""
    from playwright.async_api import expect

    for level, org_id in enumerate(path_ids, start=1):
        select = page.locator(f'[data-testid=org-level][data-level="{level}"]')
        await expect(select.locator(f'option[value="{org_id}"]')).to_be_attached(timeout=TIMEOUT_MS)
        if await select.input_value() != org_id:
            await select.select_option(org_id)
        await expect(page.get_by_test_id("register-org")).to_have_attribute("data-org-id", org_id)


async def pick_by_search(page: Any, query: str, org_id: str) -> None:
    """Type ``query`` into the search box and tap the result that is ``org_id``."""
    from playwright.async_api import expect

    await page.get_by_test_id("org-search").fill(query)
    result = page.locator(f'[data-testid=org-result][data-org-id="{org_id}"]')
    await expect(result).to_be_visible(timeout=TIMEOUT_MS)
    await result.click()
    await expect(page.get_by_test_id("register-org")).to_have_attribute("data-org-id", org_id)
