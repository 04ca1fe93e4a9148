"""The `env_file` step: the host's environment file, written 0600 only when its content differs.

Later commands source this file; `up` (issue 6) adds the plan's HCCL/GLOO/Ray variables."""

from __future__ import annotations

import hashlib
from typing import Iterator

from toolkit.engine.registry import Op, StepContext, step
from toolkit.facts import Fact, Raw
from toolkit.facts.deploy import state_dir
from toolkit.transport.shell import export_env, q


def render_env(env: dict[str, str]) -> str:
    lines = ["# written by ascend-deploy; sourced before every command of this cluster"]
    lines += [f"{export_env({k: v})}" for k, v in sorted(env.items())]
    return "\n".join(lines) + "\n"


def _file_digest(raw: Raw) -> str | None:
    text = raw.stdout.strip()
    return text.split()[0] if raw.exit_code == 0 and text else None


def write_file_op(path: str, content: str, description: str) -> Op:
    """Atomic write with mode 0600 (umask before the file exists, then rename into place)."""
    folder = path.rsplit("/", 1)[0]
    tmp = f"{q(path + '.tmp')}.$$"  # per-process temp name: concurrent writers never collide
    cmd = (
        f"umask 077 && mkdir -p {q(folder)} && printf '%s' {q(content)} > {tmp} "
        f"&& chmod 600 {tmp} && mv -f {tmp} {q(path)}"
    )
    return Op(cmd, description)


@step("env_file")
def env_file(ctx: StepContext) -> Iterator[Op]:
    """Write the host's environment file (mode 0600) if its content changed."""
    name = ctx.params.get("name", "env")
    path = f"{state_dir(ctx.inventory.name)}/{name}"
    content = render_env(dict(ctx.host.env))
    wanted = hashlib.sha256(content.encode()).hexdigest()
    have = ctx.facts([Fact("digest", f"sha256sum {q(path)}", _file_digest, setup=False)])["digest"]
    ctx.data["path"] = path
    ctx.data["digest"] = wanted
    if have != wanted:
        yield write_file_op(path, content, f"write {path} ({len(ctx.host.env)} variables)")
