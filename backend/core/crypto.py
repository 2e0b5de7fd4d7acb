"""Authenticated encryption of the secrets the panel stores (``backend/services/secrets.py``).

The key is 32 bytes: ``CPT_SECRET_KEY`` (64 hex digits), else generated once into
``<data dir>/.secret_key`` (mode 0600; the data dir's state, which ``cpt_contract/roots.py``
never lets a user's path reach).

Format ``v2.<base64url(nonce 12 B | ciphertext | tag 16 B)>``: AES-256-GCM from ``cryptography``
(a maintained library; no cipher of our own), a random nonce per value, and the *context* (a
secret's name) as associated data, so a value copied under another name, sealed under another
key or altered by one bit is refused before anything is decrypted.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from functools import lru_cache
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from cpt_contract.settings import Settings, write_private_once

KEY_BYTES = 32
NONCE_BYTES = 12  # GCM's native nonce size; random, so never reused in practice (< 2^32 values)
TAG_BYTES = 16
VERSION = "v2"


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


def _cipher(key: bytes) -> AESGCM:
    if len(key) != KEY_BYTES:
        raise ValueError(f"the key has {len(key)} bytes, not {KEY_BYTES}")
    return AESGCM(key)


def _associated(context: str) -> bytes:
    return f"cpt-panel/secrets/{VERSION}/".encode() + context.encode("utf-8")


def seal(key: bytes, plaintext: str, context: str) -> str:
    """``plaintext`` encrypted and authenticated under ``key``, bound to ``context``."""
    nonce = secrets.token_bytes(NONCE_BYTES)
    sealed = _cipher(key).encrypt(nonce, plaintext.encode("utf-8"), _associated(context))
    return f"{VERSION}.{base64.urlsafe_b64encode(nonce + sealed).decode()}"


def unseal(key: bytes, sealed: str, context: str) -> str:
    """The plaintext ``seal`` was given; ``Undecryptable`` if the key, the context or a single
    bit differs."""
    cipher = _cipher(key)
    version, _, body = sealed.partition(".")
    if version != VERSION:
        raise Undecryptable(f"unknown format {version!r}")
    try:
        blob = base64.urlsafe_b64decode(body.encode())
    except ValueError:
        raise Undecryptable("not base64") from None
    if len(blob) < NONCE_BYTES + TAG_BYTES:
        raise Undecryptable("too short")
    try:
        plain = cipher.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], _associated(context))
    except InvalidTag:
        raise Undecryptable("sealed under another key or context, or altered") from None
    return plain.decode("utf-8")
