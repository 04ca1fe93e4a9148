"""The listening-ports fact against captured `ss -H -ltnp` + `ps` output."""

from __future__ import annotations

from toolkit.facts import Raw
from toolkit.facts.ports import parse_listeners

CAPTURED = """\
LISTEN 0      4096         0.0.0.0:8000       0.0.0.0:*    users:(("python3",pid=157,fd=18))
LISTEN 0      128          0.0.0.0:22         0.0.0.0:*    users:(("sshd",pid=41,fd=3))
LISTEN 0      5            10.213.1.12:13345  0.0.0.0:*    users:(("python3",pid=4242,fd=3),("python3",pid=4243,fd=3))
LISTEN 0      128             [::]:6379          [::]:*
--- procs
    157 /opt/hostenv/bin/python3 /opt/hostenv/bin/vllm serve /m --port 8000
     41 sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups
   4242 python3 -m http.server 13345
"""


def test_each_listener_has_its_port_and_holder() -> None:
    found = {(x.port, x.pid): x for x in parse_listeners(Raw(CAPTURED, 0)) or []}
    assert set(found) == {(8000, 157), (22, 41), (13345, 4242), (6379, None)}
    assert found[8000, 157].command.endswith("vllm serve /m --port 8000")
    assert found[13345, 4242].address == "10.213.1.12" and "http.server" in found[13345, 4242].command
    assert found[6379, None].address == "::" and found[6379, None].command == ""


def test_a_host_without_ss_is_unknown_not_clean() -> None:
    assert parse_listeners(Raw("no-ss\n", 0)) is None
    assert parse_listeners(Raw("--- procs\n", 0)) == []
