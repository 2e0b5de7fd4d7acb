"""Authenticated encryption of the secrets the panel stores (``backend/services/secrets.py``).

The key is 32 bytes: ``CPT_SECRET_KEY`` (64 hex digits), else generated once into
``<data dir>/.secret_key`` (mode 0600; the data dir's state, which ``cpt_contract/roots.py``
never lets a user's path reach).

Format ``v1.<base64url(nonce 24 B | ciphertext | tag 32 B)>``, encrypt-then-MAC from the standard
library alone (the lock admits no binary wheel, and ``cryptography`` is one): two sub-keys are
derived from the key with HMAC-SHA256; the keystream is SHAKE-256 of the encryption sub-key and a
random nonce (keyed SHAKE is a PRF: the construction of NIST's KMAC); the tag is HMAC-SHA256 of
the version, the *context* (a secret's name, so a value copied under another name fails) and the
nonce and ciphertext, checked in constant time before anything is decrypted. The version prefix
leaves room for another scheme (AES-GCM) beside this one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from functools import lru_cache
from pathlib import Path

from cpt_contract.settings import Settings, write_private_once

KEY_BYTES = 32
NONCE_BYTES = 24
TAG_BYTES = 32
VERSION = "v1"


class Undecryptable(Exception):
    """The sealed value was not made with this key and context, or was altered."""


def panel_key(settings: Settings) -> bytes:
    """The key of this panel's stored secrets (``CPT_SECRET_KEY`` or the generated file)."""
    if settings.secret_key:
        return bytes.fromhex(settings.secret_key)
    return _file_key(settings.resolved_data_dir)


@lru_cache(maxsize=8)
def _file_key(data_dir: Path) -> bytes:
    path = data_dir / ".secret_key"
    if path.exists():
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)
        text = path.read_text().strip()
    else:
        text = write_private_once(path, secrets.token_hex(KEY_BYTES))
    return bytes.fromhex(text)


def key_id(key: bytes) -> str:
    """A short public name of the key (stored beside each value): says whether a stored value
    was sealed under the key in force, without trying to decrypt it."""
    return hmac.new(key, b"cpt-panel/secrets/key-id", hashlib.sha256).hexdigest()[:16]


def _subkeys(key: bytes) -> tuple[bytes, bytes]:
    if len(key) != KEY_BYTES:
        raise ValueError(f"the key has {len(key)} bytes, not {KEY_BYTES}")
    enc = hmac.new(key, b"cpt-panel/secrets/v1/encrypt", hashlib.sha256).digest()
    mac = hmac.new(key, b"cpt-panel/secrets/v1/authenticate", hashlib.sha256).digest()
    return enc, mac


def _keystream(enc: bytes, nonce: bytes, n: int) -> bytes:
    return hashlib.shake_256(b"cpt-panel/secrets/v1/stream" + enc + nonce).digest(n)


def _tag(mac: bytes, context: str, nonce: bytes, ciphertext: bytes) -> bytes:
    ctx = context.encode()
    head = VERSION.encode() + len(ctx).to_bytes(4, "big") + ctx
    return hmac.new(mac, head + nonce + ciphertext, hashlib.sha256).digest()


def _xor(data: bytes, stream: bytes) -> bytes:
    return (int.from_bytes(data, "big") ^ int.from_bytes(stream, "big")).to_bytes(len(data), "big")


def seal(key: bytes, plaintext: str, context: str) -> str:
    """``plaintext`` encrypted and authenticated under ``key``, bound to ``context``."""
    enc, mac = _subkeys(key)
    data = plaintext.encode("utf-8")
    nonce = secrets.token_bytes(NONCE_BYTES)
    ciphertext = _xor(data, _keystream(enc, nonce, len(data)))
    blob = nonce + ciphertext + _tag(mac, context, nonce, ciphertext)
    return f"{VERSION}.{base64.urlsafe_b64encode(blob).decode()}"


def unseal(key: bytes, sealed: str, context: str) -> str:
    """The plaintext ``seal`` was given; ``Undecryptable`` if the key, the context or a single
    bit differs."""
    enc, mac = _subkeys(key)
    version, _, body = sealed.partition(".")
    if version != VERSION:
        raise Undecryptable(f"unknown format {version!r}")
    try:
        blob = base64.urlsafe_b64decode(body.encode())
    except ValueError:
        raise Undecryptable("not base64") from None
    if len(blob) < NONCE_BYTES + TAG_BYTES:
        raise Undecryptable("too short")
    nonce, ciphertext, tag = blob[:NONCE_BYTES], blob[NONCE_BYTES:-TAG_BYTES], blob[-TAG_BYTES:]
    if not hmac.compare_digest(tag, _tag(mac, context, nonce, ciphertext)):
        raise Undecryptable("sealed under another key or context, or altered")
    return _xor(ciphertext, _keystream(enc, nonce, len(ciphertext))).decode("utf-8")
