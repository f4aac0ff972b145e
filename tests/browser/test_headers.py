"""The kit's pages in Chromium with their own Content-Security-Policy in force: the kit's
assets (HTMX, the stylesheet) load from the package, and no other script can run."""

from __future__ import annotations

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from playwright.sync_api import Browser, Error, expect

from kouza.kit.pages import Pages, mount_static
from kouza.kit.pages.i18n import Catalog
from tests.browser.conftest import HERE
from tests.browser.live import serve


def kit_app() -> FastAPI:
    app = FastAPI()
    mount_static(app)
    pages = Pages(
        HERE / "templates", catalog=Catalog({"hello": {"ja": "こんにちは", "en": "Hello"}})
    )

    @app.get("/page")
    def page(request: Request) -> HTMLResponse:
        return pages.render(request, "kit_page.html", {"csrf": "token-1"})

    @app.get("/fragment")
    def fragment(request: Request) -> HTMLResponse:
        assert request.headers.get("X-CSRF-Token") == "token-1"
        return HTMLResponse("<p id='loaded'>loaded by htmx</p>")

    return app


def test_kit_assets_load_and_inline_script_is_refused(browser: Browser) -> None:
    context = browser.new_context(bypass_csp=False, locale="ja-JP")
    page = context.new_page()
    with serve(kit_app()) as live:
        page.goto(f"{live.url}/page")
        expect(page.locator("h1")).to_have_text("こんにちは")
        page.get_by_role("button", name="load").click()
        expect(page.locator("#loaded")).to_have_text("loaded by htmx")
        with pytest.raises(Error, match="Content Security Policy"):
            page.add_script_tag(content="document.title = 'injected'")
        assert page.title() != "injected"
    context.close()
