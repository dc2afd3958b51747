"""A peer admitted by a JWT access token your application issued, verified with PyJWT.

The token comes as ``?access_token=...`` or an ``Authorization: Bearer ...`` header. Options
(``--peer-options``):

- ``{"secret": "..."}`` (or ``"secret_env": "VAR"``; by default ``$MEMBRANE_RTC_JWT_SECRET``):
  HS256 with a shared secret;
- ``{"public_key_file": "/path/key.pem"}``: RS256 or ES256 (the key's kind decides) with your
  issuer's public key;
- ``"leeway"`` (seconds of clock skew allowed on ``exp``/``nbf``, default 10), and optionally
  ``"audience"`` and ``"issuer"``, checked when given;
- ``"max_lifetime"`` (seconds, optional): a token whose ``exp - iat`` is longer, or that has
  no ``iat``, is refused. A resume checks the token again (docs/reference/protocol.md), so
  this bounds how long one token can keep a session going.

The options are checked once, before the server starts (``check_options``): no secret, an
HS256 secret shorter than 32 bytes (RFC 7518, 3.2), a key file that cannot be read, a bad
``max_lifetime`` or an unknown option is one error line, and the server does not start.

Claims: ``exp`` is required; ``room`` must name the URL's room (``"*"``: any room); ``sub`` is
the peer's identity (``AuthData.identity``); ``metadata`` (an object), or else ``name``,
becomes its public metadata (``joined.data.metadata``). Every refusal is HTTP 401, with the
reason in the server's log, never the token.
"""

import functools
import json
import os
from typing import Any

import jwt

from membrane_rtc import (JWT_SECRET_VARIABLE, AuthData, Peer, PeerContext, PeerRequest,
                          Unauthorized)

#: Where the shared secret is read from when the options name none (``membrane-rtc token``
#: reads the same).
SECRET_VARIABLE = JWT_SECRET_VARIABLE
#: The claim that matches every room.
ANY_ROOM = "*"
#: Seconds of clock skew allowed on ``exp`` and ``nbf``.
DEFAULT_LEEWAY = 10.0
#: The asymmetric algorithms by the kind of public key.
_ALGORITHMS = {"RSA": ["RS256"], "EC": ["ES256"]}
#: The shortest HS256 secret accepted (RFC 7518, 3.2: a key as long as the hash).
MIN_SECRET_BYTES = 32
#: The options JWTPeer knows; any other is a mistake (a misspelt one would be ignored).
OPTIONS = frozenset({"secret", "secret_env", "public_key_file", "leeway", "audience", "issuer",
                     "max_lifetime"})


def verification_key(options: dict[str, Any]) -> tuple[Any, list[str]]:
    """The key and the algorithms tokens must be signed with; only these are accepted
    (never ``none``, never an HMAC keyed with a public key). Read once per options."""
    return _key(json.dumps(options, sort_keys=True))


@functools.lru_cache(maxsize=8)
def _key(options_json: str) -> tuple[Any, list[str]]:
    options = json.loads(options_json)
    if "public_key_file" in options:
        # Optional, for RS256/ES256 only: pip install 'membrane-rtc[jwt]'.
        from cryptography.hazmat.primitives.serialization import load_pem_public_key

        with open(options["public_key_file"], "rb") as pem:
            key = load_pem_public_key(pem.read())
        kind = type(key).__name__
        algorithms = next((a for k, a in _ALGORITHMS.items() if k in kind), None)
        if algorithms is None:
            raise ValueError(f"unsupported public key type {kind}")
        return key, algorithms
    secret = options.get("secret") or os.environ.get(options.get("secret_env", SECRET_VARIABLE))
    if not secret:
        raise ValueError(f"no secret: give 'secret', 'secret_env' or ${SECRET_VARIABLE}")
    if len(secret.encode()) < MIN_SECRET_BYTES:
        raise ValueError(f"the HS256 secret is {len(secret.encode())} bytes long, shorter than "
                         f"{MIN_SECRET_BYTES}")
    return secret, ["HS256"]


def max_lifetime(options: dict[str, Any]) -> float | None:
    """The ``max_lifetime`` option in seconds (None: not set)."""
    value = options.get("max_lifetime")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValueError(f"max_lifetime must be a positive number of seconds, not {value!r}")
    return float(value)


class JWTPeer(Peer):
    """Admits a client whose access token is valid for the room it asks for."""

    @classmethod
    def check_options(cls, options: Any) -> None:
        """The key can be had (the secret, or the public key file read) and every option is
        one JWTPeer knows, of the right type: else no client could ever be let in."""
        options = {} if options is None else options
        if not isinstance(options, dict):
            raise ValueError(f"JWTPeer's options are an object, not {type(options).__name__}")
        unknown = sorted(set(options) - OPTIONS)
        if unknown:
            raise ValueError(f"JWTPeer has no option {unknown[0]!r} (it knows "
                             f"{', '.join(sorted(OPTIONS))})")
        leeway = options.get("leeway", DEFAULT_LEEWAY)
        if isinstance(leeway, bool) or not isinstance(leeway, (int, float)) or leeway < 0:
            raise ValueError(f"JWTPeer: leeway must be seconds >= 0, not {leeway!r}")
        for name in ("audience", "issuer"):
            if not isinstance(options.get(name, ""), str):
                raise ValueError(f"JWTPeer: {name} must be a string")
        try:
            max_lifetime(options)
            verification_key(options)
        except ValueError as exc:
            raise ValueError(f"JWTPeer: {exc}") from None
        except OSError as exc:
            raise ValueError(f"JWTPeer: cannot read public_key_file "
                             f"{options['public_key_file']}: {exc.strerror}") from None
        except ImportError:
            raise ValueError("JWTPeer: a public key needs cryptography: pip install "
                             "'membrane-rtc[jwt]'") from None

    @classmethod
    def parse_request(cls, request: PeerRequest) -> tuple[dict[str, str], Any, str]:
        """As the default, plus the bearer token as ``credentials["access_token"]``; the
        ``Authorization`` header is kept out of the metadata the room sees."""
        credentials, metadata, room = super().parse_request(request)
        headers = metadata["headers"]
        scheme, _, token = headers.pop("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token and "access_token" not in credentials:
            credentials["access_token"] = token.strip()
        return credentials, metadata, room

    def on_init(self, context: PeerContext, auth: AuthData, options: Any) -> None:
        options = options or {}
        token = auth.credentials.get("access_token")
        if not token:
            raise Unauthorized("no access token")
        key, algorithms = verification_key(options)
        longest = max_lifetime(options)
        try:
            claims = jwt.decode(
                token, key, algorithms=algorithms,
                leeway=float(options.get("leeway", DEFAULT_LEEWAY)),
                audience=options.get("audience"), issuer=options.get("issuer"),
                options={"require": ["exp"]})
        except jwt.ExpiredSignatureError:
            raise Unauthorized("access token expired") from None
        except jwt.ImmatureSignatureError:
            raise Unauthorized("access token not valid yet") from None
        except jwt.InvalidTokenError as exc:  # signature, algorithm, audience, format...
            raise Unauthorized(f"invalid access token ({type(exc).__name__})") from None
        if longest is not None:
            if "iat" not in claims:
                raise Unauthorized("access token has no iat (max_lifetime is set)")
            # PyJWT checked both are integers (int() of them works).
            if int(claims["exp"]) - int(claims["iat"]) > longest:
                raise Unauthorized("access token lives longer than max_lifetime")
        room = claims.get("room")
        if room != ANY_ROOM and room != context.room:
            raise Unauthorized("access token is not for this room")
        if isinstance(claims.get("sub"), str):
            self.identity = claims["sub"]
        if isinstance(claims.get("metadata"), dict):
            self.public_metadata = claims["metadata"]
        elif isinstance(claims.get("name"), str):
            self.public_metadata = {"name": claims["name"]}
