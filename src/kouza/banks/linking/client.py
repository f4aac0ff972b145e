"""The wallet's HTTP client for the bank system: the only way the wallet reaches a bank.

:class:`BankClient` wraps one ``httpx.Client`` whose transport is injectable: real sockets in
``kouza serve`` (built from settings by :func:`bank_client_of`), and in tests or the simulator
any ``httpx.BaseTransport`` — an ``httpx.MockTransport`` that forwards to an in-process
``fastapi.testclient.TestClient(bank_app)`` (``httpx.ASGITransport`` is async-only in httpx
0.28, and the wallet's services are synchronous), or one that injects faults.

The client authenticates as the operator with HTTP Basic ``client_id:client_secret`` (the bank's
``dependencies.get_client``). Answers are sorted into three kinds:

* a 2xx: the parsed body;
* a definite refusal (4xx): :class:`~kouza.banks.linking.errors.BankRefused` (or a subclass for
  the legacy form), with the bank's error code — the bank did nothing;
* no answer (timeout, connection error, 5xx, or the bank's own "still in flight" 409):
  :class:`~kouza.banks.linking.errors.BankUnavailable` — the bank may or may not have acted.

Secrets (PIN, account number) travel only in request bodies and are never logged here.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import httpx

from kouza.banks.linking.errors import (
    AccountAlreadyLinked,
    BankLinkRefused,
    BankRefused,
    BankUnavailable,
    LegacyFormNotOffered,
    UnknownBank,
)
from kouza.config import Settings
from kouza.errors import KouzaError
from kouza.kit.runtime import Runtime

_INDEFINITE_CODES = frozenset({"idempotency_in_flight"})


@dataclass(frozen=True)
class BankInfo:
    """A bank of the deployment and how it links accounts."""

    code: str
    name: str
    auth_profile: str


@dataclass(frozen=True)
class LegacyLinkRequest:
    """What the wallet submits on a bank's legacy form for its user."""

    branch: str
    account_type: str
    account_number: str = field(repr=False)
    holder_kana: str
    pin: str = field(repr=False)
    wallet_reference: str
    end_user_source: str
    birth_date: date | None = None
    max_per_debit: int | None = None
    max_30_days: int | None = None

    def body(self) -> dict[str, Any]:
        return {
            "branch_code": self.branch,
            "account_type": self.account_type,
            "account_number": self.account_number,
            "holder_kana": self.holder_kana,
            "pin": self.pin,
            "wallet_reference": self.wallet_reference,
            "end_user_source": self.end_user_source,
            "birth_date": self.birth_date.isoformat() if self.birth_date else None,
            "max_per_debit": self.max_per_debit,
            "max_30_days": self.max_30_days,
        }


@dataclass(frozen=True)
class BankLinkInfo:
    """A link (mandate) as the bank reports it."""

    id: uuid.UUID
    status: str
    max_per_debit: int
    max_30_days: int
    expires_at: datetime


@dataclass(frozen=True)
class BankTransfer:
    """A debit or credit the bank executed."""

    id: uuid.UUID
    link_id: uuid.UUID
    kind: str
    amount: int
    idempotency_key: str
    created_at: datetime


class BankClient:
    """Legacy link, debit, credit, transfer lookups and JWKS, over HTTP."""

    def __init__(self, http: httpx.Client, *, client_id: str, client_secret: str) -> None:
        self.http = http
        self._auth = httpx.BasicAuth(client_id, client_secret)

    @classmethod
    def from_settings(
        cls, settings: Settings, transport: httpx.BaseTransport | None = None
    ) -> BankClient:
        """A client on ``settings.bank_api_url`` (real sockets unless ``transport``)."""
        http = httpx.Client(
            base_url=settings.bank_api_url,
            transport=transport,
            timeout=settings.bank_timeout_seconds,
        )
        return cls(
            http, client_id=settings.bank_client_id, client_secret=settings.bank_client_secret
        )

    def banks(self) -> list[BankInfo]:
        """Every bank of the deployment with its authentication profile."""
        rows = self._call("GET", "/v1/banks")
        return [BankInfo(row["code"], row["name"], row["auth_profile"]) for row in rows]

    def bank(self, code: str) -> BankInfo:
        """One bank by code; UnknownBank if the deployment does not serve it."""
        for info in self.banks():
            if info.code == code:
                return info
        raise UnknownBank("the bank system does not serve this bank code", bank_code=code)

    def legacy_link(self, bank_code: str, request: LegacyLinkRequest) -> BankLinkInfo:
        """Submit the bank's legacy form; the bank's refusals become wallet errors."""
        try:
            row = self._call("POST", f"/v1/banks/{bank_code}/legacy-links", json=request.body())
        except BankRefused as refusal:
            raise _link_refusal(refusal) from None
        return _link_info(row)

    def debit(
        self, link_id: uuid.UUID, *, amount: int, idempotency_key: str, description: str = ""
    ) -> BankTransfer:
        """Instant debit under the mandate (idempotent per key at the bank)."""
        return self._transfer("debits", link_id, amount, idempotency_key, description)

    def credit(
        self, link_id: uuid.UUID, *, amount: int, idempotency_key: str, description: str = ""
    ) -> BankTransfer:
        """Credit the linked account (idempotent per key at the bank)."""
        return self._transfer("credits", link_id, amount, idempotency_key, description)

    def transfer_by_key(self, idempotency_key: str) -> BankTransfer | None:
        """The transfer made under ``idempotency_key``, or None if the bank has none."""
        try:
            rows = self._call("GET", "/v1/transfers", params={"idempotency_key": idempotency_key})
        except BankRefused as refusal:
            if refusal.details.get("bank_error") == "unknown_transfer":
                return None
            raise
        return _transfer(rows[0])

    def transfer_report(self, *, since: datetime, until: datetime) -> list[BankTransfer]:
        """Every transfer of this operator with ``since <= created_at < until``."""
        rows = self._call(
            "GET", "/v1/transfers", params={"since": since.isoformat(), "until": until.isoformat()}
        )
        return [_transfer(row) for row in rows]

    def jwks(self) -> dict[str, Any]:
        """The bank's public keys for its signed webhooks."""
        keys = self._call("GET", "/.well-known/jwks.json", authenticated=False)
        if not isinstance(keys, dict):
            raise BankUnavailable("the bank's JWKS is not a JSON object")
        return keys

    def _transfer(
        self, what: str, link_id: uuid.UUID, amount: int, key: str, description: str
    ) -> BankTransfer:
        row = self._call(
            "POST",
            f"/v1/links/{link_id}/{what}",
            json={"amount": amount, "description": description},
            headers={"Idempotency-Key": key},
        )
        return _transfer(row)

    def _call(self, method: str, path: str, *, authenticated: bool = True, **kwargs: Any) -> Any:
        auth = self._auth if authenticated else None
        try:
            response = self.http.request(method, path, auth=auth, **kwargs)
        except httpx.HTTPError as exc:
            raise BankUnavailable(f"the bank did not answer ({type(exc).__name__})") from None
        return _answer(response)


def _answer(response: httpx.Response) -> Any:
    if response.is_success:
        return response.json()
    body = _json_or_empty(response)
    code = str(body.get("error", "")) if isinstance(body, dict) else ""
    message = str(body.get("message", "")) if isinstance(body, dict) else ""
    if response.status_code >= 500 or code in _INDEFINITE_CODES:
        raise BankUnavailable(f"the bank answered {response.status_code}", bank_error=code)
    raise BankRefused(
        message or f"the bank refused ({response.status_code})",
        bank_error=code,
        bank_status=response.status_code,
    )


def _json_or_empty(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return {}


def _link_refusal(refusal: BankRefused) -> KouzaError:
    code = refusal.details.get("bank_error")
    if code == "legacy_form_not_offered":
        return LegacyFormNotOffered("this bank links accounts only through its OAuth flow")
    if code == "already_linked":
        return AccountAlreadyLinked("this account is already linked to a kouza wallet")
    if code == "unknown_bank":
        return UnknownBank("the bank system does not serve this bank code")
    if code == "link_refused":
        return BankLinkRefused(refusal.message, bank_error=code)
    return refusal


def _link_info(row: dict[str, Any]) -> BankLinkInfo:
    return BankLinkInfo(
        id=uuid.UUID(row["id"]),
        status=row["status"],
        max_per_debit=int(row["max_per_debit"]),
        max_30_days=int(row["max_30_days"]),
        expires_at=datetime.fromisoformat(row["expires_at"]),
    )


def _transfer(row: dict[str, Any]) -> BankTransfer:
    return BankTransfer(
        id=uuid.UUID(row["id"]),
        link_id=uuid.UUID(row["link_id"]),
        kind=row["kind"],
        amount=int(row["amount"]),
        idempotency_key=row["idempotency_key"],
        created_at=datetime.fromisoformat(row["created_at"]),
    )


def bank_client_of(runtime: Runtime) -> BankClient:
    """The runtime's bank client (``providers["bank_client"]``), built from settings once."""
    client = runtime.providers.get("bank_client")
    if client is None:
        client = runtime.providers["bank_client"] = BankClient.from_settings(runtime.settings)
    assert isinstance(client, BankClient)
    return client
