"""Secrets the user points at, read on the control machine only: the API key here; SSH
passwords and key passphrases in `toolkit.transport.ssh` (a host's settings name their source).
Never inline in an inventory, never printed, never on a remote command line."""

from __future__ import annotations

import os

from toolkit.config.inventory import Inventory
from toolkit.errors import BadInput


def read_api_key(inventory: Inventory) -> str | None:
    """The API key from the local variable or file the inventory names (never from the inventory)."""
    serve = inventory.spec.serve
    if serve.api_key_env:
        value = os.environ.get(serve.api_key_env, "")
        if not value.strip():
            raise BadInput(
                f"serve.api_key_env names ${serve.api_key_env}, which is not set (or empty) here",
                hint=f"export {serve.api_key_env}=... before running, or remove serve.api_key_env",
            )
        return value.strip()
    if serve.api_key_file:
        path = inventory.resolve_path(serve.api_key_file)
        try:
            value = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise BadInput(f"serve.api_key_file {path}: {exc.strerror or exc}") from None
        if not value:
            raise BadInput(f"serve.api_key_file {path} is empty")
        return value
    return None
