"""JWTs (python-jose, algorithm pinned): issue and verify access and refresh tokens."""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Literal

from jose import jwt
from jose.exceptions import ExpiredSignatureError, JOSEError

from app.auth.errors import TokenExpired, TokenInvalid
from app.core.config import Settings

TokenType = Literal["access", "refresh"]
MAX_TOKEN_BYTES = 4096
VERIFIED_CACHE_SIZE = 10_000  # verified tokens remembered until they expire
REQUIRED_CLAIMS = ("iss", "aud", "sub", "sid", "jti", "typ", "iat", "nbf", "exp")


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    jti: str
    expires_in: int


@dataclass(frozen=True, slots=True)
class Claims:
    sub: str
    sid: str
    jti: str
    typ: TokenType
    exp: int


class TokenService:
    """Signs and verifies Studio's tokens with one secret and one pinned algorithm."""

    def __init__(self, settings: Settings, cache_size: int = VERIFIED_CACHE_SIZE) -> None:
        self._secret = settings.jwt_secret
        self._algorithm = settings.jwt_algorithm
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._ttl = {
            "access": settings.jwt_access_token_expire_seconds,
            "refresh": settings.jwt_refresh_token_expire_seconds,
        }
        self._options = {
            "verify_signature": True,
            "verify_aud": True,
            "verify_iss": True,
            "verify_exp": True,
            "verify_nbf": True,
            "verify_iat": True,
            "verify_sub": True,
            "verify_jti": True,
            "leeway": 0,
            **{f"require_{c}": True for c in ("aud", "iat", "exp", "nbf", "iss", "sub", "jti")},
        }

        self._cache: OrderedDict[str, Claims] = OrderedDict()
        self._cache_size = cache_size

    def ttl(self, typ: TokenType) -> int:
        return self._ttl[typ]

    def issue(
        self,
        typ: TokenType,
        *,
        user_id: str,
        session_id: str,
        jti: str | None = None,
        not_after: float | None = None,
    ) -> IssuedToken:
        """Sign a token of `typ` for the user's session, expiring by `not_after` (the session's
        end) at the latest."""
        now = int(time.time())
        exp = now + self._ttl[typ]
        if not_after is not None:
            exp = max(now, min(exp, int(not_after)))
        jti = jti or secrets.token_hex(16)
        claims: dict[str, Any] = {
            "iss": self._issuer,
            "aud": self._audience,
            "sub": user_id,
            "sid": session_id,
            "jti": jti,
            "typ": typ,
            "iat": now,
            "nbf": now,
            "exp": exp,
        }
        if not_after is not None:
            claims["sxp"] = int(not_after)  # the session's end: tells "cut short" from "ran out"
        token = jwt.encode(claims, self._secret, algorithm=self._algorithm)
        return IssuedToken(token=token, jti=jti, expires_in=exp - now)

    def verify(self, token: str, typ: TokenType) -> Claims:
        """Decode and check everything; TOKEN_EXPIRED or TOKEN_INVALID otherwise.

        A token that verified is remembered until its `exp` (bounded LRU): the same bearer on
        the next request costs a dict lookup instead of an HMAC and two base64/JSON decodes.
        Only successes are cached and an expired entry is never served, so the answer is the
        one a full verification would give (revocation is the session check's job, not this).
        """
        cache = self._cache
        cached = cache.get(token)
        if cached is not None:
            if cached.typ == typ and time.time() < cached.exp:
                cache.move_to_end(token)
                return cached
            if time.time() >= cached.exp:
                del cache[token]
        claims = self._verify(token, typ)
        cache[token] = claims
        if len(cache) > self._cache_size:
            cache.popitem(last=False)
        return claims

    def cut_short(self, token: str, typ: TokenType) -> bool:
        """For a token that verified but for its expiry: True when it expired with its
        session's max lifetime (its `exp` is the session's end, `sxp`)."""
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[self._algorithm],
                audience=self._audience,
                issuer=self._issuer,
                # jose turns verify_exp back on for a required exp: both off, exp read below.
                options={**self._options, "verify_exp": False, "require_exp": False},
            )
            return "sxp" in claims and claims["sxp"] == claims["exp"]
        except (JOSEError, ValueError, TypeError, KeyError):
            return False

    def _verify(self, token: str, typ: TokenType) -> Claims:
        if not token or len(token) > MAX_TOKEN_BYTES or token.count(".") != 2:
            raise TokenInvalid()
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") != self._algorithm:
                raise TokenInvalid()  # RFC 8725 §3.1: only the one algorithm we issue
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[self._algorithm],
                audience=self._audience,
                issuer=self._issuer,
                options=self._options,
            )
        except ExpiredSignatureError:
            raise TokenExpired() from None
        except (JOSEError, ValueError, TypeError, KeyError):
            raise TokenInvalid() from None
        if any(c not in claims for c in REQUIRED_CLAIMS) or claims["typ"] != typ:
            raise TokenInvalid()
        if not all(isinstance(claims[c], str) and claims[c] for c in ("sub", "sid", "jti")):
            raise TokenInvalid()
        return Claims(
            sub=claims["sub"], sid=claims["sid"], jti=claims["jti"], typ=typ, exp=int(claims["exp"])
        )
