"""Errors of the identity domain (see the tree in ``kouza.errors``)::

BadRequest: InvalidCode, CodeExpired, InvalidPhoneNumber, InvalidDeviceKey,
            UnsupportedDeviceKey, UnknownAction, InvalidPurpose, InvalidKanaName,
            EmptyCohort, InvalidNotMeToken
Unauthorized: InvalidCredentials, InvalidToken
Forbidden: LevelRequired, PhoneRequired, StepUpRequired, DeviceRevoked, DeviceNotEstablished,
           DeviceChallengeInvalid, DeviceChallengeExpired, DeviceChallengeReplayed,
           DeviceSignatureInvalid, ReverificationRequired
NotFound: UnknownChallenge, UnknownDevice, UnknownCampaign, UnknownUsers
Conflict: EmailTaken, AlreadyVerified, PhoneAlreadyVerified, PhoneInUse, DeviceExists
Unprocessable: EkycRefused, WeakPassword
TooManyRequests: TooManyAttempts, RateLimited
KouzaError (503): EkycNotConfigured
"""

from __future__ import annotations

from kouza.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
    Unprocessable,
)


class EmailTaken(Conflict):
    code = "email_taken"


class WeakPassword(Unprocessable):
    code = "weak_password"


class InvalidCredentials(Unauthorized):
    code = "invalid_credentials"


class InvalidToken(Unauthorized):
    code = "invalid_token"


class InvalidCode(BadRequest):
    code = "invalid_code"


class CodeExpired(BadRequest):
    code = "code_expired"


class TooManyAttempts(TooManyRequests):
    code = "too_many_attempts"


class LevelRequired(Forbidden):
    code = "verification_level_required"


class AlreadyVerified(Conflict):
    code = "already_verified"


class InvalidPhoneNumber(BadRequest):
    code = "invalid_phone_number"


class PhoneAlreadyVerified(Conflict):
    code = "phone_already_verified"


class PhoneInUse(Conflict):
    code = "phone_in_use"


class PhoneRequired(Forbidden):
    code = "phone_required"


class RateLimited(TooManyRequests):
    code = "rate_limited"


class UnknownChallenge(NotFound):
    code = "unknown_challenge"


class InvalidPurpose(BadRequest):
    code = "invalid_purpose"


class StepUpRequired(Forbidden):
    code = "step_up_required"


class InvalidDeviceKey(BadRequest):
    code = "invalid_device_key"


class UnsupportedDeviceKey(BadRequest):
    code = "unsupported_device_key"


class DeviceExists(Conflict):
    code = "device_exists"


class UnknownDevice(NotFound):
    code = "unknown_device"


class DeviceRevoked(Forbidden):
    code = "device_revoked"


class DeviceNotEstablished(Forbidden):
    """A device too new to approve another device's registration (ADR 0033)."""

    code = "device_not_established"


class UnknownAction(BadRequest):
    code = "unknown_action"


class DeviceChallengeInvalid(Forbidden):
    code = "device_challenge_invalid"


class DeviceChallengeExpired(Forbidden):
    code = "device_challenge_expired"


class DeviceChallengeReplayed(Forbidden):
    code = "device_challenge_replayed"


class DeviceSignatureInvalid(Forbidden):
    code = "device_signature_invalid"


class InvalidKanaName(BadRequest):
    code = "invalid_kana_name"


class EkycRefused(Unprocessable):
    code = "ekyc_refused"


class EkycNotConfigured(ServiceUnavailable):
    """The operator has not configured this eKYC method (trust anchors, revocation)."""

    code = "ekyc_not_configured"


class ReverificationRequired(Forbidden):
    code = "reverification_required"


class UnknownCampaign(NotFound):
    code = "unknown_campaign"


class UnknownUsers(NotFound):
    code = "unknown_users"


class EmptyCohort(BadRequest):
    code = "empty_cohort"


class InvalidNotMeToken(BadRequest):
    code = "invalid_not_me_token"


class ProofIncomplete(BadRequest):
    """A device proof missing one of device_id, nonce and signature."""

    code = "proof_incomplete"
