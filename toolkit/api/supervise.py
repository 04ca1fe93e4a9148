"""What `status` finds wrong with a running deployment beyond each host's own state (pure: from the
plan and the status rows): ranks running without their API server (orphans of a head that died: they
never recover on their own), ranks that stopped while the API server serves on with the others
(degraded: the endpoint still answers), a server whose /health says 200 but which does not answer a
one-token completion (wedged), and an API server that reports fewer engines than the plan's DP ranks.
Each finding names the host, what was seen and the fix; any finding makes `status` exit 1."""

from __future__ import annotations

from typing import Any

from toolkit.planner.plan import Plan
from toolkit.steps.observe import ANSWER_BOUND_S


def findings(plan: Plan, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_host = {r["host"]: r for r in rows}
    found: list[dict[str, Any]] = []
    groups = {p.group for h in plan.hosts for p in h.processes if p.same == "group"}
    for group in sorted(groups):
        members = [(h, p) for h in plan.hosts for p in h.processes if p.group == group]
        api = next(((h, p) for h, p in members if p.api), None)
        if api is None:
            continue
        api_row = by_host.get(api[0].name)
        if api_row is None or not api_row.get("reachable"):
            continue
        if _pid(api_row, api[1].name) is not None:  # the API server runs: are all its ranks there?
            for host, proc in members:
                row = by_host.get(host.name)
                if proc.api or row is None or not row.get("reachable") or _pid(row, proc.name) is not None:
                    continue
                found.append(
                    _ranks(
                        host.name,
                        "ranks-down",
                        f"DP rank(s) {_listed(proc.ranks)} planned here do not run, while the API server on "
                        f"{api[0].name} still answers with the other ranks' engines (a degraded deployment)",
                        "`logs --tail 40` shows why they stopped",
                    )
                )
            continue
        for host, proc in members:
            row = by_host.get(host.name)
            pid = _pid(row, proc.name) if row else None
            if pid is None or proc.api:
                continue
            found.append(
                _ranks(
                    host.name,
                    "orphaned-ranks",
                    f"DP rank(s) {_listed(proc.ranks)} run here (pid {pid}) without the API server on {api[0].name}, "
                    "which is not running: they wait for it and do not recover when it comes back",
                    "`ascend-deploy down` stops them",
                )
            )
    head = by_host.get(plan.head.name)
    if head is not None and head.get("health") == 200 and head.get("answered") is False:
        found.append(
            {
                "host": plan.head.name,
                "check": "wedged",
                "observed": f"/health answers 200 but a one-token completion got no answer within {ANSWER_BOUND_S} s",
                "fix": "the engine is stuck (see `ascend-deploy logs --tail 40`); `ascend-deploy down` then `up` "
                "starts it again",
            }
        )
    if head is not None and head.get("health") == 200:
        engines, planned = head.get("engines"), head.get("engines_planned")
        if isinstance(engines, int) and isinstance(planned, int) and engines < planned:
            found.append(
                {
                    "host": plan.head.name,
                    "check": "engines",
                    "observed": f"the API server reports {engines} of the plan's {planned} engines (/metrics)",
                    "fix": "the missing ranks' hosts are named above if their process is gone; `ascend-deploy up` "
                    "restarts the group",
                }
            )
    return found


def _listed(ranks: tuple[int, ...]) -> str:
    return ", ".join(map(str, ranks)) or "?"


def _ranks(host: str, check: str, observed: str, also: str) -> dict[str, Any]:
    """A finding about a host's DP ranks: the fix is always the group's restart by `up`."""
    return {
        "host": host,
        "check": check,
        "observed": observed,
        "fix": f"`ascend-deploy up` restarts every rank of the group; {also}",
    }


def _pid(row: dict[str, Any], name: str) -> int | None:
    proc = next((p for p in row.get("processes") or [] if p["name"] == name), None)
    return proc.get("pid") if proc else None
