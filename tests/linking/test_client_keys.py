"""The wallet's OAuth client key: generated once in development, provisioned in production."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from joserfc.jwk import ECKey

from kouza.assembly import KouzaRuntime
from kouza.config import Settings
from kouza.linking.errors import OAuthMaterialUnavailable
from kouza.linking.keys import DEV_KEY_FILE, client_jwks, client_key, seal, unseal


def _runtime(tmp_path: Path, secret: str = "s" * 32, **settings: str) -> KouzaRuntime:
    runtime = KouzaRuntime(Settings(var_dir=tmp_path / "var", secret_key=secret, **settings))  # type: ignore[arg-type]
    runtime.secret = secret.encode()
    return runtime


def test_development_key_is_generated_once_and_private_to_its_owner(tmp_path: Path) -> None:
    first = client_key(_runtime(tmp_path))
    path = tmp_path / "var" / DEV_KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert client_key(_runtime(tmp_path)).kid == first.kid  # a restart keeps the key
    (public,) = client_jwks(_runtime(tmp_path))["keys"]
    assert public["kid"] == first.kid and "d" not in public


def test_a_configured_key_is_never_generated(tmp_path: Path) -> None:
    missing = tmp_path / "prod" / "client.jwk"
    with pytest.raises(OAuthMaterialUnavailable):
        client_key(_runtime(tmp_path, bank_oauth_key_file=str(missing)))
    assert not missing.exists() and not (tmp_path / "var" / DEV_KEY_FILE).exists()


def test_a_configured_key_must_be_private(tmp_path: Path) -> None:
    path = tmp_path / "public.jwk"
    path.write_text(json.dumps(ECKey.generate_key("P-256").as_dict(private=False)))
    with pytest.raises(OAuthMaterialUnavailable):
        client_key(_runtime(tmp_path, bank_oauth_key_file=str(path)))
    provisioned = ECKey.generate_key("P-256", auto_kid=True)
    path.write_text(json.dumps(provisioned.as_dict(private=True)))
    assert client_key(_runtime(tmp_path, bank_oauth_key_file=str(path))).kid == provisioned.kid


def test_sealed_material_opens_only_with_the_same_secret(tmp_path: Path) -> None:
    sealed = seal(_runtime(tmp_path), {"access_token": "tok-secret-value"})
    assert "tok-secret-value" not in sealed
    assert unseal(_runtime(tmp_path), sealed) == {"access_token": "tok-secret-value"}
    with pytest.raises(OAuthMaterialUnavailable):
        unseal(_runtime(tmp_path, secret="t" * 32), sealed)
