"""Settings, read from the environment (``KOUZA_*``) and an optional ``.env`` file.

Defaults give the embedded setup: SQLite files under ``./var/`` and development providers
(e-mail to an outbox table). Production sets ``KOUZA_DATABASE_URL`` to PostgreSQL and provides
real secrets; ``KOUZA_SECRET_KEY`` unset means a random key is generated once and kept in
``var/secret.key`` so that restarts keep signed QR codes and sessions valid.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from kouza.kit.settings import BaseServiceSettings


class Settings(BaseServiceSettings):
    """Runtime configuration of the wallet operator (``var_dir``, ``database_url``,
    ``secret_key`` and ``max_request_body_bytes`` come from :class:`BaseServiceSettings`)."""

    model_config = SettingsConfigDict(env_prefix="KOUZA_")
    DATABASE_FILE: ClassVar[str] = "kouza.db"
    SERVICE_NAME: ClassVar[str] = "kouza-wallet"
    SECRET_FILE: ClassVar[str] = "secret.key"

    env: Literal["development", "production"] = "development"
    """``production`` refuses development-only providers at start: mailbox files (codes in
    clear), the hash-comparing face matcher (ADR 0023)."""
    operator_name: str = "kouza"
    """The operator's name in e-mails, SMS and notices to customers and banks."""

    token_ttl_seconds: int = Field(default=24 * 3600, gt=0)
    """How long a customer's login (bearer token) stays valid."""
    email_code_ttl_seconds: int = Field(default=15 * 60, gt=0)
    """How long an e-mailed verification code works."""
    email_code_max_attempts: int = Field(default=5, gt=0)
    """Wrong tries of one e-mailed code before it stops working."""
    idempotency_lease_seconds: int = Field(default=60, gt=0)
    """How long a request holding an ``Idempotency-Key`` keeps it; a retry within the lease gets
    409 ``idempotency_in_flight``."""
    qr_ttl_seconds: int = Field(default=15 * 60, gt=0)
    """How long a signed dynamic QR code can be paid."""

    # Limits (yen). Policy objects are built from these in kouza.wallet.limits.
    limit_per_transaction_yen: int = Field(default=500_000, gt=0)
    """Largest single payment, transfer, withdrawal or top-up (yen)."""
    limit_per_day_yen: int = Field(default=500_000, gt=0)
    """Most a wallet may spend in any rolling 24 hours (yen)."""
    limit_rolling_30d_yen: int = Field(default=1_000_000, gt=0)
    """Most a wallet may spend, and separately top up, in any rolling 30 days (yen)."""
    limit_type2_ceiling_yen: int = Field(default=1_000_000, gt=0)
    """The legal ceiling of one transfer for a Type-2 funds-transfer operator (yen)."""
    limit_category_per_day_yen: dict[str, int] = Field(
        default_factory=lambda: {"electronics": 300_000, "tobacco": 50_000, "gift_cards": 50_000}
    )
    """Rolling 24-hour spending cap per merchant category (yen), e.g.
    ``{"electronics": 300000}``."""
    max_wallet_balance_yen: int = Field(default=1_000_000, gt=0)
    """Largest balance a wallet may hold (yen); a movement above it is refused."""

    # Phone, SMS codes, step-up, devices, eKYC (kouza.identity)
    phone_max_users_per_number: int = Field(default=1, gt=0)
    """How many users may verify the same phone number."""
    sms_code_ttl_seconds: int = Field(default=300, gt=0)
    """How long an SMS one-time code works."""
    sms_code_max_attempts: int = Field(default=5, gt=0)
    """Wrong tries of one SMS code before it stops working."""
    sms_resend_interval_seconds: int = Field(default=60, gt=0)
    """Least time between two codes sent to one number."""
    sms_limit_per_phone_per_hour: int = Field(default=5, gt=0)
    """SMS codes sent to one number per hour."""
    sms_limit_per_ip_per_hour: int = Field(default=20, gt=0)
    """SMS codes requested from one IP address per hour."""
    sms_limit_per_user_per_hour: int = Field(default=10, gt=0)
    """SMS codes requested by one user per hour."""
    step_up_validity_seconds: int = Field(default=300, gt=0)
    """How long a passed SMS step-up counts for the action it was asked for."""
    device_challenge_ttl_seconds: int = Field(default=120, gt=0)
    """How long a device-key challenge can be signed."""
    device_trust_after_hours: int = Field(default=72, ge=0)
    """A device key counts as *established* (its signature answers a risk step-up without an
    SMS code) once it has been registered this long, or at once when an established device of
    the same user approved its registration (ADR 0033)."""
    ekyc_nonce_ttl_seconds: int = Field(default=300, gt=0)
    """How long an eKYC session's nonce (what the card signs) is valid."""
    ekyc_starts_per_user_per_day: int = Field(default=10, gt=0)
    """eKYC sessions one user may start per day."""

    # Account-takeover protections (kouza.identity.proofs, ADR 0021)
    money_out_proof: bool = True
    """Money leaving a wallet needs a device signature or an SMS step-up (see the next two)."""
    money_out_free_payment_yen: int = Field(default=3_000, ge=0)
    """Payments up to this many yen need no proof (a coffee, a train ticket); above, they do.
    Transfers and withdrawals always need one."""
    credential_change_cooloff_hours: int = Field(default=48, gt=0)
    """After a password, phone or e-mail change, every payment needs a proof for this long,
    and an SMS step-up counts only if the phone itself was not changed."""
    password_min_score: int = Field(default=3, ge=0, le=4)
    """Lowest zxcvbn score (0-4) a new password must reach."""
    login_failures_per_account: int = Field(default=5, gt=0)
    """Wrong passwords for one e-mail address per window before its logins answer 429."""
    login_failures_per_ip: int = Field(default=20, gt=0)
    """Wrong passwords from one IP address (any accounts) per window before 429."""
    login_failure_window_seconds: int = Field(default=15 * 60, gt=0)
    """The window over which wrong passwords are counted for the two limits above."""
    not_me_link_ttl_seconds: int = Field(default=7 * 24 * 3600, gt=0)
    """How long the "not me" link of a new-login notice works."""

    risk_rules: str = ""
    """Path of the risk rule set (YAML); empty means the shipped default."""
    risk_candidate_rules: str = ""
    """Path of a candidate rule set (YAML) judged beside the live one on every decision and
    never enforced (shadow, docs/risk.md); empty means none. ``PUT /v1/ops/risk/rules/candidate``
    sets it at run time."""
    risk_model_path: str = Field(
        default="", validation_alias=AliasChoices("KOUZA_RISK_MODEL", "risk_model_path")
    )
    """Path of a learned risk model (``kouza risk train``); empty means none. Loaded at start
    (a bad file stops the start) and readable by rules as ``model("risk")``; shadow until a
    rule reads it (ADR 0031)."""

    # Bank linking and money movement (kouza.linking). Secure defaults; the simulator
    # flips them to replay 2019/2020 (ADR 0010).
    bank_api_url: str = "http://127.0.0.1:8100"
    """Base URL of the bank system's API."""
    bank_client_id: str = "kouza-wallet"
    """This operator's client id at the bank (also the ``aud`` of the bank's webhooks)."""
    bank_client_secret: str = ""
    """Legacy fallback only (``bank_client_auth = client_secret``): the bank refuses it on
    OAuth links and at its OAuth endpoints (ADR 0022)."""
    bank_client_auth: Literal["private_key_jwt", "client_secret"] = "private_key_jwt"
    """How the wallet authenticates to the bank API: assertions signed by its client key
    (``bank_oauth_key_file``, registered at the bank), or the legacy client secret."""
    bank_issuer: str = "https://bank.kouza.test"
    """``iss`` expected in the bank's signed webhooks."""
    bank_timeout_seconds: float = Field(default=10.0, gt=0)
    """Timeout of one call to the bank's API."""
    bank_jwks_ttl_seconds: int = Field(default=3600, gt=0)
    """How long the bank's webhook signing keys (JWKS) are cached."""
    bank_webhook_max_age_seconds: int = Field(default=300, gt=0)
    """Oldest bank webhook accepted (its ``iat``); older ones are refused as replays."""
    link_min_level: Literal["email", "phone", "verified"] = "verified"
    """Level needed to link and charge (``email`` replays 2019)."""
    link_name_match: bool = True
    """Send the user's eKYC-verified kana name to the bank (false: the typed name, as in 2020)."""
    accepted_legacy_banks: list[str] = Field(default_factory=list)
    """Bank codes whose ``legacy_pin`` form an operator accepted (full links); the others get
    what ``legacy_bank_links`` says."""
    legacy_bank_links: Literal["refuse", "restricted"] = "restricted"
    """Banks with only the legacy PIN form, not in ``accepted_legacy_banks``: ``refuse`` them,
    or give their customers a *restricted* link (lower mandate, first top-ups held; ADR 0032).
    Restricted links are made only with ``link_name_match`` on and ``link_min_level`` =
    ``verified`` (the card's name and birth date compared by the bank are what make them
    safe); otherwise such banks are refused."""
    restricted_link_max_per_debit_yen: int = Field(default=30_000, gt=0)
    """A restricted link's mandate: the largest single debit sent to the bank."""
    restricted_link_max_30_days_yen: int = Field(default=50_000, gt=0)
    """A restricted link's mandate: the most debited in any 30 days."""
    restricted_link_probation_days: int = Field(default=30, gt=0)
    """How long after linking a restricted link's top-ups are held before they are spendable."""
    restricted_link_hold_hours: int = Field(default=48, gt=0)
    """How long each top-up on probation is held (the holder's time to say "not me")."""
    require_device_signature: bool = True
    """Linking, charging and withdrawing need a device-key signature."""
    link_max_accounts_per_wallet: int = Field(default=2, gt=0)
    """Bank accounts one wallet may have linked at once."""
    link_mandate_max_per_debit_yen: int = Field(default=100_000, gt=0)
    """A full link's mandate asked of the bank: the largest single debit (yen)."""
    link_mandate_max_30_days_yen: int = Field(default=300_000, gt=0)
    """A full link's mandate asked of the bank: the most debited in any 30 days (yen)."""
    bank_hold_days: int = Field(default=30, gt=0)
    """How long a top-up or withdrawal hold waits for the bank's answer before it expires."""
    bank_reconcile_grace_seconds: int = Field(default=900, gt=0)
    """A movement the bank does not have is voided only when older than this."""

    # The wallet as OAuth client of ``oauth`` banks (kouza.linking.oauth, ADR 0013)
    bank_oauth_key_file: str = ""
    """Private JWK (JSON) signing the wallet's ``private_key_jwt`` assertions. Production points
    this at a provisioned file (never generated); empty means ``var/bank-oauth-key.jwk``,
    generated once for development like ``var/secret.key``."""
    bank_oauth_redirect_uri: str = "http://127.0.0.1:8000/app/bank-callback"
    """The redirect URI registered at the banks: the wallet's page ``/app/bank-callback``
    completes the link (``/bank-callback`` still forwards there); an app may relay code, state
    and iss to ``POST …/bank-links/oauth/callback`` instead."""
    bank_oauth_flow_ttl_seconds: int = Field(default=600, gt=0)
    """How long a started OAuth link may take (the bank's holder session lives 10 minutes)."""

    # Operations (kouza.ops): incident tooling
    operator_fraud_contact: str = "kouza fraud desk 0120-000-000"
    """How a bank's customer reaches the operator's call centre (quoted in lock notices)."""
    compensation_hold_days: int = Field(default=30, gt=0)
    """How long a compensation payment's ledger hold waits for the bank's answer."""

    # The operator console (kouza.console, ADR 0038)
    console_session_idle_minutes: int = Field(default=30, gt=0)
    """A console session unused this long has ended."""
    console_session_hours: int = Field(default=12, gt=0)
    """A console session this old has ended, however busy."""
    console_signin_failures_per_operator: int = Field(default=5, gt=0)
    """Failed console sign-ins for one operator name per 15 minutes before sign-ins answer 429."""
    console_signin_failures_per_address: int = Field(default=20, gt=0)
    """Failed console sign-ins from one address per 15 minutes before sign-ins answer 429."""

    # Identity: contact changes, SMS gateway, production eKYC (kouza.identity, ADR 0012)
    contact_change_limit_per_user_per_day: int = Field(default=5, gt=0)
    """Phone and e-mail change requests per user per day (each sends a code)."""
    email_change_limit_per_address_per_day: int = Field(default=5, gt=0)
    """E-mail change codes sent to one new address per day."""
    smtp_url: SecretStr = SecretStr("")
    """``smtp://host:port``, ``smtp+starttls://user:pass@host:587`` or ``smtps://user:pass@host``;
    empty: e-mail goes to ``var/mailbox/email.jsonl`` (development only)."""
    smtp_from: str = ""
    """The From address of e-mail sent over SMTP (required with ``smtp_url``)."""
    smtp_ca_file: Path | None = None
    """PEM CA bundle that the SMTP server's certificate must chain to (default: system roots)."""
    smtp_timeout_seconds: float = Field(default=10.0, gt=0)
    """Timeout of one SMTP conversation."""
    sms_sender: Literal["file", "http"] = "file"
    """``file``: SMS go to ``var/mailbox/sms.jsonl`` (development); ``http``: the gateway below."""
    sms_gateway_url: str = ""
    """HTTPS endpoint of the SMS gateway (JSON ``{"to", "from", "text"}``, bearer API key)."""
    sms_gateway_api_key: SecretStr = SecretStr("")
    """Bearer API key of the SMS gateway (``sms_sender = http``)."""
    sms_gateway_sender_id: str = "kouza"
    """The ``from`` shown on the handset (an alphanumeric sender id or a number)."""
    sms_gateway_timeout_seconds: float = Field(default=5.0, gt=0)
    """Timeout of one call to the SMS gateway."""
    sms_gateway_max_attempts: int = Field(default=3, gt=0, le=10)
    """Tries per message on 5xx, 429 and network errors (4xx is final)."""
    ekyc_jpki_root_certificates: list[Path] = Field(default_factory=list)
    """PEM or DER files of the pinned JPKI roots (J-LIS); empty means JPKI is not offered."""
    ekyc_jpki_intermediate_certificates: list[Path] = Field(default_factory=list)
    """PEM or DER files of JPKI intermediate CA certificates, used to build the chain to a pinned
    root."""
    ekyc_jpki_policy_oids: list[str] = Field(default_factory=list)
    """Accepted certificate policies; empty means the J-LIS signing-certificate policy."""
    ekyc_revocation: Literal["ocsp", "crl"] = "ocsp"
    """How JPKI revocation is asked: the platform operator's OCSP responder, or a CRL URL."""
    ekyc_revocation_url: str = ""
    """The OCSP responder or CRL distribution URL (required when roots are configured); in
    development ``file:var/devca/crl`` reads the development CA's CRLs from disk (docs/ekyc.md)."""
    ekyc_revocation_timeout_seconds: float = Field(default=10.0, gt=0)
    """Timeout of one OCSP or CRL request."""

    # Risk feature store (kouza.risk.features, ADR 0015)
    risk_feature_store: str = "memory"
    """``memory`` (this process only) or a ``redis://`` URL shared by several API processes."""
    risk_feature_prefix: str = "kouza:risk:"
    """Prefix of the shared store's keys, so several kouza instances can share one server."""


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (cached; tests build their own ``Settings``)."""
    return Settings()
