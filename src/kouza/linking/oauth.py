"""Linking a bank account through an ``oauth`` bank's authorization flow, under kouza's policy.

Two steps, each a request of the customer's app (ADR 0013):

1. **Start** (``POST /v1/wallets/{id}/bank-links/oauth``, device-signed like every link): the
   checks of a legacy link — kill switches, the caller's active wallet, the level gate, the
   device signature, room for another account, the risk decision — plus an eKYC-verified
   identity and a bank whose profile is ``oauth``. Then the wallet pushes the authorization
   request (RFC 9126) signed with its ``private_key_jwt`` assertion: PKCE S256, a fresh DPoP key
   named by ``dpop_jkt``, a random ``state``, and the kanji name and birth date the user's eKYC
   read from their card (never typed ones), with the declared kana as a second check, for the
   bank to compare with the account holder (ADR 0023). The flow is stored
   bound to the wallet, the user and the device; the state only as an HMAC, the verifier and the
   DPoP key only sealed. The answer is the URL the user's browser opens at the bank.
2. **Callback** (``POST /v1/wallets/{id}/bank-links/oauth/callback``): the app relays the
   bank's redirect (``code``, ``state``, ``iss``). The state must name a pending, unexpired flow
   of this wallet, user and device; from then on the flow is spent whatever happens. ``iss``
   must be the issuer the flow was started with (RFC 9207, against mix-up). The non-interactive
   checks run again (a kill switch or a lock may have come meanwhile); the code is exchanged
   with a DPoP proof; the link, its mandate and its sealed token are stored.

A link made this way never tells the wallet the account number: the bank checked the holder, so
the wallet keeps only the bank's link id, fingerprinted for the risk engine's account features
(one live link per account and operator is the bank's own rule).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from urllib.parse import urlencode

from joserfc.jwk import ECKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from kouza.controls.models import SwitchScope
from kouza.controls.switches import switches
from kouza.errors import KouzaError
from kouza.identity.devices import SensitiveAction
from kouza.identity.models import VerifiedIdentity
from kouza.kit import zengin
from kouza.kit.db import add_unique
from kouza.kit.locking import lock_row
from kouza.kit.security import keyed_hash, random_token
from kouza.linking import policy
from kouza.linking.client import (
    AuthorizationServer,
    DPoPCredentials,
    IssuedToken,
    bank_client_of,
)
from kouza.linking.errors import (
    AccountAlreadyLinked,
    BankLinkRefused,
    BankRefused,
    InvalidBankDetails,
    OAuthIssuerMismatch,
    OAuthNotOffered,
    OAuthStateInvalid,
    VerifiedNameRequired,
)
from kouza.linking.keys import Signer, b64url_sha256, new_dpop_key, seal, unseal
from kouza.linking.links import Caller, owned_wallet_locked, require_room
from kouza.linking.models import (
    BankLink,
    BankLinkStatus,
    BankLinkToken,
    BankOAuthFlow,
    OAuthFlowStatus,
)
from kouza.risk.events import EventType, RiskEvent, account_fingerprint
from kouza.runtime import Runtime, runtime_of

OAUTH_PROFILE = "oauth"
SCOPE = "debit"
_BANK_CODE = re.compile(r"[0-9]{4}")
_STATE_PURPOSE = "bank-oauth-state"


@dataclass(frozen=True)
class DeclaredIdentity:
    """A holder name (kana, kanji) and birth date as a user typed them (2020 replays only)."""

    kana_name: str
    birth_date: date
    name: str
    """The kanji name as typed (a verified identity's is the card's)."""


SentIdentity = VerifiedIdentity | DeclaredIdentity
"""What the PAR carries as the holder's identity."""


@dataclass(frozen=True)
class OAuthStart:
    """Where to send the user's browser, and until when the flow may complete."""

    flow_id: uuid.UUID
    authorization_url: str
    expires_at: datetime


@dataclass(frozen=True)
class OAuthCallback:
    """The bank's authorization response as the app relays it."""

    state: str = field(repr=False)
    code: str | None = field(default=None, repr=False)
    iss: str | None = None
    error: str | None = None
    error_description: str | None = None


def _state_hash(session: Session, state: str) -> str:
    return keyed_hash(runtime_of(session).secret, state, purpose=_STATE_PURPOSE)


OAUTH_METHOD = "oauth"
"""The ``method`` label of links made through a bank's OAuth flow."""


class OAuthLinkService:
    """Start and complete links through a bank's OAuth flow."""

    # --- start ------------------------------------------------------------------------------

    def start(
        self,
        session: Session,
        caller: Caller,
        bank_code: str,
        declared: DeclaredIdentity | None = None,
    ) -> OAuthStart:
        """Check policy, push the authorization request; the URL for the user's browser.

        ``declared`` (a name and birth date the user typed) is sent instead of the verified
        identity only when ``link_name_match`` is off: the 2020 wallets that replay the JBA
        guideline sent what their user declared, and kouza never does."""
        event = self._event(session, caller, bank_code)
        metrics = runtime_of(session).metrics
        bank = metrics.bank(bank_code)
        metrics.link_attempts.inc(bank=bank, method=OAUTH_METHOD)
        try:
            return self._start(session, caller, bank_code, event, declared)
        except KouzaError as refusal:
            # as for legacy links: a refused attempt is evidence and commits with its event
            policy.record(session, replace(event, outcome=refusal.code), refusal=refusal)
            refusal.keep_changes = True
            metrics.link_refusals.inc(bank=bank, method=OAUTH_METHOD, reason=refusal.code)
            raise

    def _start(
        self,
        session: Session,
        caller: Caller,
        bank_code: str,
        event: RiskEvent,
        declared: DeclaredIdentity | None = None,
    ) -> OAuthStart:
        switches.require_open(session, SwitchScope.ALL_LINKS)
        switches.require_open(session, SwitchScope.BANK_LINKS, bank_code[:8])
        if not _BANK_CODE.fullmatch(bank_code):
            raise InvalidBankDetails("bank_code has the wrong format", field="bank_code")
        zengin.bank(bank_code)  # real codes only (422 otherwise)
        wallet = owned_wallet_locked(session, caller)
        policy.require_bank_gate(session, caller.user)
        device_id = policy.require_device(
            session,
            caller.user,
            device_id=caller.device_id,
            proof=caller.proof,
            action=SensitiveAction.LINK_BANK,
        )
        if declared is not None and not runtime_of(session).settings.link_name_match:
            verified: SentIdentity = declared
        else:
            verified = self._verified_identity(session, caller)
        require_room(session, wallet)
        runtime = runtime_of(session)
        client = bank_client_of(runtime)
        if client.bank(bank_code).auth_profile != OAUTH_PROFILE:
            raise OAuthNotOffered(
                "this bank does not offer the OAuth flow; its form cannot be used here",
                bank_code=bank_code,
            )
        decision = policy.decide(session, event)
        policy.enforce(
            session,
            decision,
            user=caller.user,
            wallet_id=wallet.id,
            purpose=SensitiveAction.LINK_BANK,
            signed_by=device_id,
        )
        server = client.authorization_server(bank_code)
        return self._push(session, caller, server, verified, bank_code, device_id)

    def _verified_identity(self, session: Session, caller: Caller) -> VerifiedIdentity:
        verified = session.get(VerifiedIdentity, caller.user.id)
        if verified is None or verified.revoked_at is not None:
            raise VerifiedNameRequired(
                "an OAuth link carries your eKYC-verified name and birth date; verify first"
            )
        return verified

    def _push(
        self,
        session: Session,
        caller: Caller,
        server: AuthorizationServer,
        verified: SentIdentity,
        bank_code: str,
        device_id: uuid.UUID | None,
    ) -> OAuthStart:
        runtime = runtime_of(session)
        settings = runtime.settings
        state, verifier, dpop_key = random_token(32), random_token(48), new_dpop_key()
        fields = {
            "response_type": "code",
            "client_id": settings.bank_client_id,
            "redirect_uri": settings.bank_oauth_redirect_uri,
            "scope": SCOPE,
            "state": state,
            "code_challenge": b64url_sha256(verifier),
            "code_challenge_method": "S256",
            "dpop_jkt": dpop_key.thumbprint(),
            "holder_name": verified.name,
            "holder_name_kana": verified.kana_name,
            "holder_birth_date": verified.birth_date.isoformat(),
            "wallet_reference": str(caller.wallet_id),
            "max_per_debit": str(settings.link_mandate_max_per_debit_yen),
            "max_30_days": str(settings.link_mandate_max_30_days_yen),
        }
        request_uri = bank_client_of(runtime).push_authorization(server, Signer(runtime), fields)
        now = runtime.now()
        flow = BankOAuthFlow(
            state_hash=_state_hash(session, state),
            wallet_id=caller.wallet_id,
            user_id=caller.user.id,
            device_id=device_id,
            bank_code=bank_code,
            issuer=server.issuer,
            token_endpoint=server.token_endpoint,
            sealed=seal(
                runtime,
                {"code_verifier": verifier, "dpop_key": dpop_key.as_dict(private=True)},
            ),
            status=OAuthFlowStatus.PENDING.value,
            ip=caller.ip[:64],
            created_at=now,
            expires_at=now + timedelta(seconds=settings.bank_oauth_flow_ttl_seconds),
        )
        session.add(flow)
        session.flush()
        query = urlencode({"client_id": settings.bank_client_id, "request_uri": request_uri})
        joiner = "&" if "?" in server.authorization_endpoint else "?"
        return OAuthStart(flow.id, server.authorization_endpoint + joiner + query, flow.expires_at)

    # --- callback ---------------------------------------------------------------------------

    def complete(self, session: Session, caller: Caller, callback: OAuthCallback) -> BankLink:
        """Check the bank's answer against the flow, exchange the code, store the link."""
        flow = self._pending_flow(session, caller, callback.state)
        event = self._event(session, caller, flow.bank_code)
        metrics = runtime_of(session).metrics
        bank = metrics.bank(flow.bank_code)
        try:
            link = self._complete(session, caller, flow, callback)
        except KouzaError as refusal:
            # the state is spent whatever the outcome: one authorization response per flow
            self._finish(session, flow, OAuthFlowStatus.FAILED, failure=refusal.code)
            policy.record(session, replace(event, outcome=refusal.code))
            refusal.keep_changes = True
            metrics.link_refusals.inc(bank=bank, method=OAUTH_METHOD, reason=refusal.code)
            raise
        self._finish(session, flow, OAuthFlowStatus.COMPLETED, link_id=link.id)
        linked = replace(event, account=link.account_fingerprint)
        policy.record(session, linked)
        policy.record(session, replace(linked, type=EventType.LINK_CREATED))
        metrics.links_created.inc(bank=bank, method=OAUTH_METHOD)
        return link

    def _pending_flow(self, session: Session, caller: Caller, state: str) -> BankOAuthFlow:
        found = session.scalar(
            select(BankOAuthFlow.id).where(BankOAuthFlow.state_hash == _state_hash(session, state))
        )
        flow = lock_row(session, BankOAuthFlow, found) if found is not None else None
        device_differs = (
            flow is not None and flow.device_id is not None and flow.device_id != caller.device_id
        )
        if (
            flow is None
            or flow.user_id != caller.user.id
            or flow.wallet_id != caller.wallet_id
            or device_differs
        ):
            raise OAuthStateInvalid("this authorization response belongs to no link you started")
        if flow.status != OAuthFlowStatus.PENDING.value:
            raise OAuthStateInvalid("this authorization response was already used")
        if flow.expires_at <= runtime_of(session).now():
            raise OAuthStateInvalid("this link attempt has expired; start again")
        return flow

    def _complete(
        self, session: Session, caller: Caller, flow: BankOAuthFlow, callback: OAuthCallback
    ) -> BankLink:
        if callback.iss != flow.issuer:
            raise OAuthIssuerMismatch(
                "the authorization response does not come from the bank this link was started with",
                expected=flow.issuer,
            )
        if callback.error:
            raise BankLinkRefused(
                f"the bank ended the authorization: {(callback.error_description or '')[:200]}",
                bank_error=callback.error[:64],
            )
        if not callback.code:
            raise InvalidBankDetails("code is required", field="code")
        switches.require_open(session, SwitchScope.ALL_LINKS)
        switches.require_open(session, SwitchScope.BANK_LINKS, flow.bank_code)
        wallet = owned_wallet_locked(session, caller)
        policy.require_bank_gate(session, caller.user)
        require_room(session, wallet)
        issued, dpop_key = self._exchange(session, flow, callback.code)
        return self._create(session, flow, issued, dpop_key)

    def _exchange(
        self, session: Session, flow: BankOAuthFlow, code: str
    ) -> tuple[IssuedToken, ECKey]:
        runtime = runtime_of(session)
        sealed = unseal(runtime, flow.sealed)
        dpop_key = ECKey.import_key(sealed["dpop_key"])
        server = AuthorizationServer(
            issuer=flow.issuer,
            authorization_endpoint="",
            token_endpoint=flow.token_endpoint,
            par_endpoint="",
        )
        try:
            issued = bank_client_of(runtime).exchange_code(
                server,
                Signer(runtime),
                code=code,
                redirect_uri=runtime.settings.bank_oauth_redirect_uri,
                code_verifier=str(sealed["code_verifier"]),
                dpop_key=dpop_key,
            )
        except BankRefused as refusal:
            raise BankLinkRefused(
                refusal.message, bank_error=str(refusal.details.get("bank_error") or "")
            ) from None
        return issued, dpop_key

    def _create(
        self, session: Session, flow: BankOAuthFlow, issued: IssuedToken, dpop_key: ECKey
    ) -> BankLink:
        runtime = runtime_of(session)
        now = runtime.now()
        expires_at = now + timedelta(seconds=issued.expires_in)
        link = BankLink(
            wallet_id=flow.wallet_id,
            bank_code=flow.bank_code,
            branch="",
            account_type="",
            account_fingerprint=account_fingerprint(
                runtime.secret, bank=flow.bank_code, branch="oauth", number=str(issued.link_id)
            ),
            account_last3="",
            bank_link_id=issued.link_id,
            max_per_debit=issued.max_per_debit,
            max_30_days=issued.max_30_days,
            mandate_expires_at=expires_at,
            status=BankLinkStatus.ACTIVE.value,
            device_id=flow.device_id,
            ip=flow.ip,
            created_at=now,
        )
        add_unique(
            session, link, AccountAlreadyLinked("this account is already linked to a kouza wallet")
        )
        secrets = {"access_token": issued.access_token, "dpop_key": dpop_key.as_dict(private=True)}
        if issued.refresh_token:
            secrets["refresh_token"] = issued.refresh_token
        session.add(
            BankLinkToken(
                link_id=link.id,
                issuer=flow.issuer,
                token_endpoint=flow.token_endpoint,
                sealed=seal(runtime, secrets),
                expires_at=expires_at,
                created_at=now,
            )
        )
        session.flush()
        return link

    def _finish(
        self,
        session: Session,
        flow: BankOAuthFlow,
        status: OAuthFlowStatus,
        *,
        failure: str = "",
        link_id: uuid.UUID | None = None,
    ) -> None:
        flow.status = status.value
        flow.failure = failure[:200]
        flow.link_id = link_id
        flow.finished_at = runtime_of(session).now()
        session.flush()

    def _event(self, session: Session, caller: Caller, bank_code: str) -> RiskEvent:
        return RiskEvent(
            type=EventType.LINK_ATTEMPT,
            at=runtime_of(session).now(),
            wallet=str(caller.wallet_id),
            user=str(caller.user.id),
            device=str(caller.device_id or ""),
            ip=caller.ip,
            email_domain=caller.user.email.rpartition("@")[2],
            bank=bank_code[:8],
        )


def dpop_credentials(runtime: Runtime, link_id: uuid.UUID) -> DPoPCredentials | None:
    """The DPoP-bound token of an OAuth link (None for a legacy link), unsealed in memory."""
    with runtime.db.session() as session:
        return credentials_of(session, link_id)


def credentials_of(session: Session, link_id: uuid.UUID) -> DPoPCredentials | None:
    """:func:`dpop_credentials`, read in the caller's unit of work."""
    runtime = runtime_of(session)
    row = session.get(BankLinkToken, link_id)
    if row is None:
        return None
    values = unseal(runtime, row.sealed)
    return DPoPCredentials(
        access_token=str(values["access_token"]),
        key=ECKey.import_key(values["dpop_key"]),
        signer=Signer(runtime),
        resource_base=runtime.settings.bank_issuer,
    )


oauth_links = OAuthLinkService()
"""The OAuth link service singleton."""
