"""The address policy of client-named URLs: only public addresses, however they are written."""

from __future__ import annotations

import pytest

from megacity.safety.ssrf import AddressPolicy, refusal

REFUSED = {
    "127.0.0.1": "loopback",
    "127.255.0.9": "loopback",
    "::1": "loopback",
    "0.0.0.0": "unspecified",
    "::": "unspecified",
    "10.1.2.3": "private",
    "172.16.0.1": "private",
    "192.168.1.20": "private",
    "fc00::1": "private",
    "169.254.169.254": "link-local",  # cloud metadata
    "fe80::1": "link-local",
    "224.0.0.1": "multicast",
    "ff02::1": "multicast",
    "100.64.0.1": "not globally routable",  # carrier-grade NAT
    "192.0.2.10": "private",  # documentation
    "240.0.0.1": "private",  # reserved (Python counts it private)
    "::ffff:127.0.0.1": "loopback (inside an IPv6 address)",
    "::ffff:169.254.169.254": "link-local (inside an IPv6 address)",
    "::ffff:10.0.0.1": "private (inside an IPv6 address)",
    "2002:7f00:1::1": "loopback (inside an IPv6 address)",  # 6to4 of 127.0.0.1
    "64:ff9b::a00:1": "private (inside an IPv6 address)",  # NAT64 of 10.0.0.1
}
ALLOWED = ["8.8.8.8", "1.1.1.1", "203.0.114.7", "2606:4700:4700::1111", "::ffff:8.8.8.8"]


@pytest.mark.parametrize(("address", "reason"), sorted(REFUSED.items()))
def test_non_public_addresses_are_refused(address: str, reason: str) -> None:
    assert AddressPolicy().check(address) == reason


@pytest.mark.parametrize("address", ALLOWED)
def test_public_addresses_pass(address: str) -> None:
    assert AddressPolicy().check(address) is None


def test_zone_ids_and_garbage() -> None:
    policy = AddressPolicy()
    assert policy.check("fe80::1%eth0") == "link-local"
    assert policy.check("not-an-ip") == "not an IP address"
    assert policy.check("2130706433") == "not an IP address"  # decimal forms are names, not IPs


def test_allow_list_exempts_only_its_networks() -> None:
    policy = AddressPolicy(["127.0.0.1/32", "10.9.0.0/16"])
    assert policy.check("127.0.0.1") is None
    assert policy.check("10.9.4.4") is None
    assert policy.check("127.0.0.2") == "loopback"
    assert policy.check("10.8.0.1") == "private"
    assert policy.check("::1") == "loopback"  # an IPv4 network never covers IPv6


def test_refusal_reads_embedded_addresses_of_teredo() -> None:
    # Teredo 2001:0::/32 carries the client's IPv4 address, inverted, in the last 32 bits.
    import ipaddress

    teredo = ipaddress.IPv6Address("2001:0:4136:e378:8000:63bf:f5ff:fffe")  # client 10.0.0.1
    assert refusal(teredo) == "private (inside an IPv6 address)"
