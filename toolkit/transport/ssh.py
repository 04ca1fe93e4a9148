"""SSH to the hosts: fabric (paramiko) with our host-key policy, ~/.ssh/config honoured, a
faster cipher choice, and our own channel read loop (`channel.py`: interruptible, no helper threads)."""

from __future__ import annotations

import select
import socket
import threading
import time
from pathlib import Path
from typing import Any, Callable

import paramiko
from fabric import Config
from fabric import Connection as FabricConnection
from paramiko.common import cMSG_IGNORE

from toolkit.config.inventory import ResolvedHost
from toolkit.config.secrets import SecretUnavailable, Source, read_secret
from toolkit.errors import AuthError, ConnectError, HostError
from toolkit.transport.channel import Deadline, ExitWakeup, read_channel
from toolkit.transport.connection import TIMEOUT_GRACE, OutputCallback, Stdin, timed_out
from toolkit.transport.hostkeys import USER_KNOWN_HOSTS, VerifyingPolicy, changed_key_error, known_keys
from toolkit.transport.result import Result
from toolkit.transport.shell import bash


class _Transport(paramiko.Transport):
    """paramiko's transport tuned for many hosts: AES-GCM preferred (an AEAD cipher needs no
    per-packet MAC check in Python, where paramiko compares HMACs byte by byte; servers without
    GCM get the usual ciphers), and a calmer reader thread."""

    #: paramiko wakes its reader thread this often to check for shutdown (its default, 0.1 s,
    #: costs measurable CPU with 64 idle connections during minutes of pings). `close` shuts the
    #: socket down, which ends the reader at once, so this only bounds paramiko's own banner wait.
    _active_check_timeout = 5.0

    _preferred_ciphers = (
        "aes128-gcm@openssh.com",
        "aes256-gcm@openssh.com",
        *(c for c in paramiko.Transport._preferred_ciphers if "gcm" not in c),  # type: ignore[attr-defined]
    )

    #: bytes (and packets) after which this side asks for new keys: RFC 4344's bound for a 128-bit
    #: block cipher (2**32 blocks, 2**31 packets), the limit OpenSSH itself uses. paramiko's own
    #: default (512 MiB) starts a key exchange in the middle of an `image load`, and paramiko's
    #: client-initiated rekey on a busy session channel can stall past its 30 s wait ("Key-exchange
    #: timed out waiting for key negotiation", paramiko issue #822); a rekey the server starts is fine.
    REKEY_BYTES = 1 << 36
    REKEY_PACKETS = 1 << 31

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.packetizer.REKEY_BYTES = self.REKEY_BYTES
        self.packetizer.REKEY_PACKETS = self.REKEY_PACKETS

    def close(self) -> None:
        """Shut the socket down first: the reader thread, blocked in recv, sees EOF and ends now,
        and sshd sees the connection end now (a socket closed while another thread reads from it
        stays open until that read returns)."""
        shutdown = getattr(self.sock, "shutdown", None)  # a ProxyCommand has none
        if shutdown is not None and self.is_active():
            try:
                shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        super().close()

    def _parse_global_request(self, m: paramiko.Message) -> None:
        """Answer a server's no-reply global request with an SSH_MSG_IGNORE, so that its TCP
        ACK leaves at once. OpenSSH's sshd sends one (`hostkeys-00@openssh.com`) right after
        auth and, Nagle being on for non-interactive sessions, holds its reply to our first
        channel open until that packet is ACKed; Linux delays a bare ACK by 40 ms
        (docs/timing-history.md)."""
        super()._parse_global_request(m)  # type: ignore[misc]  # paramiko's private handler
        if not self.server_mode and self.is_active():
            ignore = paramiko.Message()
            ignore.add_byte(cMSG_IGNORE)
            ignore.add_string(b"")
            self._send_message(ignore)  # type: ignore[attr-defined]  # as paramiko sends its own replies (send_ignore would wait out a key exchange)


def _dial(host: str, port: int, timeout: float) -> socket.socket:
    """The TCP connection, with Nagle off as OpenSSH does. paramiko leaves Nagle on, and each
    of its small request packets then waits for the server's delayed ACK: about 40 ms per
    command round trip and per key-exchange step (docs/timing-history.md)."""
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    dead_peer_bound(sock)
    return sock


#: how long a host may stay silent at the TCP level (no ACK of our data or of a keepalive probe)
#: before its connection counts as lost: a pulled cable or a dead switch port otherwise leaves a
#: command waiting for its whole timeout (a `weights sync` session: hours), since nothing is refused
DEAD_PEER_S = 20
KEEPALIVE = (("TCP_KEEPIDLE", 5), ("TCP_KEEPINTVL", 3), ("TCP_KEEPCNT", 5))


def dead_peer_bound(sock: socket.socket) -> None:
    """TCP keepalive probes while the connection is idle, and TCP_USER_TIMEOUT for data and probes
    not acknowledged: a peer whose kernel stops answering is a lost connection after DEAD_PEER_S.
    A live host, however loaded, acknowledges from its kernel; the options are Linux's (skipped
    where the platform lacks them)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in KEEPALIVE:
        if hasattr(socket, name):
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)
    if hasattr(socket, "TCP_USER_TIMEOUT"):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, DEAD_PEER_S * 1000)


class SSHConnection:
    """fabric Connection with verified host keys, explicit auth settings and typed errors."""

    def __init__(
        self,
        host: ResolvedHost,
        *,
        known_hosts: Path | None = None,
        accept_new_host_keys: bool = False,
        ssh_config_path: str | None = None,
    ) -> None:
        self.name = host.name
        self.host = host
        self.known_hosts_files = [USER_KNOWN_HOSTS.expanduser()]
        if known_hosts is not None:
            self.known_hosts_files.append(known_hosts)
        self.record_to = known_hosts or USER_KNOWN_HOSTS.expanduser()
        self.accept_new = accept_new_host_keys
        self.ssh_config_path = ssh_config_path
        self._conn: FabricConnection | None = None
        self._open_lock = threading.Lock()  # two stages' threads (or a background query) may open at once

    def _connect_kwargs(self) -> dict[str, object]:
        kwargs: dict[str, object] = {
            "banner_timeout": self.host.connect_timeout,
            "auth_timeout": self.host.connect_timeout,
            "transport_factory": _Transport,
        }
        if self.host.key_file:
            key = Path(self.host.key_file).expanduser()
            if not key.is_file():
                raise AuthError(
                    self.name, f"key file {key} not found", hint="fix key_file in the inventory or create the key"
                )
            kwargs.update(key_filename=str(key), look_for_keys=False, allow_agent=False)
        passphrase = self._secret("key_passphrase", self.host.key_passphrase_env, self.host.key_passphrase_file)
        if passphrase is not None:
            kwargs["passphrase"] = passphrase
        password = self._secret("password", self.host.password_env, self.host.password_file)
        if password is not None:
            kwargs["password"] = password
        return kwargs

    def _secret(self, what: str, var: str | None, file: str | None) -> str | None:
        """A password or passphrase from the local variable or file the host's settings name."""
        source = Source(what, var, Path(file).expanduser() if file else None, strip_spaces=False, empty_env_ok=True)
        try:
            return read_secret(source)
        except SecretUnavailable as exc:
            raise AuthError(self.name, exc.message, hint=exc.hint) from None

    def open(self) -> None:
        with self._open_lock:
            if self._conn is not None and self._conn.is_connected:
                return
            self._open()

    def _open(self) -> None:
        overrides: dict[str, object] = {"load_ssh_configs": True}
        if self.ssh_config_path:
            overrides["ssh_config_path"] = self.ssh_config_path
        config = Config(overrides=overrides)
        conn = FabricConnection(
            self.host.connect_to,
            user=self.host.user,
            port=self.host.port,
            config=config,
            connect_timeout=max(1, int(self.host.connect_timeout)),
            connect_kwargs=self._connect_kwargs(),
        )
        client = conn.client
        try:
            name, keys = known_keys(self.known_hosts_files, conn.host, conn.port)
        except (OSError, paramiko.SSHException) as exc:
            raise ConnectError(
                self.name, f"cannot read known_hosts ({', '.join(map(str, self.known_hosts_files))}): {exc}"
            ) from None
        for kind, key in keys.items():
            client.get_host_keys().add(name, kind, key)
        client.set_missing_host_key_policy(
            VerifyingPolicy(self.name, accept_new=self.accept_new, record_to=self.record_to)
        )
        where = f"{conn.user}@{conn.host}:{conn.port}"
        try:
            if conn.gateway is None:  # a ProxyJump/ProxyCommand from ~/.ssh/config brings its own channel
                conn.connect_kwargs["sock"] = _dial(conn.host, conn.port, self.host.connect_timeout)
            conn.open()
        except HostError:
            raise
        except paramiko.BadHostKeyException as exc:
            raise changed_key_error(self.name, exc, self.known_hosts_files) from None
        except paramiko.PasswordRequiredException:
            raise AuthError(
                self.name,
                f"key_file {self.host.key_file} is encrypted and no passphrase was given",
                hint="set key_passphrase_env or key_passphrase_file in the inventory (or use ssh-agent)",
            ) from None
        except paramiko.AuthenticationException as exc:
            raise AuthError(
                self.name,
                f"authentication failed for {where}: {exc}",
                hint="check user and key_file (or password_env/password_file) in the inventory and the host's "
                "authorized_keys",
            ) from None
        except ConnectionRefusedError:
            raise ConnectError(
                self.name, f"cannot connect to {where}: Connection refused", hint="is sshd running and the port open?"
            ) from None
        except paramiko.ssh_exception.NoValidConnectionsError as exc:
            reasons = {getattr(e, "strerror", None) or str(e) for e in exc.errors.values()}
            reason = "; ".join(sorted(reasons)) or "refused"
            raise ConnectError(
                self.name, f"cannot connect to {where}: {reason}", hint="is sshd running and the port open?"
            ) from None
        except (socket.timeout, TimeoutError):
            raise ConnectError(
                self.name,
                f"connection to {where} timed out after {self.host.connect_timeout:g}s",
                hint="host down or firewalled?",
            ) from None
        except socket.gaierror as exc:
            raise ConnectError(self.name, f"cannot resolve {conn.host}: {exc.strerror}") from None
        except (paramiko.SSHException, OSError, EOFError) as exc:
            if (
                isinstance(exc, paramiko.SSHException)
                and (self.host.key_passphrase_env or self.host.key_passphrase_file)
                and str(exc).startswith("Invalid key")
            ):
                # paramiko's word for a key that did not decrypt: a wrong passphrase, not a network fault
                raise AuthError(
                    self.name,
                    f"cannot unlock key_file {self.host.key_file}: wrong passphrase?",
                    hint="check the passphrase in the variable or file that key_passphrase_env/_file names",
                ) from None
            raise ConnectError(self.name, f"SSH to {where} failed: {exc or type(exc).__name__}") from None
        self._conn = conn

    def run(
        self,
        script: str,
        *,
        timeout: float | None = None,
        on_output: OutputCallback | None = None,
        stdin: Stdin = None,
    ) -> Result:
        """Run on a new channel of the one transport. Our own read loop (not invoke's runner):
        interruptible by Ctrl-C and by `close()` from another thread, no helper threads."""
        self.open()
        assert self._conn is not None and self._conn.transport is not None
        started = time.monotonic()
        deadline = started + timeout + TIMEOUT_GRACE if timeout else None
        exited = ExitWakeup()
        try:
            chan = self._conn.transport.open_session(timeout=self.host.connect_timeout)
            chan.status_event = exited  # before exec: no exit status can have arrived yet
            chan.exec_command(bash(script, timeout=timeout))
            # memoryviews: paramiko's sendall re-slices what is left after every 32 KiB packet, which
            # copies a bytes chunk over and over (a 4 MiB chunk: 256 MiB of copying); a view's slices copy nothing
            if isinstance(stdin, str):
                if stdin:
                    chan.sendall(memoryview(stdin.encode()))
            elif stdin is not None:
                for chunk in stdin:  # streamed: the channel's window paces us to the host's reader
                    chan.sendall(memoryview(chunk))
            chan.shutdown_write()
            out, err = read_channel(chan, deadline, on_output, exited)
            code = chan.recv_exit_status() if chan.exit_status_ready() else -1
            chan.close()
        except Deadline as exc:
            self.close()  # the channel is in an unknown state; reconnect next time
            raise timed_out(self.name, timeout, script, started, exc.out, exc.err) from None
        except (paramiko.SSHException, OSError, EOFError) as exc:
            self.close()
            raise ConnectError(
                self.name, f"connection lost while running a command: {exc or type(exc).__name__}"
            ) from None
        finally:
            exited.close()
        if timeout is not None and code in (124, 137) and time.monotonic() - started >= timeout:
            raise timed_out(self.name, timeout, script, started, out, err)
        if code == -1:
            self.close()
            raise ConnectError(self.name, "connection lost while running a command (no exit status)")
        return Result(self.name, script, code, out, err, time.monotonic() - started)

    def hold(self, script: str, *, until: str, timeout: float) -> tuple[Result, Callable[[], None] | None]:
        """Start `script` and return when it prints the line `until` (it then runs on, holding
        something, until the returned release closes its stdin) or when it exits (release None).
        The channel belongs to this process: if we die, sshd closes it and the script ends."""
        self.open()
        assert self._conn is not None and self._conn.transport is not None
        started = time.monotonic()
        try:
            chan = self._conn.transport.open_session(timeout=self.host.connect_timeout)
            chan.exec_command(bash(script))
            out = b""
            while True:
                while chan.recv_ready():
                    out += chan.recv(65536)
                text = out.decode(errors="replace")
                if until in text.splitlines():
                    break
                if chan.exit_status_ready() and not chan.recv_ready():
                    rest, err_text = read_channel(chan, time.monotonic() + 10, None)
                    code = chan.recv_exit_status()
                    chan.close()
                    return Result(self.name, script, code, text + rest, err_text, time.monotonic() - started), None
                if time.monotonic() - started > timeout:
                    chan.close()
                    raise timed_out(self.name, timeout, script, started, text)
                select.select([chan], [], [], 0.2)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise ConnectError(self.name, f"connection lost while taking a lock: {exc or type(exc).__name__}") from None

        def release() -> None:
            try:
                chan.shutdown_write()  # the script's `read` sees EOF and ends
                until_t = time.monotonic() + 5
                while not chan.exit_status_ready() and time.monotonic() < until_t:
                    select.select([chan], [], [], 0.1)
                    while chan.recv_ready():
                        chan.recv(65536)
            except (paramiko.SSHException, OSError, EOFError):
                pass
            finally:
                chan.close()

        return Result(self.name, script, 0, text, "", time.monotonic() - started), release

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # closing a broken transport must never mask the real error
                pass
            self._conn = None
