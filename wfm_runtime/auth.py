"""Authentication: bearer JWTs (PyJWT) verified against configured keys.

Production: RS256/ES256 public keys (PEM files) or a JWKS file. HS256 with a shared secret is
accepted only in development mode (WFM_DEV_MODE=1). Tokens carry the employee id as `sub`, the
roles in `roles`, and for team leaders the teams they lead in `teams`.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from wfm_runtime.errors import DomainError


class Role(Enum):
    AGENT = "agent"
    TEAM_LEADER = "team_leader"
    SCHEDULER = "scheduler"
    HR = "hr"
    TRAINER = "trainer"
    ADMIN = "admin"


class Unauthenticated(DomainError):
    reason = "UNAUTHENTICATED"


class PermissionDenied(DomainError):
    reason = "PERMISSION_DENIED"


class RateLimited(DomainError):
    reason = "RATE_LIMITED"


@dataclass(frozen=True)
class Principal:
    """Who is calling: the employee id, their roles, and the teams they lead."""

    subject: str
    roles: frozenset[Role]
    teams: frozenset[str] = frozenset()

    def has(self, role: Role) -> bool:
        return role in self.roles


ASYMMETRIC = ["RS256", "ES256"]


AUTH_ENV = (
    "WFM_JWT_HS256_SECRET",
    "WFM_JWT_PUBLIC_KEY_FILES",
    "WFM_JWT_JWKS_FILE",
    "WFM_JWT_ISSUER",
    "WFM_JWT_AUDIENCE",
    "WFM_JWT_LEEWAY_S",
)


@dataclass(frozen=True)
class AuthConfig:
    issuer: str
    audience: str
    leeway_s: float
    public_keys: tuple[Any, ...] = ()
    jwks: Mapping[str, Any] = field(default_factory=dict)  # kid -> key
    hs256_secret: str = ""
    # The variables it was read from, so a worker process can read the same configuration.
    source_env: Mapping[str, str] = field(default_factory=dict, compare=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AuthConfig:
        env = os.environ if env is None else env
        secret = env.get("WFM_JWT_HS256_SECRET", "")
        if secret and env.get("WFM_DEV_MODE") != "1":
            raise ValueError("WFM_JWT_HS256_SECRET is for development only: set WFM_DEV_MODE=1")
        keys = tuple(
            load_pem_public_key(Path(p).read_bytes())
            for p in _paths(env.get("WFM_JWT_PUBLIC_KEY_FILES", ""))
        )
        jwks_file = env.get("WFM_JWT_JWKS_FILE", "")
        jwks = _load_jwks(Path(jwks_file)) if jwks_file else {}
        config = cls(
            issuer=env.get("WFM_JWT_ISSUER", "wfm"),
            audience=env.get("WFM_JWT_AUDIENCE", "wfm"),
            leeway_s=float(env.get("WFM_JWT_LEEWAY_S", "30")),
            public_keys=keys,
            jwks=jwks,
            hs256_secret=secret,
            source_env={k: env[k] for k in AUTH_ENV if k in env},
        )
        if not (keys or jwks or secret):
            raise ValueError(
                "no token keys configured: set WFM_JWT_PUBLIC_KEY_FILES or WFM_JWT_JWKS_FILE "
                "(or, in development, WFM_DEV_MODE=1 with WFM_JWT_HS256_SECRET)"
            )
        return config


def _paths(raw: str) -> list[str]:
    return [p.strip() for p in raw.split(",") if p.strip()]


def _load_jwks(path: Path) -> dict[str, Any]:
    keyset = jwt.PyJWKSet.from_dict(json.loads(path.read_text()))
    return {key.key_id or f"key-{i}": key for i, key in enumerate(keyset.keys)}


class TokenVerifier:
    """Verifies tokens; a verified token is remembered until it expires (signature checks are
    the main cost of auth, and clients reuse one token for many calls)."""

    CACHE_SIZE = 10_000

    def __init__(self, config: AuthConfig) -> None:
        self._config = config
        self._verified: dict[str, tuple[Principal, float]] = {}

    def principal(self, metadata: Mapping[str, Any]) -> Principal:
        """The caller from the `authorization: Bearer <jwt>` metadata; Unauthenticated if not."""
        header = str(metadata.get("authorization", ""))
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("missing bearer token in the `authorization` metadata")
        token = token.strip()
        cached = self._verified.get(token)
        if cached is not None:
            principal, expires = cached
            if time.time() < expires + self._config.leeway_s:
                return principal
            del self._verified[token]
        claims = self._claims(token)
        principal = _principal(claims)
        try:
            expires = float(claims["exp"])
        except (TypeError, ValueError, OverflowError) as exc:
            raise Unauthenticated("the `exp` claim is not a usable time") from exc
        if len(self._verified) >= self.CACHE_SIZE:
            self._verified.clear()
        self._verified[token] = (principal, expires)
        return principal

    def _claims(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthenticated("malformed token") from exc
        last_error: Exception | None = None
        for key, algorithms in self._candidates(header):
            try:
                return jwt.decode(
                    token,
                    key,
                    algorithms=algorithms,
                    audience=self._config.audience,
                    issuer=self._config.issuer,
                    leeway=self._config.leeway_s,
                    options={"require": ["exp", "iat", "sub", "iss", "aud"]},
                )
            except jwt.InvalidSignatureError as exc:
                last_error = exc
            except jwt.ExpiredSignatureError as exc:
                raise Unauthenticated("token expired") from exc
            except (jwt.PyJWTError, TypeError, ValueError, OverflowError) as exc:
                # TypeError/ValueError: a header naming an algorithm that does not fit the key.
                raise Unauthenticated(f"invalid token: {str(exc)[:200]}") from exc
        raise Unauthenticated("token signature not valid for any configured key") from last_error

    def _candidates(self, header: Mapping[str, Any]) -> Iterable[tuple[Any, list[str]]]:
        alg = header.get("alg")
        if alg == "HS256":
            if self._config.hs256_secret:
                yield self._config.hs256_secret, ["HS256"]
            return
        kid = header.get("kid")
        if kid and kid in self._config.jwks:
            jwk = self._config.jwks[kid]
            yield jwk.key, [jwk.algorithm_name]
        for key in self._config.public_keys:
            yield key, ASYMMETRIC


def _principal(claims: Mapping[str, Any]) -> Principal:
    raw_roles = claims.get("roles", [])
    if not isinstance(raw_roles, list) or not all(isinstance(r, str) for r in raw_roles):
        raise Unauthenticated("the `roles` claim must be a list of strings")
    known = {r.value for r in Role}
    roles = frozenset(Role(r) for r in raw_roles if r in known)
    teams = claims.get("teams", [])
    if not isinstance(teams, list):
        raise Unauthenticated("the `teams` claim must be a list")
    subject = str(claims["sub"])
    if not subject:
        # An empty subject would equal the empty agent of a request that names no agent (a
        # list without an agent filter), so "own" rows would mean everyone's.
        raise Unauthenticated("the `sub` claim must name the employee")
    return Principal(subject, roles, frozenset(str(t) for t in teams))


def issue_token(
    signing_key: Any,
    algorithm: str,
    subject: str,
    roles: Iterable[str],
    *,
    teams: Iterable[str] = (),
    issuer: str = "wfm",
    audience: str = "wfm",
    ttl_s: int = 3600,
    kid: str | None = None,
    now: float | None = None,
) -> str:
    """Signs a token; used by the development token command and by tests."""
    issued = int(time.time() if now is None else now)
    claims = {
        "sub": subject,
        "roles": list(roles),
        "teams": list(teams),
        "iss": issuer,
        "aud": audience,
        "iat": issued,
        "exp": issued + ttl_s,
    }
    headers = {"kid": kid} if kid else None
    return jwt.encode(claims, signing_key, algorithm=algorithm, headers=headers)
