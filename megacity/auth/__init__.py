"""Authentication and authorisation: region-signed JWTs, service API keys, principals."""

from __future__ import annotations

from megacity.auth.apikeys import (
    API_KEY_PREFIX,
    ApiKeyInfo,
    ApiKeyVerifier,
    IssuedKey,
    create_api_key,
    list_api_keys,
    revoke_api_key,
)
from megacity.auth.authenticator import Authenticator
from megacity.auth.keys import KeySet, NoSigningKey, VerificationKey, generate_key, retire_key
from megacity.auth.principal import (
    ANONYMOUS,
    KNOWN_SCOPES,
    SCOPE_ADMIN,
    SCOPE_USE,
    AuthError,
    InvalidCredentials,
    MissingCredentials,
    Principal,
)
from megacity.auth.tokens import AUDIENCE, ISSUER_PREFIX, TokenVerifier, issue_token

__all__ = [
    "ANONYMOUS",
    "API_KEY_PREFIX",
    "AUDIENCE",
    "ISSUER_PREFIX",
    "KNOWN_SCOPES",
    "SCOPE_ADMIN",
    "SCOPE_USE",
    "ApiKeyInfo",
    "ApiKeyVerifier",
    "AuthError",
    "Authenticator",
    "InvalidCredentials",
    "IssuedKey",
    "KeySet",
    "MissingCredentials",
    "NoSigningKey",
    "Principal",
    "TokenVerifier",
    "VerificationKey",
    "create_api_key",
    "generate_key",
    "issue_token",
    "list_api_keys",
    "retire_key",
    "revoke_api_key",
]
