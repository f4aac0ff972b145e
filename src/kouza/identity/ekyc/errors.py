"""Errors of the eKYC package.

Verifiers never raise for bad user input (they return a refused ``EkycResult``). These errors
are for the development CA and its CLI, where the caller is an operator or developer::

    KouzaError
    ├── BadRequest
    │   └── DevCaInvalidInput          bad option value (birth date, serial, name)
    ├── Unauthorized
    │   └── DevCaPassphraseRejected    the key files do not open with this passphrase
    ├── NotFound
    │   ├── DevCaNotInitialized        no CA in the directory
    │   └── DevCaUnknownSerial         the CA never issued that serial
    └── Conflict
        ├── DevCaAlreadyInitialized    a CA already lives in the directory
        └── DevCaAlreadyRevoked        revoking twice
"""

from __future__ import annotations

from kouza.errors import BadRequest, Conflict, NotFound, Unauthorized


class DevCaInvalidInput(BadRequest):
    code = "devca_invalid_input"


class DevCaPassphraseRejected(Unauthorized):
    code = "devca_passphrase_rejected"


class DevCaNotInitialized(NotFound):
    code = "devca_not_initialized"


class DevCaUnknownSerial(NotFound):
    code = "devca_unknown_serial"


class DevCaAlreadyInitialized(Conflict):
    code = "devca_already_initialized"


class DevCaAlreadyRevoked(Conflict):
    code = "devca_already_revoked"
