"""The manager page's login session: a signed, HTTP-only, secure cookie.

The browser never keeps the API key itself. At login the key is checked once
against the service's key ring; the cookie then holds only the key's *hash*
(what the keys file already stores), the key's name, a CSRF token and the
issue time, signed with itsdangerous. Every request looks the hash up in the
key ring again, so a key removed from the configuration stops working on the
page at the next restart, exactly as it stops working on the API.

The signing secret, in order: the ``ui_session_secret`` setting when the
service's Settings has one, ``DEALSCORE_UI_SESSION_SECRET``, else a random
secret kept in ``<data_dir>/ui_session_secret`` (mode 0600) so that several
uvicorn workers and restarts share it. Only when that file cannot be written
does the process fall back to a secret of its own, and says so in the log.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from dealscore_service.auth import KeyRing, Principal, hash_key

log = structlog.get_logger("dealscore_service.ui")

#: ``__Host-`` makes browsers refuse the cookie unless it is Secure, host-only and on path ``/``.
COOKIE_NAME = "__Host-dealscore_ui"
SESSION_MAX_AGE = 12 * 3600  # one working day; then the manager logs in again
SECRET_ENV = "DEALSCORE_UI_SESSION_SECRET"
SECRET_FILE = "ui_session_secret"
_SALT = "dealscore.ui.session.v1"


@dataclass(frozen=True)
class UISession:
    """What the cookie says: whose key, which CSRF token, since when."""

    key_hash: str
    key_name: str
    csrf: str
    issued_at: int

    @property
    def id_hash(self) -> str:
        """What the store keeps of a signed-out session: the SHA-256 of its random CSRF token (its id)."""
        return hashlib.sha256(self.csrf.encode("utf-8")).hexdigest()


def _read_or_create_secret(path: Path) -> str:
    """The shared secret file, created atomically (0600) by whichever worker comes first."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # another worker may be writing it right now
            text = path.read_text(encoding="utf-8").strip()
            if text:
                return text
            time.sleep(0.02)
        raise OSError(f"{path} is empty") from None
    secret = secrets.token_urlsafe(48)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(secret)
    return secret


def resolve_secret(settings: Any) -> str:
    """The signing secret (see module docstring for the order)."""
    configured = getattr(settings, "ui_session_secret", None)
    if configured is not None:
        value = configured.get_secret_value() if hasattr(configured, "get_secret_value") else str(configured)
        if value.strip():
            return value.strip()
    env = os.environ.get(SECRET_ENV, "").strip()
    if env:
        return env
    data_dir = Path(getattr(settings, "data_dir", ".dealscore"))
    try:
        return _read_or_create_secret(data_dir / SECRET_FILE)
    except OSError as exc:
        log.warning("ui_session_secret_ephemeral", reason=str(exc)[:200],
                    hint=f"set {SECRET_ENV} so that logins survive restarts and work across workers")
        return secrets.token_urlsafe(48)


def principal_for_hash(keys: KeyRing, key_hash: str) -> Principal | None:
    """The principal of the key hash a session holds (``None`` once the key is no longer configured)."""
    return keys.principal_for_hash(key_hash)


class SessionManager:
    """Signs, reads and clears the session cookie."""

    def __init__(self, secret: str, *, max_age: int = SESSION_MAX_AGE) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt=_SALT)
        self.max_age = max_age

    def read(self, request: Request) -> UISession | None:
        """The session in the request's cookie, or ``None`` (absent, tampered with, or expired)."""
        raw = request.cookies.get(COOKIE_NAME)
        if not raw:
            return None
        try:
            data = self._serializer.loads(raw, max_age=self.max_age)
        except BadSignature:  # includes SignatureExpired
            return None
        try:
            return UISession(key_hash=str(data["h"]), key_name=str(data["n"]), csrf=str(data["c"]),
                             issued_at=int(data["t"]))
        except (KeyError, TypeError, ValueError):
            return None

    def start(self, response: Response, raw_key: str, principal: Principal) -> UISession:
        """Put a fresh session for ``principal`` on the response."""
        session = UISession(key_hash=hash_key(raw_key.strip()), key_name=principal.name,
                            csrf=secrets.token_urlsafe(24), issued_at=int(time.time()))
        token = self._serializer.dumps(
            {"h": session.key_hash, "n": session.key_name, "c": session.csrf, "t": session.issued_at}
        )
        response.set_cookie(COOKIE_NAME, token, max_age=self.max_age, path="/", secure=True, httponly=True,
                            samesite="lax")
        return session

    @staticmethod
    def clear(response: Response) -> None:
        response.delete_cookie(COOKIE_NAME, path="/", secure=True, httponly=True, samesite="lax")

    @staticmethod
    def csrf_ok(session: UISession, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(session.csrf, str(token))
