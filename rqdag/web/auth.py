"""Who may act: the dashboard token, the browser's session cookie and its CSRF token.

Without a configured token the dashboard is read-only: every action is refused
(403). With one, an action is allowed to a caller that gives the token as
``Authorization: Bearer TOKEN``, or to a browser that signed in with it: its
session cookie (HttpOnly, SameSite=Strict, signed with a key derived from the
token) plus the CSRF token bound to that cookie in the ``X-CSRF-Token`` header,
from a page of this dashboard (its ``Origin``, else its ``Referer``, must be this
dashboard's own origin). Changing the token ends every session.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.requests import Request

SESSION_COOKIE = "rqdag_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf"
SESSION_TTL_S = 12 * 3600

READ_ONLY = "this dashboard is read-only: start it with --token (or RQDAG_DASHBOARD_TOKEN) to allow actions"
NEEDS_TOKEN = "this action needs the dashboard token: sign in, or send 'Authorization: Bearer TOKEN'"


class Refused(Exception):
    """An action or sign-in that is not allowed: the HTTP status and the reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Session:
    """A signed-in browser: its cookie's nonce and the CSRF token bound to it."""

    nonce: str
    csrf: str


def request_origin(request: Request) -> str | None:
    """Where a request says it comes from: its ``Origin``, else the origin of its ``Referer``."""
    origin = request.headers.get("origin")
    if origin and origin != "null":
        return origin.rstrip("/")
    referer = request.headers.get("referer")
    if referer:
        parts = urlsplit(referer)
        if parts.scheme and parts.netloc:
            return f"{parts.scheme}://{parts.netloc}"
    return None


def own_origin(request: Request) -> str:
    """This dashboard's origin as the request reached it (scheme and ``Host``)."""
    return f"{request.url.scheme}://{request.headers.get('host', request.url.netloc)}"


def same_origin(request: Request) -> bool:
    """True when the request comes from a page of this dashboard."""
    origin = request_origin(request)
    return origin is not None and hmac.compare_digest(origin, own_origin(request))


class Auth:
    """Checks tokens, issues and reads session cookies, guards actions."""

    def __init__(self, token: str | None) -> None:
        self.token = token or None
        secret = (self.token or "").encode("utf-8")
        self._key = hmac.new(secret, b"rqdag-dashboard-session", hashlib.sha256).digest()

    @property
    def enabled(self) -> bool:
        """True when a token is configured (actions are possible)."""
        return self.token is not None

    def token_matches(self, given: str) -> bool:
        """True when ``given`` is the configured token (constant-time comparison)."""
        if self.token is None:
            return False
        return hmac.compare_digest(given.encode("utf-8"), self.token.encode("utf-8"))

    def _sign(self, message: str) -> str:
        return hmac.new(self._key, message.encode("utf-8"), hashlib.sha256).hexdigest()

    def new_cookie(self, now: float | None = None) -> str:
        """A fresh session cookie value: ``nonce.expiry.signature``."""
        nonce = secrets.token_urlsafe(18)
        expires = int((time.time() if now is None else now) + SESSION_TTL_S)
        return f"{nonce}.{expires}.{self._sign(f'{nonce}.{expires}')}"

    def session(self, request: Request, now: float | None = None) -> Session | None:
        """The request's valid session, or None (no token configured, no cookie, bad or expired)."""
        raw = request.cookies.get(SESSION_COOKIE)
        if not self.enabled or not raw:
            return None
        nonce, _, rest = raw.partition(".")
        expires, _, signature = rest.partition(".")
        if not (nonce and expires.isdigit() and signature):
            return None
        if not hmac.compare_digest(signature, self._sign(f"{nonce}.{expires}")):
            return None
        if int(expires) < (time.time() if now is None else now):
            return None
        return Session(nonce, self._sign(f"csrf|{nonce}"))

    def authorize(self, request: Request) -> str:
        """Allow an action, or raise Refused; returns how the caller proved it (``token``, ``session``)."""
        if not self.enabled:
            raise Refused(403, READ_ONLY)
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer":  # other schemes belong to a proxy in front: not ours
            if self.token_matches(value.strip()):
                return "token"
            raise Refused(401, "wrong token in the Authorization header")
        session = self.session(request)
        if session is None:
            raise Refused(401, NEEDS_TOKEN)
        self.check_form_post(request, session, request.headers.get(CSRF_HEADER))
        return "session"

    def check_form_post(self, request: Request, session: Session, csrf: str | None) -> None:
        """Refuse a browser's request that is cross-site or lacks the session's CSRF token."""
        if not same_origin(request):
            origin = request_origin(request) or "none given"
            raise Refused(403, f"cross-site request refused (origin: {origin})")
        if not csrf or not hmac.compare_digest(csrf, session.csrf):
            raise Refused(403, "missing or wrong CSRF token (reload the page)")
