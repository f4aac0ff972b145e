"""The wallet pages' router and how the API app serves them (``install``)."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from kouza.kit.pages import mount_static
from kouza.webapp import account, banks, money
from kouza.webapp.screen import HERE, STATIC_PREFIX

router = APIRouter(include_in_schema=False)
for pages in (account.router, banks.router, money.router):
    router.include_router(pages, prefix="/app")

legacy_router = APIRouter(include_in_schema=False)


@legacy_router.get("/bank-callback")
def old_bank_callback(request: Request) -> RedirectResponse:
    """The redirect URI's former default: the bank's answer goes on to the page that takes it."""
    query = request.url.query
    return RedirectResponse("/app/bank-callback" + (f"?{query}" if query else ""), 307)


def install(app: FastAPI) -> None:
    """Serve the customer pages, their assets and the kit's on ``app`` (out of the OpenAPI
    schema, so the API's fuzzing never reaches them)."""
    app.include_router(router)
    app.include_router(legacy_router)
    mount_static(app)
    app.mount(STATIC_PREFIX, StaticFiles(directory=HERE / "static"), name="app-static")
