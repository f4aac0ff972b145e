"""Request and response bodies of the identity endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from kouza.identity.devices import SignedChallenge
from kouza.identity.ekyc import EkycMethod
from kouza.identity.errors import ProofIncomplete
from kouza.kit.text import NUMBER_KEYS, Base64, Email, JsonObject, NumberKey, Text


class SignupCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: Email = Field(max_length=320, examples=["hanako@example.jp"])
    password: Text = Field(min_length=10, max_length=128)


class SignupAccepted(BaseModel):
    status: str = Field(
        default="check_your_email",
        description="Always the same: a new address gets a code, a registered "
        "one a warning, so the answer says nothing of which it was",
    )
    email: str = Field(description="The address, normalised")


class EmailVerify(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: Email = Field(max_length=320)
    code: str = Field(pattern=r"^\s*\d{6}\s*$", description="The six-digit code from the e-mail")


class EmailResend(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: Email = Field(max_length=320)


class LoginCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: Email = Field(max_length=320)
    password: Text = Field(max_length=128)


class DeviceSigned(BaseModel):
    """The proof a sensitive action carries — money out, a password change (ADR 0021): a
    registered device's signature over a challenge issued for the action
    (``POST /v1/devices/{id}/challenges``), or none when an SMS step-up for the action was
    passed (``POST /v1/step-up``). Not part of the idempotent request: a
    retry with the same key may carry a fresh proof."""

    device_id: uuid.UUID | None = None
    nonce: Text | None = Field(default=None, min_length=1, max_length=200)
    signature: Text | None = Field(default=None, min_length=1, max_length=4000)

    def signed_challenge(self) -> SignedChallenge | None:
        """The proof, if all three members are there (else :class:`ProofIncomplete`)."""
        present = [self.device_id is not None, self.nonce is not None, self.signature is not None]
        if not any(present):
            return None
        if self.device_id is None or self.nonce is None or self.signature is None:
            raise ProofIncomplete("a device proof needs device_id, nonce and signature together")
        return SignedChallenge(self.device_id, self.nonce, self.signature)

    def request_fields(self) -> dict[str, Any]:
        """The body without the proof (what the idempotency key is bound to)."""
        return self.model_dump(mode="json", exclude={"device_id", "nonce", "signature"})


class PasswordChange(DeviceSigned):
    """A new password; with a device key or verified phone, also a device signature for
    ``password.change`` (or an SMS step-up for it passed beforehand)."""

    model_config = ConfigDict(extra="forbid")
    current_password: Text = Field(max_length=128)
    new_password: Text = Field(min_length=10, max_length=128)


class NotMeReport(BaseModel):
    """The token of a new-sign-in notice's "not me" link."""

    model_config = ConfigDict(extra="forbid")
    token: Text = Field(min_length=1, max_length=200)


class NotMeRead(BaseModel):
    sessions_revoked: int
    wallets_locked: int


class TokenRead(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    email: str
    level: str
    email_verified_at: datetime | None
    created_at: datetime


# --- phone, step-up, devices ---------------------------------------------------------------------


class PhoneVerificationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    phone: Text = Field(
        max_length=40,
        examples=["090-1234-5678", "+819012345678"],
        description="A mobile number; without '+' it is read as Japanese",
    )


class OtpChallengeRead(BaseModel):
    """A code was sent; confirm it with the challenge id before ``expires_at``."""

    model_config = ConfigDict(from_attributes=True)
    challenge_id: uuid.UUID = Field(validation_alias="id")
    phone: str = Field(validation_alias="e164", description="Where the code went (E.164)")
    expires_at: datetime


class DeviceKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    jwk: JsonObject = Field(
        description="Public key as a JWK: EC P-256 (ES256) or OKP Ed25519",
        examples=[{"kty": "EC", "crv": "P-256", "x": "…", "y": "…"}],
    )
    name: Text = Field(min_length=1, max_length=100, examples=["Hanako's iPhone"])


class DeviceRegister(DeviceKeyCreate, DeviceSigned):
    """A new device key, approved by one of the user's established devices (``device_id``,
    ``nonce``, ``signature`` over a ``device.register`` challenge) or, without them, after an
    SMS step-up for ``device.register``."""

    model_config = ConfigDict(extra="forbid")


class PhoneVerificationConfirm(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(pattern=r"^\s*\d{6}\s*$", description="The six-digit code from the SMS")
    device: DeviceKeyCreate


class DeviceRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    name: str
    algorithm: str
    thumbprint: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    added_by: str | None = Field(
        default=None,
        description="How the registration was proven: phone_verification, sms_otp or "
        "device_signature (null: registered before this was recorded)",
    )


class PhoneVerifiedRead(BaseModel):
    level: str
    phone: str
    device: DeviceRead


class StepUpCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    purpose: Text = Field(max_length=64, examples=["device.register"])


class StepUpConfirm(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(pattern=r"^\s*\d{6}\s*$")


class StepUpRead(BaseModel):
    purpose: str
    satisfied_at: datetime
    valid_until: datetime


class DeviceChallengeCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: Text = Field(max_length=32, examples=["bank.link"])


class DeviceChallengeRead(BaseModel):
    """Sign ``{"nonce", "action", "device_id", "user_id"}`` as a compact JWS with the device."""

    nonce: str
    action: str
    device_id: uuid.UUID
    user_id: uuid.UUID
    expires_in: int


# --- contact changes -----------------------------------------------------------------------------


class DeviceSignature(BaseModel):
    """The current device's compact JWS over a challenge issued for this action."""

    model_config = ConfigDict(extra="forbid")
    device_id: uuid.UUID
    nonce: Text = Field(max_length=128)
    signature: Text = Field(max_length=4096, description="Compact JWS from the device")


class PhoneChangeCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    phone: Text = Field(max_length=40, examples=["080-9876-5432"])
    device: DeviceSignature = Field(description="Signature for action 'phone.change'")


class EmailChangeCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: Email = Field(max_length=320, examples=["hanako.new@example.jp"])
    device: DeviceSignature = Field(description="Signature for action 'email.change'")


class ContactChangeConfirm(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(pattern=r"^\s*\d{6}\s*$", description="The code sent to the new contact")


class ContactChangeRead(BaseModel):
    """A change request: pending until the code sent to ``new_value`` is confirmed."""

    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    kind: str
    new_value: str = Field(description="Where the code went: the new number or address")
    device_id: uuid.UUID
    created_at: datetime
    expires_at: datetime
    completed_at: datetime | None


# --- eKYC ----------------------------------------------------------------------------------------


class EkycStart(BaseModel):
    model_config = ConfigDict(extra="forbid")
    method: EkycMethod


class EkycNonceRead(BaseModel):
    method: EkycMethod
    nonce: str
    expires_in: int


class JpkiSubmit(BaseModel):
    model_config = ConfigDict(extra="forbid")
    certificate: Base64 = Field(description="The card's signing certificate, DER, base64")
    signature: Base64 = Field(description="The card's signature over the challenge, base64")
    nonce: Text = Field(max_length=128)
    kana_name: Text = Field(max_length=200, examples=["ヤマダ タロウ"])


class IcChipSubmit(BaseModel):
    model_config = ConfigDict(extra="forbid")
    data_groups: dict[NumberKey, Base64] = Field(
        description="Data groups by number, base64", json_schema_extra=NUMBER_KEYS
    )
    sod: Base64 = Field(
        description="EF.SOD as read, base64: CMS SignedData over the data groups' hashes "
        "(ICAO 9303 LDSSecurityObject) with the document-signer certificate"
    )
    active_authentication_signature: Base64 | None = None
    selfie: Base64
    nonce: Text = Field(max_length=128)
    kana_name: Text = Field(max_length=200)


class EkycVerificationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    method: str
    ok: bool
    failure: str | None
    message: str
    certificate_serial: str | None
    checked_at: datetime
    declared_kana: str


class EkycVerifiedRead(BaseModel):
    level: str
    verification: EkycVerificationRead


class IdentityStatusRead(BaseModel):
    level: str
    phone: str | None
    devices: int
    kana_name: str | None
    may_charge: bool
    pending_reverification: list[uuid.UUID]


# --- re-verification campaigns (operators) -------------------------------------------------------


class CampaignCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Text = Field(min_length=1, max_length=200)
    reason: Text = Field(min_length=1, max_length=500)
    user_ids: list[uuid.UUID] | None = Field(default=None, max_length=100_000)
    every_verified_user: StrictBool = False


class CampaignRead(BaseModel):
    id: uuid.UUID
    name: str
    reason: str
    started_by: str
    started_at: datetime
    pending: int
    cleared: int
