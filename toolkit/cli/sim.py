"""`ascend-deploy sim ...`: the simulated cluster's sub-commands (parsing and rendering only)."""

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from toolkit.errors import BadInput
from toolkit.sim.layout import HARDWARE, MAX_HOSTS

sim_app = typer.Typer(
    help=(
        "Simulated Ascend cluster on this Linux box (root): each host a network namespace with its own "
        "mount/UTS/PID view and a real sshd, simulated hccn_tool, npu-smi and acl. Rehearse every command "
        "against it before production. Writes inventories/sim.yaml."
    ),
    no_args_is_help=True,
)

NameOpt = Annotated[str, typer.Option("--name", help="Cluster name (several can coexist).")]
RootOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--root",
        show_default=False,
        help="Folder for the clusters' files and the hosts' Python (never under /tmp). Default: .sim in this folder; "
        "when this folder is under /tmp or its path has a space, "
        "/var/lib/ascend-deploy/sim/NAME-HASH (one per folder).",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")]
InventoryOpt = Annotated[
    Optional[Path],
    typer.Option("--inventory", help="The inventory file (default inventories/sim.yaml, or sim-NAME.yaml)."),
]


def _opts(name: str, root: Optional[Path], **kw: Any) -> Any:
    from toolkit.sim.cluster import SimOptions
    from toolkit.sim.layout import default_root

    return SimOptions(name=name, root=root or default_root(), **kw)


def _progress(enabled: bool) -> Any:
    from rich.text import Text

    from toolkit.cli.console import err

    def show(msg: str) -> None:
        if enabled:
            err.print(Text(f"sim: {msg}", style="dim"))

    return show


def _render_status(data: dict[str, Any]) -> None:
    from rich.table import Table
    from rich.text import Text

    from toolkit.cli.console import out

    if not data.get("hosts"):
        out.print(
            f"simulated cluster '{data['name']}' is not up"
            + (f" (leftovers: {', '.join(data['leftovers'])})" if data.get("leftovers") else "")
        )
        return
    table = Table(
        title=f"simulated cluster {data['name']} ({data.get('hardware')}), inventory {data.get('inventory')}",
        title_justify="left",
    )
    for col in ("host", "role", "address", "netns", "init", "sshd", "ssh port", "faults"):
        table.add_column(col)
    tick = lambda ok: Text("yes", style="green") if ok else Text("no", style="red")  # noqa: E731
    for h in data["hosts"]:
        faults = ", ".join(
            f"{f['kind']}" + (f"(card {f['card']})" if "card" in f else "") + (f"={f['value']}" if "value" in f else "")
            for f in h["faults"]
        )
        table.add_row(
            h["name"],
            h["role"],
            h["address"],
            tick(h["netns"]),
            tick(h["init"]),
            tick(h["sshd"]),
            tick(h["ssh_port"]),
            faults or "-",
        )
    out.print(table)


@sim_app.command("up")
def sim_up(
    hosts: Annotated[
        int, typer.Option("--hosts", "-n", min=1, max=MAX_HOSTS, help="Number of hosts (the first is the head).")
    ] = 2,
    hardware: Annotated[
        str, typer.Option("--hardware", help=f"NPU kind: {', '.join(HARDWARE)} (A3: 16 dies per host).")
    ] = "910B3",
    name: NameOpt = "sim",
    root: RootOpt = None,
    ping_ms: Annotated[
        int, typer.Option("--ping-ms", min=0, max=10000, help="Simulated time per hccn_tool ping packet.")
    ] = 100,
    inventory: InventoryOpt = None,
    devices: Annotated[
        Optional[str],
        typer.Option(
            "--devices",
            help="NPU ids the inventory uses on each host, e.g. '0' (one device per host: cross-host TP/PP on small "
            "machines). Default: all.",
        ),
    ] = None,
    tensor_parallel: Annotated[
        Optional[int],
        typer.Option(
            "--tensor-parallel",
            min=1,
            help="Write serve.tensor_parallel_size into the inventory (e.g. 2 with --devices 0 on 2 hosts: one TP "
            "rank per host).",
        ),
    ] = None,
    container: Annotated[
        bool,
        typer.Option(
            "--container",
            help="Give every host a container engine (podman, as a vendor host has docker) and write an inventory "
            "that runs Ray and vLLM in the simulator's image (built once by `make host-env`).",
        ),
    ] = False,
    json_: JsonOpt = False,
) -> None:
    """Create N simulated hosts and write a ready inventory, client key and known_hosts. Re-running with
    the same arguments changes nothing."""
    from toolkit.cli import render
    from toolkit.sim import cluster

    chosen = None
    if devices is not None:
        try:
            chosen = [int(d) for d in devices.split(",") if d.strip()]
        except ValueError:
            raise BadInput(f"--devices {devices!r}: expected comma-separated NPU ids, e.g. 0,1") from None
    data = cluster.up(
        _opts(
            name,
            root,
            hosts=hosts,
            hardware=hardware,
            ping_ms=ping_ms,
            inventory=inventory,
            devices=chosen,
            tensor_parallel=tensor_parallel,
            containers=container,
        ),
        _progress(not json_),
    )
    if json_:
        render.print_json(data)
        return
    _render_status(data)
    render.out.print(
        ("created" if data.get("changed") else "already up, nothing changed") + f" (its files: {data['root']}); "
        f"try: ascend-deploy facts {data['inventory']}"
    )
    folders = data.get("run_dirs") or []
    if folders:
        shown = ", ".join(folders) if len(folders) <= 2 else f"{folders[0]}, ... ({len(folders)} folders)"
        render.out.print(
            f"the hosts' podman run roots: {shown} (short paths: podman refuses run roots over 50 characters; "
            "`sim down` removes them with the hosts' stores)"
        )


@sim_app.command("down")
def sim_down(
    name: NameOpt = "sim", root: RootOpt = None, inventory: InventoryOpt = None, json_: JsonOpt = False
) -> None:
    """Remove every namespace, process, interface, mount and file the cluster made (also after a crash half-way)."""
    from toolkit.cli import render
    from toolkit.sim import cluster

    data = cluster.down(_opts(name, root, inventory=inventory), _progress(not json_))
    if json_:
        render.print_json(data)
    else:
        render.out.print(f"simulated cluster '{name}' removed ({len(data['netns'])} hosts)")


@sim_app.command("status")
def sim_status(name: NameOpt = "sim", root: RootOpt = None, json_: JsonOpt = False) -> None:
    """Hosts, addresses, live state (namespace, init, sshd, port 22) and injected faults."""
    from toolkit.cli import render
    from toolkit.sim import cluster

    data = cluster.status(_opts(name, root))
    if json_:
        render.print_json(data)
    else:
        _render_status(data)


@sim_app.command("fault")
def sim_fault(
    host: Annotated[Optional[str], typer.Argument(help="Simulated host name (e.g. sim-2).", show_default=False)] = None,
    kind: Annotated[Optional[str], typer.Argument(help="Fault kind, see below.", show_default=False)] = None,
    card: Annotated[int, typer.Option("--card", "-c", min=0, help="Device (phy id) for card faults.")] = 0,
    peer: Annotated[Optional[str], typer.Option("--peer", help="Other host, for ping-loss and unreachable.")] = None,
    value: Annotated[
        Optional[str], typer.Option("--value", help="Fault value (health string, percent, ms, version).")
    ] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Clear all faults (of HOST when given).")] = False,
    name: NameOpt = "sim",
    root: RootOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Inject a fault into a simulated host, or clear faults.

    Kinds: link-down, net-health, ping-loss, card-unhealthy, no-ip, tls-mismatch, optical-absent,
    host-down (sshd stops), isolated (every packet dropped), slow, missing-model, version-skew,
    unreachable (--peer), npu-held (--card; --value S: it lets go after S seconds), hbm-late (--card;
    --value S), low-ram (--value MiB), small-shm (--value size), old-driver (--value version)."""
    from toolkit.cli import render
    from toolkit.errors import BadInput
    from toolkit.sim import faults

    opts = _opts(name, root)
    if clear:
        cleared = faults.clear(opts, host)
        if json_:
            render.print_json({"cleared": cleared})
        else:
            render.out.print(f"cleared {len(cleared)} fault(s)")
        return
    if host is None or kind is None:
        raise BadInput("sim fault needs HOST and KIND (or --clear)", hint="kinds: " + ", ".join(faults.KINDS))
    record = faults.inject(opts, host, kind, card=card, peer=peer, value=value)
    if json_:
        render.print_json(record)
    else:
        render.out.print(f"injected {kind} on {host}: {record['description']}")


@sim_app.command("image-variant")
def sim_image_variant(
    kind: Annotated[str, typer.Argument(help="good, slow or exit-at-start.", show_default=False)],
    tag: Annotated[
        str, typer.Argument(help="The variant's image reference, e.g. localhost/ascend-sim/vllm-ascend:next.")
    ],
    slow_ms: Annotated[int, typer.Option("--slow-ms", min=1, max=60000, help="slow: ms added per engine step.")] = 200,
    remove: Annotated[
        bool, typer.Option("--remove", help="Remove every variant instead (KIND and TAG ignored).")
    ] = False,
    root: RootOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Make a variant of the simulator's image on every simulated host at once, to rehearse `upgrade`:
    good (a harmless change: new tag and id), slow (every engine step --slow-ms longer: a regressed
    release the gate refuses), exit-at-start (`vllm serve` exits at start: a release that does not run)."""
    from toolkit.cli import render
    from toolkit.sim.layout import default_root
    from toolkit.sim.variants import make_variant, remove_variants

    where = root or default_root()
    if remove:
        ids = remove_variants(where)
        if json_:
            render.print_json({"removed": ids})
        else:
            render.out.print(f"removed {len(ids)} variant(s)")
        return
    image_id = make_variant(where, kind, tag, slow_ms=slow_ms)
    if json_:
        render.print_json({"kind": kind, "tag": tag, "image_id": image_id})
    else:
        render.out.print(f"{tag}: {kind} variant of the simulator image ({image_id[:12]})")
