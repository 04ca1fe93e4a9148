"""The `env_file` step: the host's environment file, written 0600 only when its content differs.

Later commands source this file; `up`'s `deploy_env` step writes the plan's HCCL/GLOO/Ray variables."""

from __future__ import annotations

import hashlib
from typing import Iterator

from toolkit.engine.registry import Op, StepContext, step
from toolkit.facts import Fact
from toolkit.facts.deploy import state_dir
from toolkit.steps.commands import file_digest, render_env, write_file_op
from toolkit.transport.shell import q


@step("env_file")
def env_file(ctx: StepContext) -> Iterator[Op]:
    """Write the host's environment file (mode 0600) if its content changed."""
    name = ctx.params.get("name", "env")
    path = f"{state_dir(ctx.inventory.name)}/{name}"
    content = render_env(dict(ctx.host.env))
    wanted = hashlib.sha256(content.encode()).hexdigest()
    have = ctx.facts([Fact("digest", f"sha256sum {q(path)}", file_digest, setup=False)])["digest"]
    ctx.data["path"] = path
    ctx.data["digest"] = wanted
    if have != wanted:
        yield write_file_op(path, content, f"write {path} ({len(ctx.host.env)} variables)")
