"""A guard for tests: any network connection to an address that is not loopback raises.

`install()` adds a Python audit hook on `socket.connect`: connecting to an IP that is not loopback
(127.0.0.0/8, ::1), or to a host name, raises ConnectionRefusedError naming the address, in this
process. Subprocesses get the same guard through `tests/loopback_only/sitecustomize.py` on their
PYTHONPATH. Unix sockets and loopback pass. An audit hook cannot be removed: installed, it stays
for the life of the process.
"""

from __future__ import annotations

import ipaddress
import socket
import sys

_installed = False


def _check(event: str, args: tuple) -> None:
    if event != "socket.connect":
        return
    sock, address = args[0], args[1]
    if getattr(sock, "family", None) not in (socket.AF_INET, socket.AF_INET6) or not isinstance(address, tuple):
        return
    host = str(address[0])
    try:
        loopback = ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ConnectionRefusedError(f"emokd tests reach loopback only; refused a connection to {address}")


def install() -> None:
    global _installed
    if not _installed:
        sys.addaudithook(_check)
        _installed = True
