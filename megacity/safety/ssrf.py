"""Which addresses the router may fetch from on a client's behalf (image and video URLs).

A client that names a URL must never make the router reach inside its own network: the
cloud metadata service (169.254.169.254), the engine nodes, Redis, PostgreSQL, a local
admin port. Only globally routable unicast addresses pass; IPv4 addresses hidden in
IPv6 (IPv4-mapped ``::ffff:a.b.c.d``, 6to4, Teredo, NAT64 ``64:ff9b::/96``) are judged as
the IPv4 address they carry. The check runs on every address a name resolves to, and
the connection then goes to exactly those checked addresses (engines/fetch.py), so a
name that resolves differently a moment later (DNS rebinding) gains nothing.

`allow` exempts networks from the refusal. It exists for tests and for operators with
a trusted internal image host; it is empty by default and only settings can fill it
(``MEGACITY_MEDIA_FETCH_ALLOW_NETWORKS``), never a request.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, 6to4, Teredo, NAT64), if any."""
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]  # the client's address
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def refusal(ip: IPAddress) -> str | None:
    """Why `ip` may not be fetched from ("loopback", "private" …), or None for a public one."""
    inner = embedded_ipv4(ip)
    if inner is not None:
        reason = refusal(inner)
        return f"{reason} (inside an IPv6 address)" if reason else None
    checks = (
        (ip.is_unspecified, "unspecified"),
        (ip.is_loopback, "loopback"),
        (ip.is_link_local, "link-local"),
        (ip.is_multicast, "multicast"),
        (ip.is_private, "private"),
        (ip.is_reserved, "reserved"),
    )
    for failed, reason in checks:
        if failed:
            return reason
    if not ip.is_global:  # shared address space (100.64/10), documentation ranges …
        return "not globally routable"
    return None


class AddressPolicy:
    """Refuses every non-public address except those in the configured `allow` networks."""

    def __init__(self, allow: Iterable[str] = ()) -> None:
        self.allow = tuple(ipaddress.ip_network(n, strict=False) for n in allow)

    def check(self, address: str) -> str | None:
        """None when the router may connect to `address` (an IP literal); else the reason."""
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
        except ValueError:
            return "not an IP address"
        if any(ip.version == net.version and ip in net for net in self.allow):
            return None
        return refusal(ip)


__all__ = ["AddressPolicy", "IPAddress", "embedded_ipv4", "refusal"]
