"""The console mounted on the wallet's app: its routes, its assets, and how its refusals look.

``kouza.api.app`` calls :func:`install` once. Every console route is out of the OpenAPI schema
(``include_in_schema=False``), so the API's fuzzing never reaches the pages.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from kouza.console import (  # noqa: F401  (they register their routes)
    approvals_page,
    callcentre_page,
    casework,
    overview,
    reports_page,
    rules_page,
    signin,
    switchboard,
)
from kouza.console.web import (
    HERE,
    STATIC_PREFIX,
    BadCsrf,
    RoleMissing,
    SignInNeeded,
    render,
    router,
    sign_in_needed,
)
from kouza.kit.pages import mount_static
from kouza.runtime import get_runtime


def install(app: FastAPI) -> None:
    """Serve the console under ``/console`` on ``app``."""
    app.include_router(router)
    app.mount(STATIC_PREFIX, StaticFiles(directory=HERE / "static"), name="console-static")
    mount_static(app)

    @app.exception_handler(SignInNeeded)
    def _sign_in(request: Request, _: Exception) -> Response:
        return sign_in_needed(request)

    @app.exception_handler(RoleMissing)
    def _forbidden(request: Request, error: Exception) -> Response:
        assert isinstance(error, RoleMissing)
        return render(
            request,
            get_runtime(request),
            "console/refused.html",
            {"what": "forbidden"},
            signed_in=error.signed_in,
            status_code=403,
        )

    @app.exception_handler(BadCsrf)
    def _bad_csrf(request: Request, _: Exception) -> Response:
        return render(
            request,
            get_runtime(request),
            "console/refused.html",
            {"what": "csrf"},
            status_code=403,
        )
