"""Errors of the console: sign-in, sessions, roles and maker-checker approvals.

::

    KouzaError
    ├── Unauthorized
    │   ├── InvalidSignIn          wrong name, password or TOTP code (one message for all)
    │   └── ConsoleSessionExpired  no, unknown, idle or too old session
    ├── Forbidden
    │   └── SelfApproval           the maker tried to approve their own request
    ├── NotFound
    │   ├── UnknownApproval
    │   └── UnknownRuleVersion     no rule set with that key (rules page)
    ├── Conflict
    │   └── ApprovalDecided        approved or rejected already
    ├── BadRequest
    │   ├── WeakConsolePassword
    │   └── InvalidConsoleInput    a form field out of range (the page names the field)
    └── TooManyRequests
        └── SignInThrottled        too many failed sign-ins for this operator or address
"""

from __future__ import annotations

from kouza.errors import BadRequest, Conflict, Forbidden, NotFound, TooManyRequests, Unauthorized


class InvalidSignIn(Unauthorized):
    code = "invalid_sign_in"


class ConsoleSessionExpired(Unauthorized):
    code = "console_session_expired"


class SelfApproval(Forbidden):
    code = "self_approval"


class UnknownApproval(NotFound):
    code = "unknown_approval"


class UnknownRuleVersion(NotFound):
    code = "unknown_rule_version"


class ApprovalDecided(Conflict):
    code = "approval_decided"


class WeakConsolePassword(BadRequest):
    code = "weak_console_password"


class InvalidConsoleInput(BadRequest):
    code = "invalid_console_input"


class SignInThrottled(TooManyRequests):
    code = "sign_in_throttled"
