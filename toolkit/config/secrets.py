"""Secrets the user points at, read on the control machine only: the API key (`serve.api_key_env`
/ `api_key_file`), SSH passwords and key passphrases (`password_env` / `password_file`, ...).
Never inline in an inventory, never printed, never on a remote command line.

One reader for all of them; the differences are explicit in `Source`: an API key is trimmed of
white space and may not be empty; a password keeps its spaces (only the file's line end goes)
and may be empty in a variable. Errors name the source, never the value.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from toolkit.config.inventory import Inventory
from toolkit.errors import BadInput


class SecretUnavailable(Exception):
    """The variable or file a secret should come from cannot give it (callers type the error:
    bad input for the API key, an authentication error naming the host for SSH secrets)."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


@dataclass(frozen=True)
class Source:
    what: str  # the inventory field's stem, e.g. "serve.api_key" or "password"
    env: str | None
    file: Path | None
    strip_spaces: bool  # API keys: yes; passwords and passphrases keep their spaces
    empty_env_ok: bool  # a password may be empty; an API key may not


def read_secret(src: Source) -> str | None:
    """The secret, or None when the inventory names no source."""
    if src.env and src.file:
        raise SecretUnavailable(f"both {src.what}_env and {src.what}_file are set", "keep one of them in the inventory")
    if src.env:
        value = os.environ.get(src.env)
        if value is not None and src.strip_spaces:
            value = value.strip()
        if value is None or (not value and not src.empty_env_ok):
            raise SecretUnavailable(
                f"{src.what}_env names ${src.env}, which is not set"
                + (" (or empty)" if not src.empty_env_ok else "")
                + " here",
                f"export {src.env}=... before running (the inventory names it), or remove {src.what}_env",
            )
        return value
    if src.file:
        try:
            text = src.file.read_text(encoding="utf-8")
        except OSError as exc:
            raise SecretUnavailable(
                f"{src.what}_file {src.file}: {exc.strerror or exc}", f"fix {src.what}_file in the inventory"
            ) from None
        value = text.strip() if src.strip_spaces else text.rstrip("\r\n")
        if not value:
            raise SecretUnavailable(f"{src.what}_file {src.file} is empty")
        return value
    return None


def read_api_key(inventory: Inventory) -> str | None:
    """The API key from the local variable or file the inventory names (a file relative to it)."""
    serve = inventory.spec.serve
    file = inventory.resolve_path(serve.api_key_file) if serve.api_key_file and not serve.api_key_env else None
    try:
        return read_secret(Source("serve.api_key", serve.api_key_env, file, strip_spaces=True, empty_env_ok=False))
    except SecretUnavailable as exc:
        raise BadInput(exc.message, hint=exc.hint) from None
