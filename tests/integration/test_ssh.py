"""The execution engine against real OpenSSH servers on loopback (one sshd per fake host)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
import yaml

from tests.helpers import SshLab, cli, wait_for
from tests.sshd import free_port, keygen
from toolkit import api
from toolkit.config.loader import load_inventory
from toolkit.errors import AuthError, CommandFailed, CommandTimeout, ConnectError


def test_facts_cli_against_three_hosts(ssh_lab: SshLab, home: Path, tmp_path: Path) -> None:
    inv = ssh_lab.inventory(tmp_path / "inv.yaml")
    table = cli("facts", str(inv), env={"HOME": str(home)})
    assert table.returncode == 0, table.stderr
    for h in ssh_lab.hosts:
        assert h.name in table.stdout
    assert "Python" in table.stdout
    out = cli("facts", str(inv), "--json", env={"HOME": str(home)})
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["ok"] is True and set(data["hosts"]) == {"h0", "h1", "h2"}
    facts = data["hosts"]["h1"]["facts"]
    assert facts["hostname"] and facts["kernel"] and facts["cpus"] >= 1 and facts["memory_mib"] > 0
    assert any("127.0.0.1/8" in n["addresses"] for n in facts["nics"])
    assert facts["python"].startswith("3.")


def test_one_handshake_per_host_per_run(ssh_lab: SshLab, home: Path, tmp_path: Path) -> None:
    inv = load_inventory(ssh_lab.inventory(tmp_path / "inv.yaml"))
    before = {h.name: h.handshakes() for h in ssh_lab.hosts}
    with api.make_executor(inv, api.Options()) as ex:
        for _ in range(3):
            group = ex.run("true")
            assert group.ok, group.failed
        ex.map(lambda s: [s.run("echo $HOME") for _ in range(4)])
    for h in ssh_lab.hosts:
        assert h.handshakes() - before[h.name] == 1, h.log.read_text()[-2000:]


def test_commands_run_in_parallel_across_hosts(ssh_lab: SshLab, home: Path, tmp_path: Path) -> None:
    inv = load_inventory(ssh_lab.inventory(tmp_path / "inv.yaml"))
    cmd = "date +%s.%N; sleep 1; date +%s.%N"

    def spans(forks: int | None) -> list[tuple[float, float]]:
        with api.make_executor(inv, api.Options(forks=forks)) as ex:
            group = ex.run(cmd)
        assert group.ok
        return [tuple(map(float, o.value.stdout.split())) for o in group]  # type: ignore[union-attr]

    parallel = spans(None)
    latest_start = max(s for s, _ in parallel)
    earliest_end = min(e for _, e in parallel)
    assert latest_start < earliest_end, f"no overlap: {parallel}"
    serial = sorted(spans(1))
    for (_, end), (start, _) in zip(serial, serial[1:]):
        assert start >= end, f"forks=1 overlapped: {serial}"


def test_environment_reaches_every_command(ssh_lab: SshLab, home: Path, tmp_path: Path) -> None:
    inv = load_inventory(
        ssh_lab.inventory(
            tmp_path / "inv.yaml",
            defaults={
                "user": "root",
                "key_file": str(ssh_lab.client_key),
                "env": {"HCCL_CONNECT_TIMEOUT": "1200"},
                "setup": ["export FROM_SETUP=yes"],
            },
        )
    )
    with api.make_executor(inv, api.Options()) as ex:
        group = ex.run('echo "$HCCL_CONNECT_TIMEOUT $FROM_SETUP"')
    assert {o.value.stdout.strip() for o in group} == {"1200 yes"}  # type: ignore[union-attr]


def test_timeout_names_host_and_kills_remote_command(ssh_lab: SshLab, home: Path, tmp_path: Path) -> None:
    inv = load_inventory(ssh_lab.inventory(tmp_path / "inv.yaml"))
    token = f"{time.time_ns()}"
    with api.make_executor(inv, api.Options(limit="h1")) as ex:
        group = ex.map(lambda s: s.run(f"sleep 30 # {token}", timeout=1))
        err = group["h1"].error
        assert isinstance(err, CommandTimeout)
        assert err.host == "h1" and "timed out after 1s" in err.message
        assert group["h1"].duration < 10
        # the remote sleep is gone and the host is still usable
        after = ex.map(lambda s: s.run(f"pgrep -f 'slee[p] 30 # {token}' || echo none"))
        assert after["h1"].value.stdout.strip() == "none"  # type: ignore[union-attr]


def test_nonzero_exit_is_command_failed_with_result(ssh_lab: SshLab, home: Path, tmp_path: Path) -> None:
    inv = load_inventory(ssh_lab.inventory(tmp_path / "inv.yaml"))
    with api.make_executor(inv, api.Options(limit="h2")) as ex:
        group = ex.run("echo out; echo boom >&2; exit 7")
    err = group["h2"].error
    assert isinstance(err, CommandFailed) and err.result is not None
    assert err.result.exit_code == 7 and err.result.stdout == "out\n" and "boom" in err.message
    assert str(err).startswith("h2: ")


def test_setup_line_failure_is_named(ssh_lab: SshLab, home: Path, tmp_path: Path) -> None:
    inv = load_inventory(
        ssh_lab.inventory(
            tmp_path / "inv.yaml",
            defaults={
                "user": "root",
                "key_file": str(ssh_lab.client_key),
                "setup": ["source /usr/local/Ascend/ascend-toolkit/set_env.sh"],
            },
        )
    )
    with api.make_executor(inv, api.Options(limit="h0")) as ex:
        group = ex.run("true")
    err = group["h0"].error
    assert isinstance(err, CommandFailed)
    assert "setup line 1 failed: source /usr/local/Ascend/ascend-toolkit/set_env.sh" in err.message


def test_host_down_others_still_report(ssh_lab: SshLab, home: Path, tmp_path: Path) -> None:
    dead_port = free_port("127.0.0.14")
    inv = ssh_lab.inventory(
        tmp_path / "inv.yaml", extra_hosts=[{"name": "dead", "address": "127.0.0.14", "port": dead_port}]
    )
    out = cli("facts", str(inv), "--json", env={"HOME": str(home)})
    assert out.returncode == 1
    data = json.loads(out.stdout)
    assert data["ok"] is False
    assert data["hosts"]["dead"]["error"]["kind"] == "connect"
    assert f"127.0.0.14:{dead_port}" in data["hosts"]["dead"]["error"]["message"]
    assert all(data["hosts"][h]["ok"] for h in ("h0", "h1", "h2"))
    table = cli("facts", str(inv), env={"HOME": str(home)})
    assert table.returncode == 1
    assert "error: dead [facts]: cannot connect to" in table.stderr


def test_wrong_key_is_auth_error(ssh_lab: SshLab, home: Path, tmp_path: Path) -> None:
    other = keygen(tmp_path / "other_key")
    inv = load_inventory(ssh_lab.inventory(tmp_path / "inv.yaml", defaults={"user": "root", "key_file": str(other)}))
    with api.make_executor(inv, api.Options(limit="h0")) as ex:
        group = ex.run("true")
    err = group["h0"].error
    assert isinstance(err, AuthError) and "authentication failed" in err.message


def test_missing_key_file_is_auth_error(ssh_lab: SshLab, home: Path, tmp_path: Path) -> None:
    inv = load_inventory(
        ssh_lab.inventory(tmp_path / "inv.yaml", defaults={"user": "root", "key_file": str(tmp_path / "nokey")})
    )
    with api.make_executor(inv, api.Options(limit="h0")) as ex:
        group = ex.run("true")
    assert isinstance(group["h0"].error, AuthError) and "not found" in group["h0"].error.message


def test_unknown_host_key_needs_opt_in_and_is_recorded(ssh_lab: SshLab, home: Path, tmp_path: Path) -> None:
    inv = ssh_lab.inventory(tmp_path / "inv.yaml", known_hosts=False)
    out = cli("facts", str(inv), "--limit", "h0", "--json", env={"HOME": str(home)})
    assert out.returncode == 1
    err = json.loads(out.stdout)["hosts"]["h0"]["error"]
    assert err["kind"] == "host-key" and err["changed"] is False
    assert err["fingerprint"] == ssh_lab.hosts[0].fingerprint()
    assert "--accept-new-host-keys" in err["hint"]
    ok = cli("facts", str(inv), "--limit", "h0", "--accept-new-host-keys", env={"HOME": str(home)})
    assert ok.returncode == 0, ok.stderr
    recorded = (home / ".ssh" / "known_hosts").read_text()
    assert ssh_lab.hosts[0].host_key_line() in recorded
    assert oct((home / ".ssh" / "known_hosts").stat().st_mode & 0o777) == "0o600"
    again = cli("facts", str(inv), "--limit", "h0", env={"HOME": str(home)})
    assert again.returncode == 0, again.stderr


def test_accept_new_records_into_inventory_known_hosts(ssh_lab: SshLab, home: Path, tmp_path: Path) -> None:
    known = tmp_path / "kh"
    inv = ssh_lab.inventory(tmp_path / "inv.yaml", known_hosts=False)
    data = yaml.safe_load(inv.read_text())
    data["known_hosts"] = "kh"  # relative to the inventory file
    inv.write_text(yaml.safe_dump(data))
    out = cli("facts", str(inv), "--limit", "h1", "--accept-new-host-keys", env={"HOME": str(home)})
    assert out.returncode == 0, out.stderr
    assert ssh_lab.hosts[1].host_key_line() in known.read_text()
    assert not (home / ".ssh" / "known_hosts").exists()


def test_changed_host_key_is_always_refused(ssh_lab: SshLab, home: Path, tmp_path: Path) -> None:
    keygen(tmp_path / "impostor")
    kind, key = (tmp_path / "impostor.pub").read_text().split()[:2]
    h = ssh_lab.hosts[2]
    known = tmp_path / "known_hosts"
    known.write_text(f"[{h.address}]:{h.port} {kind} {key}\n")
    inv = ssh_lab.inventory(tmp_path / "inv.yaml", known_hosts=False)
    data = yaml.safe_load(inv.read_text())
    data["known_hosts"] = str(known)
    inv.write_text(yaml.safe_dump(data))
    for extra in ([], ["--accept-new-host-keys"]):
        out = cli("facts", str(inv), "--limit", "h2", "--json", *extra, env={"HOME": str(home)})
        assert out.returncode == 1
        err = json.loads(out.stdout)["hosts"]["h2"]["error"]
        assert err["kind"] == "host-key" and err["changed"] is True
        assert "HOST KEY CHANGED" in err["message"] and err["fingerprint"] == h.fingerprint()
    assert known.read_text() == f"[{h.address}]:{h.port} {kind} {key}\n"  # never rewritten


def test_ssh_config_alias_is_honoured(ssh_lab: SshLab, home: Path, tmp_path: Path) -> None:
    h = ssh_lab.hosts[0]
    (home / ".ssh" / "config").write_text(
        f"Host lab-alias\n  HostName {h.address}\n  Port {h.port}\n  User root\n  IdentityFile {ssh_lab.client_key}\n"
    )
    shutil.copy(ssh_lab.known_hosts, home / ".ssh" / "known_hosts")
    inv = tmp_path / "inv.yaml"
    inv.write_text(
        yaml.safe_dump(
            {"cluster": "c", "hosts": [{"name": "a", "address": "10.9.9.9", "ssh_host": "lab-alias", "role": "head"}]}
        )
    )
    with api.make_executor(load_inventory(inv), api.Options()) as ex:
        group = ex.run("echo $USER@$SSH_CONNECTION")
    assert group.ok, group.failed
    assert f"{h.address} {h.port}" in group["a"].value.stdout  # type: ignore[union-attr]


@pytest.fixture
def remote_cluster() -> str:
    """A unique cluster name (each fake host keeps its state under its own HOME)."""
    return f"t{time.time_ns()}"


def test_injection_in_inventory_values_never_runs(
    ssh_lab: SshLab, home: Path, tmp_path: Path, remote_cluster: str
) -> None:
    marker = tmp_path / "pwned"
    evil = [
        f"$(touch {marker})",
        f"`touch {marker}`",
        f"; touch {marker}",
        f"x\ntouch {marker}",
        f"' ; touch {marker} ; '",
        "a\\'b",
    ]
    env = {f"V{i}": v for i, v in enumerate(evil)}
    inv = ssh_lab.inventory(
        tmp_path / "inv.yaml",
        cluster=remote_cluster,
        defaults={"user": "root", "key_file": str(ssh_lab.client_key), "env": env},
    )
    out = cli("run", "env", str(inv), "--json", "--set", f"env.EXTRA=$(touch {marker})", env={"HOME": str(home)})
    assert out.returncode == 0, out.stderr
    assert not marker.exists()
    with api.make_executor(load_inventory(inv), api.Options(limit="h0")) as ex:
        # a fresh shell without the inventory env: only the written file defines the values
        group = ex.map(
            lambda s: s.run(
                f". .ascend-deploy/{remote_cluster}/env && "
                + " && ".join(f'printf "%s\\0" "$V{i}"' for i in range(len(evil)))
                + ' && printf "%s" "$EXTRA"',
                setup=False,
            )
        )
    values = group["h0"].value.stdout.split("\0")  # type: ignore[union-attr]
    assert values == evil + [f"$(touch {marker})"]
    assert not marker.exists()


def test_check_mode_then_apply_then_converged(ssh_lab: SshLab, home: Path, tmp_path: Path, remote_cluster: str) -> None:
    inv = ssh_lab.inventory(
        tmp_path / "inv.yaml",
        cluster=remote_cluster,
        defaults={"user": "root", "key_file": str(ssh_lab.client_key), "env": {"A": "1"}},
    )
    env_file = ssh_lab.hosts[0].home / ".ascend-deploy" / remote_cluster / "env"
    check = cli("run", "env", str(inv), "--check", "--json", env={"HOME": str(home)})
    assert check.returncode == 0, check.stderr
    stage = json.loads(check.stdout)["stages"][0]
    assert {h["status"] for h in stage["hosts"].values()} == {"would-change"}
    assert "umask 077" in stage["hosts"]["h0"]["ops"][0]["command"]
    assert not env_file.exists(), "--check changed a host"
    text = cli("run", "env", str(inv), "--check", env={"HOME": str(home)})
    assert f"would run: write .ascend-deploy/{remote_cluster}/env" in text.stdout
    apply = cli("run", "env", str(inv), "--json", "--limit", "h0", env={"HOME": str(home)})
    assert apply.returncode == 0, apply.stderr
    assert json.loads(apply.stdout)["stages"][0]["hosts"]["h0"]["status"] == "changed"
    assert oct(env_file.stat().st_mode & 0o777) == "0o600"
    assert "export A=1" in env_file.read_text()
    again = cli("run", "env", str(inv), "--json", env={"HOME": str(home)})
    statuses = {name: h["status"] for name, h in json.loads(again.stdout)["stages"][0]["hosts"].items()}
    assert statuses == {"h0": "unchanged", "h1": "changed", "h2": "changed"}
    final = cli("run", "env", str(inv), "--json", env={"HOME": str(home)})
    assert {h["status"] for h in json.loads(final.stdout)["stages"][0]["hosts"].values()} == {"unchanged"}
    check2 = cli("run", "env", str(inv), "--check", "--json", env={"HOME": str(home)})
    assert all(h["ops"] == [] for h in json.loads(check2.stdout)["stages"][0]["hosts"].values())


@pytest.mark.parametrize("limit", ["h0", "h0,h1,h2"], ids=["serial", "parallel"])
def test_sigint_stops_promptly_and_says_what_was_running(
    ssh_lab: SshLab, home: Path, tmp_path: Path, limit: str
) -> None:
    import os
    import signal
    import subprocess
    import sys

    inv = ssh_lab.inventory(
        tmp_path / "inv.yaml", defaults={"user": "root", "key_file": str(ssh_lab.client_key), "setup": ["sleep 60"]}
    )
    h = ssh_lab.hosts[0]
    before = h.handshakes()
    proc = subprocess.Popen(
        [sys.executable, "-m", "toolkit", "facts", str(inv), "--limit", limit],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "HOME": str(home)},
    )
    wait_for("the setup line running on the host", lambda: h.runs("sleep 60") or proc.poll() is not None, 20)
    assert h.handshakes() > before and proc.poll() is None
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, err
    assert time.monotonic() - started < 10
    running = ", ".join(f"{name} (facts)" for name in limit.split(","))
    assert f"interrupted; was running on: {running}" in err
    assert "ascend-deploy down" in err


def test_verbose_streams_remote_output_prefixed_by_host(ssh_lab: SshLab, home: Path, tmp_path: Path) -> None:
    inv = ssh_lab.inventory(tmp_path / "inv.yaml")
    out = cli("facts", str(inv), "-v", "--limit", "h1,h2", env={"HOME": str(home)})
    assert out.returncode == 0, out.stderr
    lines = out.stderr.splitlines()
    assert any(line.startswith("[h1] ") and "MemTotal" in line for line in lines)
    assert any(line.startswith("[h2] ") and "MemTotal" in line for line in lines)


def test_local_connection_runs_on_the_control_machine(home: Path, tmp_path: Path) -> None:
    inv = tmp_path / "inv.yaml"
    marker = tmp_path / "ran-here"
    inv.write_text(
        yaml.safe_dump(
            {
                "cluster": "c",
                "hosts": [
                    {
                        "name": "me",
                        "address": "127.0.0.1",
                        "role": "head",
                        "connection": "local",
                        "env": {"WHERE": "control"},
                    }
                ],
            }
        )
    )
    with api.make_executor(load_inventory(inv), api.Options()) as ex:
        group = ex.run(f'echo "$WHERE" > {marker}; exit 3')
    assert marker.read_text() == "control\n"
    err = group["me"].error
    assert isinstance(err, CommandFailed) and err.result is not None and err.result.exit_code == 3
    out = cli("facts", str(inv), "--json", env={"HOME": str(home)})
    assert out.returncode == 0 and json.loads(out.stdout)["hosts"]["me"]["facts"]["hostname"]


def test_no_output_is_lost_when_commands_end(ssh_lab: SshLab, home: Path, tmp_path: Path) -> None:
    """The last bytes of a command may arrive together with its exit status: none may be dropped."""
    inv = load_inventory(ssh_lab.inventory(tmp_path / "inv.yaml"))

    def burst(session):  # type: ignore[no-untyped-def]
        got = []
        for i in range(25):
            res = session.run(f"head -c {1000 + i * 37} /dev/zero | tr '\\0' x; printf 'END{i}' >&2", setup=False)
            got.append((len(res.stdout), res.stderr))
        return got

    with api.make_executor(inv, api.Options()) as ex:
        group = ex.map(burst)
    for outcome in group:
        assert outcome.value == [(1000 + i * 37, f"END{i}") for i in range(25)], outcome.host


SECRET = "s3cr3t Pass-$(touch /tmp/never)'\"phrase"


@pytest.mark.parametrize("source", ["env", "file"])
def test_key_passphrase_from_env_or_file_works_and_never_shows(
    ssh_lab: SshLab, home: Path, tmp_path: Path, source: str
) -> None:
    """An encrypted key unlocked by a passphrase the inventory only names: the run works, and
    neither output, --json, -v, show-vars nor a wrong-passphrase error ever carries the value."""
    import subprocess

    key = tmp_path / "enc_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", SECRET, "-C", "enc", "-f", str(key)], check=True)
    with ssh_lab.authorized_keys.open("a") as f:
        f.write((tmp_path / "enc_key.pub").read_text())
    env = {"HOME": str(home)}
    defaults: dict[str, object] = {"user": "root", "key_file": str(key)}
    if source == "env":
        defaults["key_passphrase_env"] = "LAB_PASSPHRASE"
        env["LAB_PASSPHRASE"] = SECRET
    else:
        secret_file = tmp_path / "passphrase"
        secret_file.write_text(SECRET + "\n")
        secret_file.chmod(0o600)
        defaults["key_passphrase_file"] = str(secret_file)
    inv = ssh_lab.inventory(tmp_path / "inv.yaml", defaults=defaults)
    outputs = []
    for args in (["facts", "--json"], ["facts", "-v"], ["show-vars", "h0"], ["show-vars", "h0", "--json"]):
        out = (
            cli(args[0], str(inv), "--limit", "h0", *args[1:], env=env)
            if args[0] == "facts"
            else cli(args[0], str(inv), *args[1:], env=env)
        )
        assert out.returncode == 0, (args, out.stderr[-2000:])
        outputs.append(out.stdout + out.stderr)
    assert any(f"key_passphrase_{source}" in o for o in outputs)  # show-vars names the source...
    assert not any(SECRET in o or "s3cr3t" in o for o in outputs)  # ...never the value
    if source == "env":
        env["LAB_PASSPHRASE"] = "wrong " + SECRET
    else:
        secret_file.write_text("wrong " + SECRET)
    bad = cli("facts", str(inv), "--limit", "h0", "--json", env=env)
    assert bad.returncode == 1
    error = json.loads(bad.stdout)["hosts"]["h0"]["error"]
    assert error["kind"] == "auth" and "wrong passphrase" in error["message"], error
    assert "s3cr3t" not in bad.stdout + bad.stderr
    bare = ssh_lab.inventory(tmp_path / "bare.yaml", defaults={"user": "root", "key_file": str(key)})
    none = cli("facts", str(bare), "--limit", "h0", "--json", env={"HOME": str(home)})
    error = json.loads(none.stdout)["hosts"]["h0"]["error"]
    assert error["kind"] == "auth" and "is encrypted" in error["message"] and "key_passphrase_file" in error["hint"], (
        error
    )


def test_password_from_env_or_file_never_shows_even_when_refused(ssh_lab: SshLab, home: Path, tmp_path: Path) -> None:
    """The lab's sshd refuses passwords (as production hosts should): the failure names the host
    and the way out, and the password itself appears nowhere."""
    secret_file = tmp_path / "password"
    secret_file.write_text(SECRET)
    for settings, env in (
        ({"password_env": "LAB_PASSWORD"}, {"LAB_PASSWORD": SECRET}),
        ({"password_file": str(secret_file)}, {}),
    ):
        inv = ssh_lab.inventory(tmp_path / "inv.yaml", defaults={"user": "root", **settings})
        out = cli("facts", str(inv), "--limit", "h0", "--json", env={"HOME": str(home), **env})
        assert out.returncode == 1, out.stdout
        error = json.loads(out.stdout)["hosts"]["h0"]["error"]
        assert "authentication failed" in error["message"] and "password" in error["hint"], error
        assert "s3cr3t" not in out.stdout + out.stderr
    both = ssh_lab.inventory(
        tmp_path / "inv.yaml",
        defaults={"user": "root", "password_env": "LAB_PASSWORD", "password_file": str(secret_file)},
    )
    out = cli("facts", str(both), "--limit", "h0", "--json", env={"HOME": str(home), "LAB_PASSWORD": SECRET})
    assert "both password_env and password_file" in json.loads(out.stdout)["hosts"]["h0"]["error"]["message"]
    assert "s3cr3t" not in out.stdout + out.stderr


def test_the_server_hostkeys_notice_is_answered_at_once(
    ssh_lab: SshLab, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sshd announces its host keys right after auth and holds the reply to our first channel open
    until that packet is ACKed; our transport answers it with an SSH_MSG_IGNORE so the ACK leaves
    at once (else Linux delays it 40 ms). Fails if paramiko stops routing global requests to the hook."""
    from paramiko.common import MSG_IGNORE

    from toolkit.transport import ssh

    sent: list[int] = []
    seen: list[str] = []
    send, parse = ssh._Transport._send_message, ssh._Transport._parse_global_request

    def spy_send(self: ssh._Transport, data: object) -> None:
        sent.append(bytes(data.asbytes() if hasattr(data, "asbytes") else data)[0])  # type: ignore[union-attr]
        send(self, data)

    def spy_parse(self: ssh._Transport, m: object) -> None:
        where = m.packet.tell()  # type: ignore[attr-defined]
        seen.append(m.get_text())  # type: ignore[attr-defined]
        m.packet.seek(where)  # type: ignore[attr-defined]
        parse(self, m)

    monkeypatch.setattr(ssh._Transport, "_send_message", spy_send)
    monkeypatch.setattr(ssh._Transport, "_parse_global_request", spy_parse)
    inv = load_inventory(ssh_lab.inventory(tmp_path / "inv.yaml"))
    with api.make_executor(inv, api.Options()) as ex:
        assert ex.run("true", [inv.hosts[0]]).ok
    assert "hostkeys-00@openssh.com" in seen
    assert MSG_IGNORE in sent


def test_a_command_whose_child_keeps_stdout_open_ends_with_its_exit_status(
    ssh_lab: SshLab, home: Path, tmp_path: Path
) -> None:
    """No EOF comes while a background child holds stdout: the read loop must wake on the exit
    status itself (not at the 30 s deadline), then wait out only the short EOF grace."""
    from toolkit.transport.channel import EOF_GRACE_S

    inv = load_inventory(ssh_lab.inventory(tmp_path / "inv.yaml"))
    host = inv.hosts[0]
    with api.make_executor(inv, api.Options()) as ex:
        started = time.monotonic()
        group = ex.map(
            lambda s: s.run("(sleep 40 &); echo started; exit 3", timeout=30, check=False, setup=False), [host]
        )
        took = time.monotonic() - started
        ex.run("pkill -f 'sleep 40' || true", [host])
    result = group[host.name].value
    assert result is not None and result.exit_code == 3 and result.stdout == "started\n"
    assert took < EOF_GRACE_S + 5, f"took {took:.1f}s: the exit status did not wake the read loop"


def test_waiting_on_a_quiet_command_does_not_poll(
    ssh_lab: SshLab, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Minutes of pings on 64 hosts are 64 quiet channels: the read loop sleeps until output, the
    exit status or the deadline, instead of waking every 0.5 s (measurable CPU at that scale)."""
    import select as real_select

    from toolkit.transport import ssh

    calls: list[float | None] = []

    def counting(r: list, w: list, x: list, timeout: float | None = None) -> tuple:  # type: ignore[type-arg]
        calls.append(timeout)
        return real_select.select(r, w, x, timeout)

    monkeypatch.setattr(ssh, "select", type("Select", (), {"select": staticmethod(counting)}))
    inv = load_inventory(ssh_lab.inventory(tmp_path / "inv.yaml"))
    with api.make_executor(inv, api.Options()) as ex:
        assert ex.run("true", [inv.hosts[0]]).ok
        calls.clear()
        res = ex.map(lambda s: s.run("sleep 3; echo woke", timeout=60, setup=False), [inv.hosts[0]])
    assert res[inv.hosts[0].name].value.stdout == "woke\n"
    assert len(calls) <= 4, f"{len(calls)} wake-ups for one 3 s command: {calls}"


def test_closing_ends_the_connection_and_its_reader_thread_at_once(ssh_lab: SshLab, home: Path, tmp_path: Path) -> None:
    """paramiko's reader thread sits in recv() for up to its 5 s check interval, and a socket
    closed under it stays open until that returns; close() shuts the socket down so the thread,
    and sshd's side of the connection, end now. A command running there is cut off too."""
    import threading

    import paramiko

    inv = load_inventory(ssh_lab.inventory(tmp_path / "inv.yaml"))
    host = inv.hosts[0]
    ex = api.make_executor(inv, api.Options())
    assert ex.run("true", [host]).ok
    readers = [
        t
        for t in threading.enumerate()
        if isinstance(t, paramiko.Transport) and t is ex._conns[host.name]._conn.transport
    ]  # type: ignore[attr-defined]
    assert len(readers) == 1 and readers[0].is_alive(), "this connection's transport thread not found"
    outcome: dict[str, object] = {}
    runner = threading.Thread(
        target=lambda: outcome.update(group=ex.map(lambda s: s.run("sleep 60", setup=False), [host]))
    )
    runner.start()
    wait_for("the command on the host", lambda: bool(ex.running) and ssh_lab.hosts[0].runs("sleep 60"), 10, every=0.01)
    closed_at = time.monotonic()
    ex.close()
    runner.join(5)
    for t in readers:
        t.join(2)
    took = time.monotonic() - closed_at
    assert not runner.is_alive() and not any(t.is_alive() for t in readers)
    assert took < 2, f"the reader thread outlived close() by {took:.1f}s"
    error = outcome["group"][host.name].error  # type: ignore[index]
    assert isinstance(error, ConnectError)


def test_logs_tail_names_each_host_without_logs(
    ssh_lab: SshLab, home: Path, tmp_path: Path, remote_cluster: str
) -> None:
    """Nothing deployed yet: `logs --tail` says so per host instead of printing nothing."""
    inv = ssh_lab.inventory(tmp_path / "inv.yaml", cluster=remote_cluster)
    out = cli("logs", str(inv), "--tail", "5", env={"HOME": str(home)})
    assert out.returncode == 0, out.stderr
    for h in ssh_lab.hosts:
        line = next((ln for ln in out.stdout.splitlines() if ln.startswith(f"{h.name}: ")), "")
        assert "no vLLM or Ray log yet" in line and f"~/.ascend-deploy/{remote_cluster}/proc/*.log" in line, out.stdout
    data = json.loads(cli("logs", str(inv), "--tail", "5", "--json", env={"HOME": str(home)}).stdout)
    assert all(row["files"] == 0 and row["missing"] for row in data["hosts"].values()), data


def test_a_large_upload_survives_the_servers_key_exchanges(
    ssh_lab: SshLab, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`image load` streams gigabytes through one session channel. We leave starting a key exchange
    to the server (OpenSSH's limits; paramiko's own rekey on a busy channel can stall, issue #822):
    against an sshd that rekeys every 1 MiB, 8 MiB streamed arrive intact across several exchanges."""
    import hashlib
    import os

    from tests.sshd import Sshd
    from toolkit.transport import ssh

    kex: list[int] = []
    negotiate = ssh._Transport._negotiate_keys  # type: ignore[attr-defined]

    def counting(self: ssh._Transport, m: object) -> None:
        kex.append(1)
        negotiate(self, m)

    monkeypatch.setattr(ssh._Transport, "_negotiate_keys", counting)
    sub = tmp_path / "rekey"
    sub.mkdir()
    server = Sshd("rk", "127.0.0.14", free_port("127.0.0.14"), sub, extra=("RekeyLimit 1M",))
    server.start(ssh_lab.authorized_keys)
    try:
        known = tmp_path / "known_hosts"
        known.write_text(server.host_key_line() + "\n")
        inv_path = tmp_path / "inv.yaml"
        ssh_lab.inventory(inv_path, known_hosts=False)
        data = yaml.safe_load(inv_path.read_text())
        data["known_hosts"] = str(known)
        data["hosts"] = [{"name": "rk", "address": server.address, "port": server.port, "role": "head"}]
        inv_path.write_text(yaml.safe_dump(data))
        inv = load_inventory(inv_path)
        blocks = [os.urandom(1 << 20) for _ in range(8)]
        with api.make_executor(inv, api.Options()) as ex:
            group = ex.map(lambda s: s.run("sha256sum", stdin=iter(blocks), timeout=60, setup=False))
        result = group["rk"].value
        assert result is not None and result.stdout.split()[0] == hashlib.sha256(b"".join(blocks)).hexdigest()
        assert len(kex) >= 4, f"{len(kex)} key exchanges: the server's RekeyLimit did not apply"
        # never ours first before OpenSSH's bound (RFC 4344): the limit sits where paramiko reads it
        import inspect
        import socket

        from paramiko.packet import Packetizer

        a, b = socket.socketpair()
        try:
            transport = ssh._Transport(a)
            assert (transport.packetizer.REKEY_BYTES, transport.packetizer.REKEY_PACKETS) == (1 << 36, 1 << 31)
            transport.close()
        finally:
            a.close()
            b.close()
        sending = inspect.getsource(Packetizer.send_message)
        assert "self.REKEY_BYTES" in sending and "self.REKEY_PACKETS" in sending
    finally:
        server.stop()
