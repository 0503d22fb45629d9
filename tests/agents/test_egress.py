"""The egress rule for server-side tools: the allowlist, then the addresses a host resolves to."""

from __future__ import annotations

from pathlib import Path

import pytest

from openfoundry.agents.egress import Egress, Resolve, check_url, is_public, parse_entry
from openfoundry.config import ConfigError, load_settings
from openfoundry.errors import InvalidRequest


def resolver(table: dict[str, list[str]]) -> Resolve:
    """A resolver answering from `table`; a name it lacks does not resolve."""

    async def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise OSError(f"no such host {host}")
        return table[host]

    return resolve


NAMES = resolver(
    {
        "api.example.com": ["93.184.215.14"],
        "internal.example.com": ["10.1.2.3"],
        "sneaky.example.com": ["93.184.215.14", "127.0.0.1"],
        "metadata.example.com": ["169.254.169.254"],
        "v6.example.com": ["2606:4700::6810:84e5"],
        "mapped.example.com": ["::ffff:192.168.1.1"],
        "localhost": ["127.0.0.1", "::1"],
    }
)


async def refused(url: str, allowlist: list[str]) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        await check_url(url, allowlist, NAMES)
    assert caught.value.status == 400
    assert caught.value.code == "tool_host_not_allowed"
    assert "agents.tool_hosts_allowlist" in caught.value.message
    return caught.value


async def test_an_empty_allowlist_refuses_every_host() -> None:
    error = await refused("https://api.example.com/mcp", [])
    assert "api.example.com:443" in error.message


async def test_a_host_not_listed_is_refused_before_any_lookup() -> None:
    await refused("https://unknown.example.org/", ["api.example.com"])


async def test_a_listed_public_host_passes_and_gives_the_address_to_connect_to() -> None:
    destination = await check_url("https://api.example.com/v1/x", ["api.example.com"], NAMES)
    assert (destination.scheme, destination.host, destination.port) == ("https", "api.example.com", 443)
    assert destination.address == "93.184.215.14"


async def test_host_port_entries_allow_only_that_port() -> None:
    allowlist = ["api.example.com:8443"]
    assert (await check_url("https://api.example.com:8443/", allowlist, NAMES)).port == 8443
    await refused("https://api.example.com/", allowlist)
    await refused("http://api.example.com:8080/", allowlist)


async def test_a_star_allows_public_hosts_but_never_private_ones() -> None:
    assert (await check_url("http://api.example.com/", ["*"], NAMES)).address == "93.184.215.14"
    assert (await check_url("http://v6.example.com/", ["*"], NAMES)).address == "2606:4700::6810:84e5"
    for url in (
        "http://127.0.0.1:8080/",
        "http://localhost/",
        "http://10.0.0.5/",
        "http://192.168.1.20/",
        "http://172.16.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[fe80::1]/",
        "http://[fd00::1]/",
        "http://0.0.0.0/",
        "http://100.64.0.1/",
        "http://224.0.0.1/",
    ):
        error = await refused(url, ["*"])
        assert "private, loopback or link-local" in error.message, url


async def test_a_public_name_resolving_to_a_private_address_is_refused() -> None:
    for host in ("internal.example.com", "metadata.example.com", "mapped.example.com"):
        await refused(f"https://{host}/", ["*", "*.example.com"])


async def test_one_private_address_among_public_ones_is_enough_to_refuse() -> None:
    await refused("https://sneaky.example.com/", ["*"])


async def test_subdomain_wildcards_match_subdomains_only() -> None:
    assert (await check_url("https://api.example.com/", ["*.example.com"], NAMES)).host == "api.example.com"
    await refused("https://example.com/", ["*.example.com"])
    await refused("https://api.example.com.evil.org/", ["*.example.com"])


async def test_private_hosts_pass_when_listed_exactly() -> None:
    assert (await check_url("http://127.0.0.1:9000/mcp", ["127.0.0.1:9000"], NAMES)).address == "127.0.0.1"
    assert (await check_url("http://localhost:9000/", ["localhost"], NAMES)).address == "127.0.0.1"
    assert (await check_url("https://internal.example.com/", ["internal.example.com"], NAMES)).address == "10.1.2.3"
    assert (await check_url("http://[::1]:9000/", ["[::1]:9000"], NAMES)).address == "::1"
    await refused("http://127.0.0.1:9001/mcp", ["127.0.0.1:9000"])


async def test_an_ipv4_mapped_address_is_not_its_ipv4_entry() -> None:
    await refused("http://[::ffff:127.0.0.1]:9000/", ["127.0.0.1:9000"])


async def test_only_http_and_https_urls_are_accepted() -> None:
    for url in ("file:///etc/passwd", "gopher://api.example.com/", "ftp://api.example.com/", "api.example.com"):
        with pytest.raises(InvalidRequest) as caught:
            await check_url(url, ["*"], NAMES)
        assert caught.value.code == "invalid_url", url


async def test_a_name_that_does_not_resolve_is_a_clear_400() -> None:
    with pytest.raises(InvalidRequest) as caught:
        await check_url("https://nowhere.example.com/", ["*"], NAMES)
    assert caught.value.code == "tool_host_unresolvable"


async def test_the_system_resolver_is_used_by_default() -> None:
    assert (await Egress(["localhost"]).check("http://localhost:1/")).address in ("127.0.0.1", "::1")
    for url in ("http://localhost:1/", "http://2130706433/", "http://0x7f.1/", "http://127.1/"):
        with pytest.raises(InvalidRequest) as caught:
            await Egress(["*"]).check(url)
        assert caught.value.code == "tool_host_not_allowed", url


def test_embedded_ipv4_addresses_are_judged_too() -> None:
    assert is_public("8.8.8.8")
    assert is_public("64:ff9b::808:808")  # NAT64 of 8.8.8.8
    assert not is_public("64:ff9b::7f00:1")  # NAT64 of 127.0.0.1
    assert not is_public("2002:7f00:1::")  # 6to4 of 127.0.0.1
    assert not is_public("::ffff:10.0.0.1")
    assert not is_public("fe80::1%eth0")
    assert not is_public("fec0::1")


def test_allowlist_entries_are_parsed_or_refused() -> None:
    assert parse_entry("API.example.com:443") == ("api.example.com", 443)
    assert parse_entry("[::1]:8080") == ("::1", 8080)
    assert parse_entry("::1") == ("::1", None)
    assert parse_entry("*.example.com") == ("*.example.com", None)
    for bad in ("example.com:http", "example.com:70000", "http://example.com", "a*.example.com", ""):
        with pytest.raises(ValueError):
            parse_entry(bad)


def test_a_bad_allowlist_entry_stops_the_configuration(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("agents: {tool_hosts_allowlist: ['api.example.com:99999']}\n")
    with pytest.raises(ConfigError, match=r"agents.tool_hosts_allowlist: .*port must be a number"):
        load_settings(config, env={})
    config.write_text("agents: {tool_hosts_allowlist: ['*.example.com', '[::1]:8080', '127.0.0.1:9000']}\n")
    assert load_settings(config, env={}).agents.tool_hosts_allowlist[1] == "[::1]:8080"
