"""Login tokens, sessions and CSRF tokens.

A login token is shown once, when the annotator is created; only a salted PBKDF2 hash of it is stored.
A session is a random id in an HttpOnly, SameSite=Strict cookie; the store keeps its SHA-256 only, so a
copy of the database opens no session. Every write carries the session's CSRF token (the login form,
which has no session yet, carries a token that must match its own cookie)."""
from __future__ import annotations

import hashlib
import hmac
import secrets

ITERATIONS = 200_000


def new_token() -> str:
    return secrets.token_urlsafe(24)


def hash_token(token: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", token.encode("utf-8"), salt, ITERATIONS)
    return f"pbkdf2_sha256${ITERATIONS}${salt.hex()}${digest.hex()}"


def token_matches(token: str, stored: str) -> bool:
    scheme, iterations, salt, digest = stored.split("$")
    if scheme != "pbkdf2_sha256":
        return False
    found = hashlib.pbkdf2_hmac("sha256", token.encode("utf-8"), bytes.fromhex(salt), int(iterations))
    return hmac.compare_digest(found.hex(), digest)


def session_key(session_id: str) -> str:
    """What the store keeps of a session id."""
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


def same(a: object, b: object) -> bool:
    """Whether two CSRF tokens match, in constant time. Anything a client sends may arrive here (non-ASCII,
    a file upload, nothing): only two non-empty strings can match, compared as UTF-8 bytes because
    ``compare_digest`` refuses non-ASCII ``str``."""
    if not (isinstance(a, str) and isinstance(b, str) and a and b):
        return False
    return hmac.compare_digest(a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass"))
