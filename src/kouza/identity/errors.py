"""Errors of the identity domain (see the tree in ``kouza.errors``)."""

from __future__ import annotations

from kouza.errors import BadRequest, Conflict, Forbidden, TooManyRequests, Unauthorized


class EmailTaken(Conflict):
    code = "email_taken"


class WeakPassword(BadRequest):
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
