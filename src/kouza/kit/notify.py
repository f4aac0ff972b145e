"""Outgoing messages to people: the sender interfaces and their development implementations.

Real gateways (SMTP, an SMS aggregator) implement the same ``Protocol``. The development senders
write each message to a mailbox file under ``var/`` (what a developer's MailHog would be) that
``kouza dev outbox`` shows; tests use :class:`MemoryMailbox`. These are the *receiving* end: the
platform itself keeps no message body once it is delivered (see :mod:`kouza.kit.outbox`).
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class Message:
    """One delivered message."""

    channel: str
    recipient: str
    subject: str
    body: str
    sent_at: datetime


class Sender(Protocol):
    """Delivers a message on one channel (e-mail or SMS)."""

    def send(self, message: Message) -> None: ...


class MemoryMailbox:
    """Keeps delivered messages in memory (tests, simulator)."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self._lock = threading.Lock()

    def send(self, message: Message) -> None:
        with self._lock:
            self.messages.append(message)

    def last_to(self, recipient: str) -> Message:
        """The newest message to ``recipient``."""
        for message in reversed(self.messages):
            if message.recipient == recipient:
                return message
        raise LookupError(f"no message to {recipient}")


class FileMailbox:
    """Appends delivered messages as JSON lines to a file (development)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def send(self, message: Message) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        record = asdict(message) | {"sent_at": message.sent_at.isoformat()}
        with self._lock, self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        self.path.chmod(0o600)

    def read(self) -> list[Message]:
        """Every message delivered so far, oldest first."""
        if not self.path.exists():
            return []
        messages = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            raw = json.loads(line)
            raw["sent_at"] = datetime.fromisoformat(raw["sent_at"])
            messages.append(Message(**raw))
        return messages
