"""The operator's token: minted here, printed once, stored only as its sha256.

    <state>/dashboard/operator-token   {"sha256": ..., "generation": ..., "minted_at": ...}
    <state>/dashboard/session-key      32 random bytes sealing the session cookies

A browser signs in by presenting the token once and gets a sealed session
cookie naming the *generation* it signed in under. `hyperhive token` mints a
new token and a new generation, so every browser must sign in again (the answer
to a leaked token); `hyperhive up` mints a new token at each start but keeps the
generation, so the operator's open tabs stay signed in across restarts.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime

import msgspec

from hyperhive.errors import ConfigError
from hyperhive.files import create_once, write_atomic
from hyperhive.statedir import StateDir

SESSION_KEY_BYTES = 32
MAX_TOKEN = 256  # longer than any token we mint: refused before hashing


class TokenRecord(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What the state dir keeps of the operator token."""

    sha256: str
    generation: str
    minted_at: datetime


_decoder = msgspec.json.Decoder(TokenRecord)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def read_record(state: StateDir) -> TokenRecord | None:
    """The stored record, or None if no token was minted yet."""
    path = state.operator_token
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return _decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise ConfigError(
            f"{path} is damaged ({exc}): run `hyperhive token` for a new one"
        ) from None


def mint(state: StateDir, sign_out: bool = True) -> str:
    """A new operator token (returned, never stored); with `sign_out`, every session ends."""
    old = read_record(state) if not sign_out else None
    token, record = _new_token(old)
    write_atomic(state.operator_token, msgspec.json.encode(record), 0o600)
    return token


def ensure(state: StateDir) -> str | None:
    """Mint a token if there is none yet: the new token, or None if one exists.

    Two processes starting at the same moment mint one token between them: the
    one whose record lands first returns it, the other None.
    """
    if read_record(state) is not None:
        return None
    token, record = _new_token(None)
    if create_once(state.operator_token, msgspec.json.encode(record), 0o600):
        return token
    return None


def _new_token(old: TokenRecord | None) -> tuple[str, TokenRecord]:
    token = secrets.token_urlsafe(32)
    record = TokenRecord(
        sha256=digest(token),
        generation=old.generation if old is not None else secrets.token_hex(8),
        minted_at=datetime.now(UTC),
    )
    return token, record


def verify(state: StateDir, presented: str) -> TokenRecord | None:
    """The record if `presented` is the current token (compared in constant time)."""
    record = read_record(state)
    if record is None or not presented or len(presented) > MAX_TOKEN:
        return None
    if hmac.compare_digest(digest(presented), record.sha256):
        return record
    return None


def current_generation(state: StateDir) -> str | None:
    record = read_record(state)
    return None if record is None else record.generation


def session_key(state: StateDir) -> bytes:
    """The key sealing session cookies: made once, kept (0600) so sessions survive restarts."""
    path = state.session_key
    try:
        key = path.read_bytes()
        if len(key) == SESSION_KEY_BYTES:
            return key
    except FileNotFoundError:
        key = secrets.token_bytes(SESSION_KEY_BYTES)
        if create_once(path, key, 0o600):
            return key
        return session_key(state)  # made by another process at the same moment
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    key = secrets.token_bytes(SESSION_KEY_BYTES)  # damaged: sessions sealed with it are lost
    write_atomic(path, key, 0o600)
    return key
