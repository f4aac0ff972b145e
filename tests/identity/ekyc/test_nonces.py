"""InMemoryNonceStore: issue and consume-once semantics."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest

from kouza.identity.ekyc.nonces import InMemoryNonceStore, NonceRefusal

from .conftest import NOW


class TestIssue:
    def test_nonce_is_32_random_bytes_url_safe(self) -> None:
        store = InMemoryNonceStore()

        nonce = store.issue(NOW)

        assert len(base64.urlsafe_b64decode(nonce + "=")) == 32
        assert nonce != store.issue(NOW)

    def test_ttl_must_be_positive(self) -> None:
        with pytest.raises(ValueError, match="positive"):
            InMemoryNonceStore(ttl=timedelta(0))


class TestConsume:
    def test_true_exactly_once(self) -> None:
        store = InMemoryNonceStore()
        nonce = store.issue(NOW)

        assert store.consume(nonce, NOW) is True
        assert store.consume(nonce, NOW) is False
        assert store.refusal_reason(nonce, NOW) is NonceRefusal.REPLAYED

    def test_expires_after_the_default_five_minutes(self) -> None:
        store = InMemoryNonceStore()
        nonce = store.issue(NOW)
        deadline = NOW + timedelta(minutes=5)

        assert store.consume(nonce, deadline) is False
        assert store.refusal_reason(nonce, deadline) is NonceRefusal.EXPIRED

    def test_usable_just_before_expiry(self) -> None:
        store = InMemoryNonceStore()
        nonce = store.issue(NOW)

        assert store.consume(nonce, NOW + timedelta(minutes=5) - timedelta(seconds=1)) is True

    def test_unknown(self) -> None:
        store = InMemoryNonceStore()

        assert store.consume("never-issued", NOW) is False
        assert store.refusal_reason("never-issued", NOW) is NonceRefusal.UNKNOWN

    def test_old_entries_are_forgotten(self) -> None:
        store = InMemoryNonceStore(ttl=timedelta(minutes=1))
        old = store.issue(NOW)
        store.consume(old, NOW)

        store.issue(NOW + timedelta(minutes=3))

        assert store.refusal_reason(old, NOW + timedelta(minutes=3)) is NonceRefusal.UNKNOWN
