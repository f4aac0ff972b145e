"""Internet banking's pages for an operator's link request: login, one-time password, account
choice, consent, messages (the OAuth flow of ``kouza.bank.oauth_endpoints``).

Every form carries the session's CSRF token as a hidden ``csrf_token`` field. The consent page
widens the policy's ``form-action`` to the operator's origin only, because approving or
refusing answers with a redirect to the operator's registered ``redirect_uri``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse

from kouza.bank.pages import bank_pages

SERVICE = "ib.name"


@dataclass(frozen=True)
class ConsentView:
    """What the consent page shows."""

    bank_name: str
    bank_code: str
    operator_name: str
    account_label: str
    max_per_debit: int
    max_30_days: int
    expires_on: str
    redirect_uri: str
    several_accounts: bool = False


def _common(bank_name: str, bank_code: str, title_key: str) -> dict[str, object]:
    return {
        "bank_name": bank_name,
        "bank_code": bank_code,
        "service": SERVICE,
        "title_key": title_key,
    }


def login_page(
    request: Request,
    *,
    bank_name: str,
    bank_code: str,
    action: str,
    csrf: str,
    operator: str = "",
    failed: bool = False,
) -> HTMLResponse:
    """Internet-banking login: branch, account number, password."""
    return bank_pages.render(
        request,
        "bank/login.html",
        {
            **_common(bank_name, bank_code, "login.title"),
            "action": action,
            "csrf": csrf,
            "operator": operator,
            "intro": "",
            "message": "login.failed" if failed else "",
            "message_kind": "error",
            "show_steps": True,
            "with_account": False,
        },
        status_code=400 if failed else 200,
    )


def otp_page(
    request: Request, *, bank_name: str, bank_code: str, action: str, csrf: str
) -> HTMLResponse:
    """The one-time password form."""
    return bank_pages.render(
        request,
        "bank/otp.html",
        {
            **_common(bank_name, bank_code, "otp.title"),
            "action": action,
            "csrf": csrf,
            "show_steps": True,
            "with_account": False,
        },
    )


def account_page(
    request: Request,
    *,
    bank_name: str,
    bank_code: str,
    action: str,
    csrf: str,
    accounts: Sequence[tuple[str, str]],
) -> HTMLResponse:
    """Choose which account to link."""
    return bank_pages.render(
        request,
        "bank/account.html",
        {
            **_common(bank_name, bank_code, "account.title"),
            "action": action,
            "csrf": csrf,
            "accounts": accounts,
        },
    )


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of ``url``."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def consent_page(request: Request, view: ConsentView, *, action: str, csrf: str) -> HTMLResponse:
    """What the holder approves: operator, purpose, account, the mandate's limits and expiry,
    what the operator may and may not do, and how to stop it."""
    return bank_pages.render(
        request,
        "bank/consent.html",
        {
            **_common(view.bank_name, view.bank_code, "consent.title"),
            "view": view,
            "action": action,
            "csrf": csrf,
            "with_account": view.several_accounts,
        },
        form_targets=[origin_of(view.redirect_uri)],
    )


def message_page(
    request: Request,
    *,
    bank_name: str,
    bank_code: str,
    title_key: str,
    body_key: str,
    detail: str = "",
    status_code: int,
    return_url: str | None = None,
) -> HTMLResponse:
    """A message to the holder (``detail``: the refusal as the service worded it, in English),
    with a way back to the operator when there is a safe one."""
    return bank_pages.render(
        request,
        "bank/message.html",
        {
            **_common(bank_name, bank_code, title_key),
            "body_key": body_key,
            "detail": detail,
            "kind": "error" if status_code >= 400 else "info",
            "return_url": return_url,
        },
        status_code=status_code,
    )
