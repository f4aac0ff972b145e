"""The holder's HTML pages: login, one-time password, account choice, consent, messages.

Plain server-rendered forms (no script), every value escaped with :func:`html.escape`, every
form carrying the session's CSRF token as a hidden field. Pages are served with
``Cache-Control: no-store`` and a ``Content-Security-Policy`` that forbids framing (clickjacking
of the consent button) and any script.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from fastapi.responses import HTMLResponse

SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
PURPOSE = (
    "ウォレットへのチャージのための口座振替と、ウォレットからの出金の受け取り "
    "(direct debits to top up the wallet, and credits of withdrawals from it)"
)


@dataclass(frozen=True)
class ConsentView:
    """What the consent page shows."""

    bank_name: str
    operator_name: str
    account_label: str
    max_per_debit: int
    max_30_days: int
    expires_on: str


def _page(bank_name: str, title: str, body: str, status_code: int = 200) -> HTMLResponse:
    html = (
        f'<!doctype html><html lang="ja"><head><meta charset="utf-8">'
        f"<title>{escape(bank_name)} — {escape(title)}</title></head><body>"
        f"<h1>{escape(bank_name)}</h1><h2>{escape(title)}</h2>{body}</body></html>"
    )
    return HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)


def _form(action: str, csrf: str, fields: str, button: str) -> str:
    return (
        f'<form method="post" action="{escape(action)}">'
        f'<input type="hidden" name="csrf_token" value="{escape(csrf)}">{fields}'
        f'<button type="submit">{escape(button)}</button></form>'
    )


def _message(message: str | None) -> str:
    return f'<p role="alert">{escape(message)}</p>' if message else ""


def login_page(bank_name: str, action: str, csrf: str, message: str | None = None) -> HTMLResponse:
    """Internet-banking login: branch, account number, password."""
    fields = (
        '<label>支店番号 branch <input name="branch_code" inputmode="numeric"></label>'
        '<label>口座番号 account number <input name="account_number" '
        'inputmode="numeric"></label>'
        '<label>ログインパスワード password <input type="password" name="password" '
        'autocomplete="current-password"></label>'
    )
    return _page(
        bank_name,
        "インターネットバンキング ログイン (login)",
        _message(message) + _form(action, csrf, fields, "次へ (next)"),
    )


def otp_page(bank_name: str, action: str, csrf: str) -> HTMLResponse:
    """The one-time password form."""
    fields = (
        '<label>ワンタイムパスワード one-time password <input name="otp" '
        'inputmode="numeric" autocomplete="one-time-code"></label>'
    )
    return _page(
        bank_name,
        "ワンタイムパスワード (one-time password)",
        _form(action, csrf, fields, "ログイン (log in)"),
    )


def account_page(
    bank_name: str, action: str, csrf: str, accounts: Sequence[tuple[str, str]]
) -> HTMLResponse:
    """Choose which account to link."""
    options = "".join(
        f'<label><input type="radio" name="account_id" value="{escape(value)}">'
        f"{escape(label)}</label>"
        for value, label in accounts
    )
    return _page(
        bank_name, "口座の選択 (choose the account)", _form(action, csrf, options, "次へ (next)")
    )


def consent_page(view: ConsentView, action: str, csrf: str) -> HTMLResponse:
    """What the holder approves: operator, purpose, account, mandate limits."""
    details = (
        f'<dl><dt>事業者 operator</dt><dd id="operator">{escape(view.operator_name)}</dd>'
        f'<dt>目的 purpose</dt><dd id="purpose">{escape(PURPOSE)}</dd>'
        f'<dt>口座 account</dt><dd id="account">{escape(view.account_label)}</dd>'
        f'<dt>1回の上限 per debit</dt><dd id="max_per_debit">¥{view.max_per_debit:,}</dd>'
        f'<dt>30日間の上限 per 30 days</dt><dd id="max_30_days">¥{view.max_30_days:,}</dd>'
        f'<dt>有効期限 expires</dt><dd id="expires">{escape(view.expires_on)}</dd></dl>'
    )
    buttons = (
        '<button type="submit" name="decision" value="approve">同意する (approve)'
        '</button><button type="submit" name="decision" value="deny">'
        "同意しない (refuse)</button>"
    )
    form = (
        f'<form method="post" action="{escape(action)}">'
        f'<input type="hidden" name="csrf_token" value="{escape(csrf)}">{buttons}</form>'
    )
    return _page(view.bank_name, "口座振替の同意 (consent)", details + form)


def message_page(
    bank_name: str, title: str, message: str, *, status_code: int, return_url: str | None = None
) -> HTMLResponse:
    """A message to the holder, with a way back to the operator when there is a safe one."""
    link = (
        f'<p><a id="return" href="{escape(return_url)}">事業者に戻る (return)</a></p>'
        if return_url
        else ""
    )
    return _page(bank_name, title, f'<p role="alert">{escape(message)}</p>{link}', status_code)
