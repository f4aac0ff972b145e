"""The harness itself: Chromium through Playwright, both servers live, axe-core injected."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveWorld, assert_accessible


def test_the_bank_login_page_opens_in_chromium_from_a_wallet_link(
    page: Page, live_world: LiveWorld
) -> None:
    page.goto(f"{live_world.wallet_url}/health")
    expect(page.locator("body")).to_contain_text('"status":"ok"')
    page.goto(f"{live_world.bank_url}/docs")
    expect(page).to_have_title("kouza bank API - Swagger UI")


def test_axe_runs_on_a_bank_page(page: Page, live_world: LiveWorld) -> None:
    page.goto(f"{live_world.bank_url}/v1/banks/0010/oauth/authorize?client_id=nobody")
    expect(page.locator("body")).to_contain_text("invalid_request_uri")
    assert_accessible(page, "the bank's error page")
