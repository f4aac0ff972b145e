"""The production SMS sender: a generic JSON-over-HTTPS gateway with a bearer API key.

Most SMS aggregators accept the same shape, so kouza speaks it and an operator points
``KOUZA_SMS_GATEWAY_URL`` at theirs (or at a small adapter in front of it)::

    POST <url>
    Authorization: Bearer <KOUZA_SMS_GATEWAY_API_KEY>
    Idempotency-Key: <uuid, the same on every retry of one message>
    {"to": "+819012345678", "from": "<sender id>", "text": "<body>"}

Any 2xx is accepted. 5xx, 429 and network errors (timeouts included) are retried up to
``sms_gateway_max_attempts`` times with exponential backoff; the idempotency key lets the
gateway drop a duplicate when only our read of its answer was lost. Any other 4xx is final.
A failure raises :class:`SmsDeliveryFailed`, which the outbox records (the message stays pending
for ``kouza outbox deliver``).

The body holds a one-time code, so it is never logged and never part of an exception message:
logs and errors name only the masked recipient, the attempt and the HTTP status. The
``httpx.Client`` is injectable (tests use ``httpx.MockTransport``); so is ``sleep``.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable

import httpx

from kouza.kit.notify import Message

logger = logging.getLogger(__name__)

_BACKOFF_SECONDS = 0.5


class SmsDeliveryFailed(Exception):
    """The gateway did not accept a message (the text is never part of this error)."""


def masked(e164: str) -> str:
    """``+8190****5678``: enough to tell messages apart in a log, not to harvest numbers."""
    return f"{e164[:5]}****{e164[-4:]}" if len(e164) > 9 else "****"


class HttpSmsSender:
    """A :class:`~kouza.kit.notify.Sender` for the ``sms`` channel over a JSON HTTPS gateway."""

    def __init__(
        self,
        *,
        url: str,
        api_key: str,
        sender_id: str,
        client: httpx.Client | None = None,
        timeout_seconds: float = 5.0,
        max_attempts: int = 3,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not url.startswith("https://"):
            raise ValueError("the SMS gateway URL must be https://")
        if not api_key:
            raise ValueError("the SMS gateway needs an API key")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._url = url
        self._api_key = api_key
        self._sender_id = sender_id
        self._client = client or httpx.Client(timeout=timeout_seconds)
        self._timeout = httpx.Timeout(timeout_seconds)
        self._max_attempts = max_attempts
        self._sleep = sleep

    def send(self, message: Message) -> None:
        """Deliver one SMS; retry transient failures; raise SmsDeliveryFailed otherwise."""
        key = str(uuid.uuid4())
        who = masked(message.recipient)
        for attempt in range(1, self._max_attempts + 1):
            outcome = self._attempt(message, key)
            if outcome is None:
                logger.info("sms to %s accepted by the gateway (attempt %d)", who, attempt)
                return
            retryable, what = outcome
            logger.warning("sms to %s not accepted (attempt %d): %s", who, attempt, what)
            if not retryable:
                raise SmsDeliveryFailed(f"the SMS gateway refused the message to {who}: {what}")
            if attempt < self._max_attempts:
                self._sleep(_BACKOFF_SECONDS * 2 ** (attempt - 1))
        raise SmsDeliveryFailed(
            f"the SMS gateway did not accept the message to {who} after "
            f"{self._max_attempts} attempts"
        )

    def _attempt(self, message: Message, key: str) -> tuple[bool, str] | None:
        """None when accepted, else (whether to retry, what happened) — never the text."""
        try:
            response = self._client.post(
                self._url,
                json={"to": message.recipient, "from": self._sender_id, "text": message.body},
                headers={"Authorization": f"Bearer {self._api_key}", "Idempotency-Key": key},
                timeout=self._timeout,
            )
        except httpx.TimeoutException:
            return True, "timed out"
        except httpx.TransportError as error:
            return True, f"network error ({type(error).__name__})"
        if response.is_success:
            return None
        status = response.status_code
        return status >= 500 or status == 429, f"HTTP {status}"
