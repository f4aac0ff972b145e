"""Identity over HTTP.

Customers: sign-up, e-mail verification, login and logout (``/v1/auth``, ``/v1/me``), phone
verification and change (``/v1/phone``), e-mail change (``/v1/email/change``), OTP step-up
(``/v1/step-up``), device keys and their signed challenges (``/v1/devices``), eKYC
(``/v1/ekyc``). Operators: re-verification campaigns
(``/v1/ops/reverification``, admin role, audited). HTTP only: every rule is in the services.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from fastapi import APIRouter, Request, status
from sqlalchemy.orm import Session

from kouza.controls.dependencies import CurrentAdmin, CurrentOperator
from kouza.controls.errors import InvalidOperatorToken, ReasonRequired, RoleRequired
from kouza.controls.service import controls
from kouza.errors import BadRequest
from kouza.identity import levels
from kouza.identity.dependencies import BearerToken, CurrentUser, SessionUser
from kouza.identity.ekyc import ChipRead
from kouza.identity.errors import (
    AlreadyVerified,
    CodeExpired,
    DeviceChallengeExpired,
    DeviceChallengeInvalid,
    DeviceChallengeReplayed,
    DeviceExists,
    DeviceNotEstablished,
    DeviceRevoked,
    DeviceSignatureInvalid,
    EkycNotConfigured,
    EkycRefused,
    EmailTaken,
    EmptyCohort,
    InvalidCode,
    InvalidCredentials,
    InvalidDeviceKey,
    InvalidKanaName,
    InvalidPhoneNumber,
    InvalidPurpose,
    InvalidToken,
    LevelRequired,
    PhoneAlreadyVerified,
    PhoneInUse,
    PhoneRequired,
    ProofIncomplete,
    RateLimited,
    StepUpRequired,
    TooManyAttempts,
    UnknownAction,
    UnknownCampaign,
    UnknownChallenge,
    UnknownDevice,
    UnknownUsers,
    UnsupportedDeviceKey,
    WeakPassword,
)
from kouza.identity.models import (
    EkycVerification,
    OtpChallenge,
    User,
    UserPhone,
    VerifiedIdentity,
)
from kouza.identity.schemas import (
    CampaignCreate,
    CampaignRead,
    ContactChangeConfirm,
    ContactChangeRead,
    DeviceChallengeCreate,
    DeviceChallengeRead,
    DeviceRead,
    DeviceRegister,
    EkycNonceRead,
    EkycStart,
    EkycVerificationRead,
    EkycVerifiedRead,
    EmailChangeCreate,
    EmailResend,
    EmailVerify,
    IcChipSubmit,
    IdentityStatusRead,
    JpkiSubmit,
    LoginCreate,
    OtpChallengeRead,
    PasswordChange,
    PhoneChangeCreate,
    PhoneVerificationConfirm,
    PhoneVerificationCreate,
    PhoneVerifiedRead,
    SignupAccepted,
    SignupCreate,
    StepUpConfirm,
    StepUpCreate,
    StepUpRead,
    TokenRead,
    UserRead,
)
from kouza.identity.service import identity
from kouza.identity.settings import setting
from kouza.kit.openapi import error_responses
from kouza.kit.web import client_ip
from kouza.runtime import RuntimeDep, SessionDep

router = APIRouter(tags=["identity"])


@router.post(
    "/v1/auth/signup",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=SignupAccepted,
    responses=error_responses(BadRequest, WeakPassword),
)
def signup(body: SignupCreate, session: SessionDep) -> SignupAccepted:
    """Sign up; the answer is the same whether or not the address is registered. A new address
    is e-mailed a six-digit code to verify it; a registered one is told someone tried."""
    address = identity.request_signup(session, email=body.email, password=body.password)
    return SignupAccepted(email=address)


@router.post(
    "/v1/auth/verify-email",
    response_model=UserRead,
    responses=error_responses(InvalidCode, CodeExpired, TooManyAttempts, AlreadyVerified),
)
def verify_email(body: EmailVerify, session: SessionDep) -> UserRead:
    """Verify the e-mail address with the code; the account reaches level ``email``."""
    user = identity.verify_email(session, email=body.email, code=body.code)
    return UserRead.model_validate(user)


@router.post(
    "/v1/auth/resend-code",
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(BadRequest, TooManyAttempts),
)
def resend_code(body: EmailResend, session: SessionDep) -> dict[str, str]:
    """Send a new code (at most once a minute)."""
    identity.resend_code(session, email=body.email)
    return {"status": "sent if the address belongs to an unverified account"}


@router.post(
    "/v1/auth/login",
    response_model=TokenRead,
    responses=error_responses(InvalidCredentials, RateLimited),
)
def login(
    body: LoginCreate, request: Request, session: SessionDep, runtime: RuntimeDep
) -> TokenRead:
    """Exchange e-mail and password for a bearer token."""
    token = identity.login(session, email=body.email, password=body.password, ip=client_ip(request))
    return TokenRead(access_token=token, expires_in=runtime.settings.token_ttl_seconds)


@router.post(
    "/v1/auth/password",
    response_model=UserRead,
    responses=error_responses(
        InvalidToken,
        InvalidCredentials,
        WeakPassword,
        StepUpRequired,
        ProofIncomplete,
        UnknownDevice,
        DeviceRevoked,
        DeviceChallengeInvalid,
        DeviceChallengeExpired,
        DeviceChallengeReplayed,
        DeviceSignatureInvalid,
    ),
)
def change_password(
    body: PasswordChange, request: Request, user: SessionUser, session: SessionDep
) -> UserRead:
    """Replace the password (device-signed or SMS stepped-up for ``password.change`` once the
    account has a device key or phone); every session is signed out, log in again."""
    changed = identity.change_password(
        session,
        user,
        current_password=body.current_password,
        new_password=body.new_password,
        signed=body.signed_challenge(),
        ip=client_ip(request),
    )
    return UserRead.model_validate(changed)


@router.post(
    "/v1/auth/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(InvalidToken),
)
def logout(token: BearerToken, user: SessionUser, session: SessionDep) -> None:
    """Revoke the bearer token used for this call."""
    identity.logout(session, token)


@router.get("/v1/me", response_model=UserRead, responses=error_responses(InvalidToken))
def me(user: CurrentUser) -> UserRead:
    """The signed-in user."""
    return UserRead.model_validate(user)


# --- phone ---------------------------------------------------------------------------------------

_AUTH = (InvalidToken,)


@router.post(
    "/v1/phone/verification",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=OtpChallengeRead,
    responses=error_responses(
        *_AUTH,
        InvalidPhoneNumber,
        LevelRequired,
        PhoneAlreadyVerified,
        PhoneInUse,
        RateLimited,
        TooManyAttempts,
    ),
)
def start_phone_verification(
    body: PhoneVerificationCreate, request: Request, user: SessionUser, session: SessionDep
) -> OtpChallengeRead:
    """Send a six-digit code by SMS to a mobile number (E.164 or Japanese national form)."""
    challenge = identity.start_phone_verification(
        session, user, phone=body.phone, ip=client_ip(request)
    )
    return OtpChallengeRead.model_validate(challenge)


@router.post(
    "/v1/phone/verification/{challenge_id}/confirm",
    response_model=PhoneVerifiedRead,
    responses=error_responses(
        *_AUTH,
        UnknownChallenge,
        InvalidCode,
        CodeExpired,
        TooManyAttempts,
        PhoneAlreadyVerified,
        PhoneInUse,
        InvalidDeviceKey,
        UnsupportedDeviceKey,
        DeviceExists,
    ),
)
def confirm_phone_verification(
    challenge_id: uuid.UUID, body: PhoneVerificationConfirm, user: SessionUser, session: SessionDep
) -> PhoneVerifiedRead:
    """Confirm the code and register this device's public key; may reach level ``phone``."""
    device = identity.complete_phone_verification(
        session,
        user,
        challenge_id=challenge_id,
        code=body.code,
        device_jwk=body.device.jwk,
        device_name=body.device.name,
    )
    current = identity.get_user(session, user.id)
    return PhoneVerifiedRead(
        level=current.level,
        phone=_phone_of(session, current) or "",
        device=DeviceRead.model_validate(device),
    )


def _phone_of(session: Session, user: User) -> str | None:
    phone = session.get(UserPhone, user.id)
    return phone.e164 if phone else None


# --- step-up -------------------------------------------------------------------------------------


@router.post(
    "/v1/step-up",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=OtpChallengeRead,
    responses=error_responses(*_AUTH, InvalidPurpose, PhoneRequired, RateLimited, TooManyAttempts),
)
def start_step_up(
    body: StepUpCreate, request: Request, user: SessionUser, session: SessionDep
) -> OtpChallengeRead:
    """Send a step-up code to the verified phone, for one purpose (e.g. ``device.register``)."""
    challenge_id = identity.start_step_up(session, user, body.purpose, ip=client_ip(request))
    return OtpChallengeRead.model_validate(session.get(OtpChallenge, challenge_id))


@router.post(
    "/v1/step-up/{challenge_id}/confirm",
    response_model=StepUpRead,
    responses=error_responses(*_AUTH, UnknownChallenge, InvalidCode, CodeExpired, TooManyAttempts),
)
def confirm_step_up(
    challenge_id: uuid.UUID, body: StepUpConfirm, user: SessionUser, session: SessionDep
) -> StepUpRead:
    """Confirm a step-up code; the purpose counts as satisfied for a few minutes."""
    challenge = identity.complete_step_up(session, user, challenge_id, body.code)
    assert challenge.consumed_at is not None
    validity = timedelta(seconds=setting(session, "step_up_validity_seconds"))
    return StepUpRead(
        purpose=challenge.step_up_for,
        satisfied_at=challenge.consumed_at,
        valid_until=challenge.consumed_at + validity,
    )


# --- devices -------------------------------------------------------------------------------------


@router.get("/v1/devices", response_model=list[DeviceRead], responses=error_responses(*_AUTH))
def list_devices(user: SessionUser, session: SessionDep) -> list[DeviceRead]:
    """The caller's active device keys."""
    return [DeviceRead.model_validate(d) for d in identity.devices_of(session, user)]


@router.post(
    "/v1/devices",
    status_code=status.HTTP_201_CREATED,
    response_model=DeviceRead,
    responses=error_responses(
        *_AUTH,
        InvalidDeviceKey,
        UnsupportedDeviceKey,
        PhoneRequired,
        StepUpRequired,
        DeviceExists,
        ProofIncomplete,
        UnknownDevice,
        DeviceRevoked,
        DeviceNotEstablished,
        DeviceChallengeInvalid,
        DeviceChallengeExpired,
        DeviceChallengeReplayed,
        DeviceSignatureInvalid,
    ),
)
def register_device(
    body: DeviceRegister, request: Request, user: SessionUser, session: SessionDep
) -> DeviceRead:
    """Register another device key: approved by one of your established devices (send its
    ``device_id``, ``nonce`` and ``signature`` over a ``device.register`` challenge), or after
    an SMS step-up for ``device.register``."""
    device = identity.register_device(
        session,
        user,
        jwk=body.jwk,
        name=body.name,
        ip=client_ip(request),
        approval=body.signed_challenge(),
    )
    return DeviceRead.model_validate(device)


@router.delete(
    "/v1/devices/{device_id}",
    response_model=DeviceRead,
    responses=error_responses(*_AUTH, UnknownDevice, DeviceRevoked, StepUpRequired),
)
def revoke_device(
    device_id: uuid.UUID, request: Request, user: SessionUser, session: SessionDep
) -> DeviceRead:
    """Revoke a device key; needs a step-up for ``device.revoke`` first. Revoking the last one
    lowers the account to level ``email`` until a device is registered again."""
    device = identity.revoke_device(session, user, device_id, ip=client_ip(request))
    return DeviceRead.model_validate(device)


@router.post(
    "/v1/devices/{device_id}/challenges",
    status_code=status.HTTP_201_CREATED,
    response_model=DeviceChallengeRead,
    responses=error_responses(*_AUTH, UnknownAction, UnknownDevice, DeviceRevoked),
)
def issue_device_challenge(
    device_id: uuid.UUID, body: DeviceChallengeCreate, user: SessionUser, session: SessionDep
) -> DeviceChallengeRead:
    """A single-use nonce the device signs (compact JWS) to authorise one sensitive action."""
    nonce = identity.issue_device_challenge(session, user, device_id, body.action)
    return DeviceChallengeRead(
        nonce=nonce,
        action=body.action,
        device_id=device_id,
        user_id=user.id,
        expires_in=setting(session, "device_challenge_ttl_seconds"),
    )


# --- contact changes -----------------------------------------------------------------------------

_DEVICE_SIGNATURE_ERRORS = (
    UnknownDevice,
    DeviceRevoked,
    UnknownAction,
    DeviceChallengeInvalid,
    DeviceChallengeExpired,
    DeviceChallengeReplayed,
    DeviceSignatureInvalid,
)
_CONFIRM_ERRORS = (*_AUTH, UnknownChallenge, InvalidCode, CodeExpired, TooManyAttempts)


@router.post(
    "/v1/phone/change",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ContactChangeRead,
    responses=error_responses(
        *_AUTH,
        *_DEVICE_SIGNATURE_ERRORS,
        BadRequest,
        InvalidPhoneNumber,
        PhoneRequired,
        PhoneInUse,
        RateLimited,
        TooManyAttempts,
    ),
)
def start_phone_change(
    body: PhoneChangeCreate, request: Request, user: SessionUser, session: SessionDep
) -> ContactChangeRead:
    """Change the verified phone: the device signs ``phone.change``; a code goes to the new
    number."""
    change = identity.start_phone_change(
        session,
        user,
        phone=body.phone,
        device_id=body.device.device_id,
        nonce=body.device.nonce,
        signature=body.device.signature,
        ip=client_ip(request),
    )
    return ContactChangeRead.model_validate(change)


@router.post(
    "/v1/phone/change/{change_id}/confirm",
    response_model=ContactChangeRead,
    responses=error_responses(*_CONFIRM_ERRORS, PhoneInUse),
)
def confirm_phone_change(
    change_id: uuid.UUID,
    body: ContactChangeConfirm,
    request: Request,
    user: SessionUser,
    session: SessionDep,
) -> ContactChangeRead:
    """Confirm the code sent to the new number; the old number is warned by SMS."""
    change = identity.confirm_phone_change(
        session, user, change_id, body.code, ip=client_ip(request)
    )
    return ContactChangeRead.model_validate(change)


@router.post(
    "/v1/email/change",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ContactChangeRead,
    responses=error_responses(
        *_AUTH,
        *_DEVICE_SIGNATURE_ERRORS,
        BadRequest,
        LevelRequired,
        EmailTaken,
        RateLimited,
        TooManyAttempts,
    ),
)
def start_email_change(
    body: EmailChangeCreate, request: Request, user: SessionUser, session: SessionDep
) -> ContactChangeRead:
    """Change the e-mail address: the device signs ``email.change``; a code goes to the new
    address."""
    change = identity.start_email_change(
        session,
        user,
        email=body.email,
        device_id=body.device.device_id,
        nonce=body.device.nonce,
        signature=body.device.signature,
        ip=client_ip(request),
    )
    return ContactChangeRead.model_validate(change)


@router.post(
    "/v1/email/change/{change_id}/confirm",
    response_model=ContactChangeRead,
    responses=error_responses(*_CONFIRM_ERRORS, EmailTaken),
)
def confirm_email_change(
    change_id: uuid.UUID,
    body: ContactChangeConfirm,
    request: Request,
    user: SessionUser,
    session: SessionDep,
) -> ContactChangeRead:
    """Confirm the code sent to the new address; the old address is warned."""
    change = identity.confirm_email_change(
        session, user, change_id, body.code, ip=client_ip(request)
    )
    return ContactChangeRead.model_validate(change)


# --- eKYC ----------------------------------------------------------------------------------------


@router.post(
    "/v1/ekyc/sessions",
    status_code=status.HTTP_201_CREATED,
    response_model=EkycNonceRead,
    responses=error_responses(*_AUTH, LevelRequired, RateLimited, EkycNotConfigured),
)
def start_ekyc(body: EkycStart, user: SessionUser, session: SessionDep) -> EkycNonceRead:
    """A nonce for the My Number card (JPKI) or the ID card's chip to sign."""
    nonce = identity.start_ekyc(session, user, body.method)
    return EkycNonceRead(
        method=body.method, nonce=nonce, expires_in=setting(session, "ekyc_nonce_ttl_seconds")
    )


EKYC_ERRORS = (*_AUTH, LevelRequired, InvalidKanaName, EkycRefused, EkycNotConfigured)


def _verified(session: Session, user: User, record: EkycVerification) -> EkycVerifiedRead:
    return EkycVerifiedRead(
        level=identity.get_user(session, user.id).level,
        verification=EkycVerificationRead.model_validate(record),
    )


@router.post(
    "/v1/ekyc/jpki", response_model=EkycVerifiedRead, responses=error_responses(*EKYC_ERRORS)
)
def submit_jpki(body: JpkiSubmit, user: SessionUser, session: SessionDep) -> EkycVerifiedRead:
    """Verify the card's signing certificate and its signature over the nonce (method ワ)."""
    record = identity.submit_jpki(
        session,
        user,
        certificate=body.certificate,
        signature=body.signature,
        nonce=body.nonce,
        kana_name=body.kana_name,
    )
    return _verified(session, user, record)


@router.post(
    "/v1/ekyc/ic-chip", response_model=EkycVerifiedRead, responses=error_responses(*EKYC_ERRORS)
)
def submit_ic_chip(body: IcChipSubmit, user: SessionUser, session: SessionDep) -> EkycVerifiedRead:
    """Verify an ID card's chip data, its active authentication and a selfie (method へ)."""
    chip = ChipRead(
        data_groups=dict(body.data_groups),
        sod=body.sod,
        active_authentication_signature=body.active_authentication_signature,
    )
    record = identity.submit_ic_chip(
        session, user, chip=chip, selfie=body.selfie, nonce=body.nonce, kana_name=body.kana_name
    )
    return _verified(session, user, record)


@router.get("/v1/identity", response_model=IdentityStatusRead, responses=error_responses(*_AUTH))
def identity_status(user: SessionUser, session: SessionDep) -> IdentityStatusRead:
    """The caller's level, phone, devices, declared kana and whether charging is allowed."""
    current = identity.get_user(session, user.id)
    verified = session.get(VerifiedIdentity, user.id)
    return IdentityStatusRead(
        level=current.level,
        phone=_phone_of(session, current),
        devices=len(identity.devices_of(session, current)),
        kana_name=verified.kana_name if verified else None,
        may_charge=identity.may_charge(session, current),
        pending_reverification=[
            p.campaign_id for p in levels.pending_reverifications(session, current)
        ],
    )


# --- operators: re-verification campaigns --------------------------------------------------------

_OPS_AUTH = (InvalidOperatorToken, RoleRequired)


def _campaign_read(progress: levels.CampaignProgress) -> CampaignRead:
    campaign = progress.campaign
    return CampaignRead(
        id=campaign.id,
        name=campaign.name,
        reason=campaign.reason,
        started_by=campaign.started_by,
        started_at=campaign.started_at,
        pending=progress.pending,
        cleared=progress.cleared,
    )


@router.post(
    "/v1/ops/reverification",
    status_code=status.HTTP_201_CREATED,
    response_model=CampaignRead,
    tags=["operator"],
    responses=error_responses(*_OPS_AUTH, EmptyCohort, UnknownUsers, BadRequest, ReasonRequired),
)
def start_reverification(
    body: CampaignCreate, operator: CurrentAdmin, session: SessionDep
) -> CampaignRead:
    """Start a campaign: the cohort cannot charge until it passes eKYC again (admin)."""
    if (body.user_ids is None) == (not body.every_verified_user):
        raise BadRequest("give either user_ids or every_verified_user=true, not both")
    cohort: levels.Cohort = (
        levels.every_verified_user if body.every_verified_user else body.user_ids or []
    )
    actor = f"operator:{operator.name}"
    campaign = identity.start_reverification(
        session, name=body.name, reason=body.reason, started_by=actor, cohort=cohort
    )
    controls.audit(
        session,
        actor=actor,
        action="reverification.start",
        subject=f"campaign:{campaign.id}",
        reason=body.reason,
    )
    return _campaign_read(levels.campaign_progress(session, campaign.id))


@router.get(
    "/v1/ops/reverification/{campaign_id}",
    response_model=CampaignRead,
    tags=["operator"],
    responses=error_responses(*_OPS_AUTH, UnknownCampaign),
)
def reverification_progress(
    campaign_id: uuid.UUID, operator: CurrentOperator, session: SessionDep
) -> CampaignRead:
    """A campaign with its counts of pending and cleared users."""
    return _campaign_read(levels.campaign_progress(session, campaign_id))
