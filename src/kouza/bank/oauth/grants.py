"""Authorization codes, the token endpoint's code exchange, and DPoP-bound access tokens.

* **Codes** are random, stored as HMACs, live :data:`CODE_LIFETIME` and are bound to the client,
  the redirect URI, the PKCE challenge, the DPoP key named at PAR (if any), the chosen account
  and the approved mandate.
* **Exchange** (RFC 6749 §4.1.3, RFC 7636 §4.6, RFC 9449 §10): the code must be this client's,
  unexpired and unused, ``redirect_uri`` identical, ``BASE64URL(SHA256(code_verifier))`` equal to
  the challenge, and the DPoP proof's key the bound one. A failed check changes nothing (the
  code stays usable until it expires). A second use of a used code is ``invalid_grant`` and
  revokes every token issued from it (RFC 6749 §4.1.2), committed although refused.
  A successful exchange creates the link and its mandate through
  :func:`kouza.bank.legacy_form.create_link` — the same code as the legacy form, so the holder
  gets the same notice with the "not me" reference.
* **Access tokens** are opaque, stored as HMACs, bound to the proof key (``cnf.jkt``, returned
  as ``token_type: DPoP``) and to one link; they live as long as the mandate and die with the
  link (revocation is checked on every use). A link that ever had a token is
  *sender-constrained* (:func:`is_sender_constrained`): the API accepts nothing else on it.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from kouza.bank.errors import AlreadyLinked
from kouza.bank.legacy_form import create_link
from kouza.bank.models import (
    Account,
    Bank,
    Link,
    LinkStatus,
    OAuthAccessToken,
    OAuthAuthorizationCode,
    OperatorClient,
)
from kouza.bank.oauth.errors import InvalidGrant, InvalidToken
from kouza.bank.oauth.proofs import b64url_sha256
from kouza.bank.oauth.pushed import AuthorizationParameters
from kouza.bank.runtime import bank_runtime_of
from kouza.kit.locking import lock_row
from kouza.kit.security import constant_time_equal, keyed_hash, random_token

CODE_LIFETIME = timedelta(seconds=60)
_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")


@dataclass(frozen=True)
class IssuedToken:
    """What the token endpoint returns."""

    access_token: str
    expires_in: int
    link: Link


def _hash(session: Session, value: str, purpose: str) -> str:
    return keyed_hash(bank_runtime_of(session).secret, value, purpose=purpose)


def issue_code(
    session: Session,
    *,
    bank: Bank,
    client: OperatorClient,
    account: Account,
    parameters: AuthorizationParameters,
) -> str:
    """A new authorization code for the holder's approval."""
    now = bank_runtime_of(session).now()
    code = random_token()
    ends = date_of(parameters.mandate_expires_on)
    session.add(
        OAuthAuthorizationCode(
            code_hash=_hash(session, code, "oauth-code"),
            bank_id=bank.id,
            client_pk=client.id,
            account_id=account.id,
            redirect_uri=parameters.redirect_uri,
            code_challenge=parameters.code_challenge,
            dpop_jkt=parameters.dpop_jkt,
            wallet_reference=parameters.wallet_reference,
            max_per_debit=parameters.max_per_debit,
            max_30_days=parameters.max_30_days,
            mandate_expires_at=ends,
            created_at=now,
            expires_at=now + CODE_LIFETIME,
        )
    )
    session.flush()
    return code


def is_linked(session: Session, account: Account, client: OperatorClient) -> bool:
    """Whether ``account`` already has a live link to ``client`` (one per operator)."""
    return (
        session.scalar(
            select(Link.id)
            .where(
                Link.account_id == account.id,
                Link.client_pk == client.id,
                Link.status != LinkStatus.REVOKED.value,
            )
            .limit(1)
        )
        is not None
    )


def date_of(value: str) -> datetime:
    """An ISO date as midnight UTC of that day."""
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def exchange(
    session: Session,
    *,
    bank: Bank,
    client: OperatorClient,
    code: str,
    redirect_uri: str,
    code_verifier: str,
    jkt: str,
) -> IssuedToken:
    """Trade a code for a DPoP-bound token and a new link (``invalid_grant`` otherwise)."""
    grant = _locked_code(session, code)
    now = bank_runtime_of(session).now()
    if grant is None or grant.client_pk != client.id or grant.bank_id != bank.id:
        raise InvalidGrant("the code is unknown or was issued to another client")
    if grant.used_at is not None:
        _revoke_tokens_of(session, grant, now)
        raise InvalidGrant(
            "the code was already used; tokens issued from it are revoked", keep_changes=True
        )
    _check_binding(grant, now=now, redirect_uri=redirect_uri, code_verifier=code_verifier, jkt=jkt)
    link = _link(session, client, grant)
    grant.used_at, grant.link_id = now, link.id
    token = random_token()
    session.add(
        OAuthAccessToken(
            token_hash=_hash(session, token, "oauth-access-token"),
            client_pk=client.id,
            link_id=link.id,
            code_id=grant.id,
            jkt=jkt,
            created_at=now,
            expires_at=link.expires_at,
        )
    )
    session.flush()
    return IssuedToken(token, int((link.expires_at - now).total_seconds()), link)


def _locked_code(session: Session, code: str) -> OAuthAuthorizationCode | None:
    found = session.scalar(
        select(OAuthAuthorizationCode.id).where(
            OAuthAuthorizationCode.code_hash == _hash(session, code, "oauth-code")
        )
    )
    return lock_row(session, OAuthAuthorizationCode, found) if found is not None else None


def _check_binding(
    grant: OAuthAuthorizationCode, *, now: datetime, redirect_uri: str, code_verifier: str, jkt: str
) -> None:
    if grant.expires_at <= now:
        raise InvalidGrant("the code has expired")
    if not constant_time_equal(grant.redirect_uri, redirect_uri):
        raise InvalidGrant("redirect_uri differs from the authorization request's")
    if not _VERIFIER.fullmatch(code_verifier) or not constant_time_equal(
        b64url_sha256(code_verifier), grant.code_challenge
    ):
        raise InvalidGrant("the PKCE code_verifier does not match the code_challenge")
    if grant.dpop_jkt is not None and grant.dpop_jkt != jkt:
        raise InvalidGrant("the DPoP key differs from the one the code is bound to")


def _link(session: Session, client: OperatorClient, grant: OAuthAuthorizationCode) -> Link:
    bank = session.get_one(Bank, grant.bank_id)
    account = lock_row(session, Account, grant.account_id)
    assert account is not None
    try:
        return create_link(
            session,
            bank=bank,
            client=client,
            account=account,
            wallet_reference=grant.wallet_reference,
            max_per_debit=grant.max_per_debit,
            max_30_days=grant.max_30_days,
            expires_at=grant.mandate_expires_at,
        )
    except AlreadyLinked:
        raise InvalidGrant("the account is already linked to a wallet of this operator") from None


def _revoke_tokens_of(session: Session, grant: OAuthAuthorizationCode, now: datetime) -> None:
    session.execute(
        update(OAuthAccessToken)
        .where(
            OAuthAccessToken.code_id == grant.id,
            OAuthAccessToken.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )


def is_sender_constrained(session: Session, link_id: uuid.UUID | str) -> bool:
    """Whether the link was made through the OAuth flow (it has a DPoP-bound token)."""
    try:
        key = link_id if isinstance(link_id, uuid.UUID) else uuid.UUID(str(link_id))
    except ValueError:
        return False
    return (
        session.scalar(select(OAuthAccessToken.id).where(OAuthAccessToken.link_id == key).limit(1))
        is not None
    )


@dataclass(frozen=True)
class TokenGrant:
    """A valid access token: its client, its link and the key it is bound to."""

    client: OperatorClient
    link_id: str
    jkt: str


def access_token_grant(session: Session, token: str) -> TokenGrant:
    """The grant behind an access token; ``invalid_token`` if unknown, expired or revoked."""
    found = session.scalars(
        select(OAuthAccessToken).where(
            OAuthAccessToken.token_hash == _hash(session, token, "oauth-access-token")
        )
    ).one_or_none()
    now = bank_runtime_of(session).now()
    if found is None or found.revoked_at is not None or found.expires_at <= now:
        raise InvalidToken("the access token is unknown, expired or revoked")
    link = session.get_one(Link, found.link_id)
    if link.status == LinkStatus.REVOKED:
        raise InvalidToken("the link of this access token is revoked")
    client = session.get_one(OperatorClient, found.client_pk)
    return TokenGrant(client=client, link_id=str(found.link_id), jkt=found.jkt)
