"""The credentials of a request (a bearer JWT, a bearer API key, or X-API-Key) → Principal."""

from __future__ import annotations

from megacity.auth.apikeys import API_KEY_PREFIX, ApiKeyVerifier
from megacity.auth.principal import InvalidCredentials, MissingCredentials, Principal
from megacity.auth.tokens import TokenVerifier


class Authenticator:
    """Sends each credential to its verifier; None for a verifier refuses that kind."""

    def __init__(self, tokens: TokenVerifier | None, api_keys: ApiKeyVerifier | None) -> None:
        self.tokens = tokens
        self.api_keys = api_keys

    async def authenticate(self, authorization: str | None, api_key: str | None) -> Principal:
        """The caller's Principal; MissingCredentials or InvalidCredentials (both AuthError)."""
        if authorization and api_key:
            # Two credentials could name two callers; refuse rather than pick one.
            raise InvalidCredentials("both Authorization and X-API-Key were sent")
        if api_key:
            return await self._api_key(api_key.strip())
        if not authorization:
            raise MissingCredentials("no credentials")
        scheme, _, credential = authorization.strip().partition(" ")
        credential = credential.strip()
        if scheme.lower() != "bearer" or not credential:
            raise InvalidCredentials("Authorization is not 'Bearer <credential>'")
        if credential.startswith(API_KEY_PREFIX):
            return await self._api_key(credential)
        if self.tokens is None:
            raise InvalidCredentials("tokens are not accepted here")
        return self.tokens.verify(credential)

    async def _api_key(self, key: str) -> Principal:
        if self.api_keys is None:
            raise InvalidCredentials("API keys are not accepted here")
        return await self.api_keys.verify(key)
