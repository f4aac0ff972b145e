"""Customer sign-up, e-mail verification, login and logout (``/v1/auth``, ``/v1/me``)."""

from __future__ import annotations

from fastapi import APIRouter, Request, status

from kouza.errors import BadRequest
from kouza.identity.dependencies import BearerToken, CurrentUser
from kouza.identity.errors import (
    AlreadyVerified,
    CodeExpired,
    EmailTaken,
    InvalidCode,
    InvalidCredentials,
    InvalidToken,
    TooManyAttempts,
    WeakPassword,
)
from kouza.identity.schemas import (
    EmailResend,
    EmailVerify,
    LoginCreate,
    SignupCreate,
    TokenRead,
    UserRead,
)
from kouza.identity.service import identity
from kouza.kit.openapi import error_responses
from kouza.kit.web import RuntimeDep, SessionDep, client_ip

router = APIRouter(tags=["identity"])


@router.post(
    "/v1/auth/signup", status_code=status.HTTP_201_CREATED, response_model=UserRead,
    responses=error_responses(BadRequest, WeakPassword, EmailTaken),
)
def signup(body: SignupCreate, session: SessionDep) -> UserRead:
    """Create an account; a six-digit code is e-mailed to verify the address."""
    user = identity.signup(session, email=body.email, password=body.password)
    return UserRead.model_validate(user)


@router.post(
    "/v1/auth/verify-email", response_model=UserRead,
    responses=error_responses(InvalidCode, CodeExpired, TooManyAttempts, AlreadyVerified),
)
def verify_email(body: EmailVerify, session: SessionDep) -> UserRead:
    """Verify the e-mail address with the code; the account reaches level ``email``."""
    user = identity.verify_email(session, email=body.email, code=body.code)
    return UserRead.model_validate(user)


@router.post(
    "/v1/auth/resend-code", status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(BadRequest, TooManyAttempts),
)
def resend_code(body: EmailResend, session: SessionDep) -> dict[str, str]:
    """Send a new code (at most once a minute)."""
    identity.resend_code(session, email=body.email)
    return {"status": "sent if the address belongs to an unverified account"}


@router.post(
    "/v1/auth/login", response_model=TokenRead, responses=error_responses(InvalidCredentials)
)
def login(body: LoginCreate, request: Request, session: SessionDep,
          runtime: RuntimeDep) -> TokenRead:
    """Exchange e-mail and password for a bearer token."""
    token = identity.login(session, email=body.email, password=body.password,
                           ip=client_ip(request))
    return TokenRead(access_token=token, expires_in=runtime.settings.token_ttl_seconds)


@router.post(
    "/v1/auth/logout", status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(InvalidToken),
)
def logout(token: BearerToken, user: CurrentUser, session: SessionDep) -> None:
    """Revoke the bearer token used for this call."""
    identity.logout(session, token)


@router.get("/v1/me", response_model=UserRead, responses=error_responses(InvalidToken))
def me(user: CurrentUser) -> UserRead:
    """The signed-in user."""
    return UserRead.model_validate(user)
