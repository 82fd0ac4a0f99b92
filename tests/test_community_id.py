"""Community ID v1 against the published vectors.

Sources of the expected values (none computed by this project):

* ``SPEC_TABLE`` - the "Sample results" tables of the spec's baseline/README.md
  (https://github.com/corelight/community-id-spec, commit c4ec2bc), default seed and seed=1.
* ``SPEC_PCAP`` - the spec's baseline/baseline_deflt.json and baseline_seed1.json, produced by the
  reference ``community-id-pcap`` tool over the spec's combined.pcap.
* ``ZEEK_BIF`` - Zeek's own btest for the ``community_id_v1`` BiF, which passes ``conn_id`` values
  (ICMP ``resp_p`` = counterpart type, not code).
* the Zeek corpus: every ``community_id`` column in a corpus conn.log, read through the oracle.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pcapsleuth.community_id import ICMP4_COUNTERPARTS, ICMP6_COUNTERPARTS, community_id

sys.path.insert(0, str(Path(__file__).resolve().parent))
from zeek_oracle import corpus_community_ids  # noqa: E402

V6A = "fe80:0001:0203:0405:0607:0809:0A0B:0C0D"
V6B = "fe80:1011:1213:1415:1617:1819:1A1B:1C1D"

# (proto, src, dst, sport, dport, seed, expected)
SPEC_TABLE = [
    (6, "1.2.3.4", "5.6.7.8", 1122, 3344, 0, "1:wCb3OG7yAFWelaUydu0D+125CLM="),
    (6, "5.6.7.8", "1.2.3.4", 3344, 1122, 0, "1:wCb3OG7yAFWelaUydu0D+125CLM="),
    (17, "1.2.3.4", "5.6.7.8", 1122, 3344, 0, "1:0Mu9InQx6z4ZiCZM/7HXi2WMhOg="),
    (17, "5.6.7.8", "1.2.3.4", 3344, 1122, 0, "1:0Mu9InQx6z4ZiCZM/7HXi2WMhOg="),
    (132, "1.2.3.4", "5.6.7.8", 1122, 3344, 0, "1:EKt4MsxuyaE6mL+hmrEkQ9csDD8="),
    (132, "5.6.7.8", "1.2.3.4", 3344, 1122, 0, "1:EKt4MsxuyaE6mL+hmrEkQ9csDD8="),
    (1, "1.2.3.4", "5.6.7.8", 8, 0, 0, "1:crodRHL2FEsHjbv3UkRrfbs4bZ0="),
    (1, "5.6.7.8", "1.2.3.4", 0, 0, 0, "1:crodRHL2FEsHjbv3UkRrfbs4bZ0="),
    (1, "1.2.3.4", "5.6.7.8", 11, 0, 0, "1:f/YiSyWqczrTgfUCZlBUnvHRcPk="),
    (58, V6A, V6B, 128, 0, 0, "1:0bf7hyMJUwt3fMED7z8LIfRpBeo="),
    (58, V6B, V6A, 129, 0, 0, "1:0bf7hyMJUwt3fMED7z8LIfRpBeo="),
    (58, V6A, V6B, 146, 0, 0, "1:fYC8+pz24E+EhANP1EZhpX0Dw10="),
    (46, "1.2.3.4", "5.6.7.8", None, None, 0, "1:ikv3kmf89luf73WPz1jOs49S768="),
    (46, "5.6.7.8", "1.2.3.4", None, None, 0, "1:ikv3kmf89luf73WPz1jOs49S768="),
    (46, V6A, V6B, None, None, 0, "1:wQ/2mwrnXP4lmJcHdGL5ePjR+e0="),
    (46, V6B, V6A, None, None, 0, "1:wQ/2mwrnXP4lmJcHdGL5ePjR+e0="),
    (6, "1.2.3.4", "5.6.7.8", 1122, 3344, 1, "1:HhA1B+6CoLbiKPEs5nhNYN4XWfk="),
    (6, "5.6.7.8", "1.2.3.4", 3344, 1122, 1, "1:HhA1B+6CoLbiKPEs5nhNYN4XWfk="),
    (17, "1.2.3.4", "5.6.7.8", 1122, 3344, 1, "1:OShq+iKDAMVouh/4bMxB9Sz4amw="),
    (132, "1.2.3.4", "5.6.7.8", 1122, 3344, 1, "1:uitchpn5MMGAQKBJh7bIr/bAr7s="),
    (1, "1.2.3.4", "5.6.7.8", 8, 0, 1, "1:9pr4ZGTICiuZoIh90RRYE2RyXpU="),
    (1, "5.6.7.8", "1.2.3.4", 0, 0, 1, "1:9pr4ZGTICiuZoIh90RRYE2RyXpU="),
    (1, "1.2.3.4", "5.6.7.8", 11, 0, 1, "1:1DD7cWGC/Yg91YGsQeni8du3pIA="),
    (58, V6A, V6B, 128, 0, 1, "1:IO27GQzPuCtNnwFvjWALMHu5tJE="),
    (58, V6B, V6A, 129, 0, 1, "1:IO27GQzPuCtNnwFvjWALMHu5tJE="),
    (58, V6A, V6B, 146, 0, 1, "1:Cv4IKJe56BNkF0MBW2YxQ3Nwc3s="),
    (46, "1.2.3.4", "5.6.7.8", None, None, 1, "1:/buhqeOmaRCopOZFy9HnoJd5XW8="),
    (46, V6A, V6B, None, None, 1, "1:j6EyyfBzL4vWKHFXgUqb5Az3OxM="),
]

_LL_A, _LL_B = "fe80::200:86ff:fe05:80da", "fe80::260:97ff:fe07:69ea"
_V6_TCP_A, _V6_TCP_B = "2001:470:e5bf:dead:4957:2174:e82c:4887", "2607:f8b0:400c:c03::1a"

# (proto, src, dst, sport, dport, seed0, seed1) from the reference tool over real packets.
SPEC_PCAP = [
    (58, _LL_A, _LL_B, 135, 136, "1:dGHyGvjMfljg6Bppwm3bg0LO8TY=", "1:kHa1FhMYIT6Ym2Vm2AOtoOARDzY="),
    (58, _LL_B, _LL_A, 136, 135, "1:dGHyGvjMfljg6Bppwm3bg0LO8TY=", "1:kHa1FhMYIT6Ym2Vm2AOtoOARDzY="),
    (58, _LL_B, _LL_A, 135, 136, "1:zavyT/cezQr1fmImYCwYnMXbgck=", "1:2hSqmsDZ2kdcY9kbiUzOEBic0iM="),
    (58, _LL_A, _LL_B, 136, 135, "1:zavyT/cezQr1fmImYCwYnMXbgck=", "1:2hSqmsDZ2kdcY9kbiUzOEBic0iM="),
    (58, "3ffe:501:1800:2345::2", "3ffe:507:0:1:200:86ff:fe05:80da", 3, 0,
     "1:2ObVBgIn28oZvibYZhZMBgh7WdQ=", "1:lVEtCZpYu84Xqaa++3lXFyuu2n4="),
    (58, "3ffe:501:410:0:2c0:dfff:fe47:33e", "3ffe:507:0:1:200:86ff:fe05:80da", 1, 4,
     "1:hLZd0XGWojozrvxqE0dWB1iM6R0=", "1:W8MHwXpWzpoSTD+cGcaJr4u0ys8="),
    (58, "3ffe:507:0:1:200:86ff:fe05:80da", "3ffe:501:0:1001::2", 128, 129,
     "1:+TW+HtLHvV1xnGhV1lv7XoJrqQg=", "1:GfZxjAkDk2MkegpBYHV6tadtFXQ="),
    (58, "3ffe:501:0:1001::2", "3ffe:507:0:1:200:86ff:fe05:80da", 129, 128,
     "1:+TW+HtLHvV1xnGhV1lv7XoJrqQg=", "1:GfZxjAkDk2MkegpBYHV6tadtFXQ="),
    (58, _LL_A, "ff02::2", 133, 134, "1:hO+sN4H+MG5MY/8hIrXPqc4ZQz0=", "1:L7Ka0ZMYu+J3bL4ulW2PrqyXNo8="),
    (58, _LL_B, "ff02::1", 134, 133, "1:pkvHqCL88/tg1k4cPigmZXUtL00=", "1:K/ee5UCqAMAQXDorP5nSa2CGLjc="),
    (1, "192.168.0.89", "192.168.0.1", 8, 0, "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=", "1:03g6IloqVBdcZlPyX8r0hgoE7kA="),
    (1, "192.168.0.1", "192.168.0.89", 0, 8, "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=", "1:03g6IloqVBdcZlPyX8r0hgoE7kA="),
    (1, "10.0.0.1", "10.0.0.2", 11, 0, "1:YHxtAirCG//0OzkcVAukqKQN9xM=", "1:XjUibYHaafLQ3pxQeiMI8g25q20="),
    (6, _V6_TCP_A, _V6_TCP_B, 63943, 25, "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4=", "1:eJYTW6AOzFLlSUoESovMjnu7rMw="),
    (6, _V6_TCP_B, _V6_TCP_A, 25, 63943, "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4=", "1:eJYTW6AOzFLlSUoESovMjnu7rMw="),
    (132, "192.168.170.8", "192.168.170.56", 7, 7, "1:MP2EtRCAUIZvTw6MxJHLV7N7JDs=", "1:5w3ZRjeKBzqT3zsaEECDGjUbYeg="),
    (132, "192.168.170.56", "192.168.170.8", 7, 7, "1:MP2EtRCAUIZvTw6MxJHLV7N7JDs=", "1:5w3ZRjeKBzqT3zsaEECDGjUbYeg="),
    (6, "128.232.110.120", "66.35.250.204", 34855, 80,
     "1:LQU9qZlK+B5F3KDmev6m5PMibrg=", "1:3V71V58M3Ksw/yuFALMcW0LAHvc="),
    (6, "66.35.250.204", "128.232.110.120", 80, 34855,
     "1:LQU9qZlK+B5F3KDmev6m5PMibrg=", "1:3V71V58M3Ksw/yuFALMcW0LAHvc="),
    (17, "192.168.1.52", "8.8.8.8", 54585, 53, "1:d/FP5EW3wiY1vCndhwleRRKHowQ=", "1:Q9We8WO3piVF8yEQBNJF4uiSVrI="),
    (17, "8.8.8.8", "192.168.1.52", 53, 54585, "1:d/FP5EW3wiY1vCndhwleRRKHowQ=", "1:Q9We8WO3piVF8yEQBNJF4uiSVrI="),
    (46, "10.1.12.1", "10.1.12.2", None, None, "1:KHlLkgoJW7ifUTyTSgyVfkFHzKw=", "1:rYir8gphR31noO9iDRQmF/BteEI="),
    (46, "10.1.12.2", "10.1.12.1", None, None, "1:KHlLkgoJW7ifUTyTSgyVfkFHzKw=", "1:rYir8gphR31noO9iDRQmF/BteEI="),
]

# Zeek's conn_id form: ICMP resp_p is the counterpart type (129 for an ICMPv6 echo request).
ZEEK_BIF = [
    (1, "1.2.3.4", "5.6.7.8", 8, 0, 0, "1:crodRHL2FEsHjbv3UkRrfbs4bZ0="),
    (58, V6A, V6B, 128, 129, 0, "1:0bf7hyMJUwt3fMED7z8LIfRpBeo="),
    (58, V6A, V6B, 128, 129, 1, "1:IO27GQzPuCtNnwFvjWALMHu5tJE="),
    (1, "1.2.3.4", "5.6.7.8", 8, 0, 1, "1:9pr4ZGTICiuZoIh90RRYE2RyXpU="),
]


@pytest.mark.parametrize("proto,src,dst,sport,dport,seed,expected", SPEC_TABLE + ZEEK_BIF)
def test_spec_table(proto: int, src: str, dst: str, sport: int | None, dport: int | None, seed: int,
                    expected: str) -> None:
    assert community_id(src, dst, proto, sport, dport, seed=seed) == expected


@pytest.mark.parametrize("proto,src,dst,sport,dport,seed0,seed1", SPEC_PCAP)
def test_spec_pcap_baseline(proto: int, src: str, dst: str, sport: int | None, dport: int | None,
                            seed0: str, seed1: str) -> None:
    assert community_id(src, dst, proto, sport, dport) == seed0
    assert community_id(src, dst, proto, sport, dport, seed=1) == seed1


def test_corpus_conn_logs() -> None:
    """Every community_id Zeek wrote in a corpus conn.log (there is one: tcp__handshake-reorder)."""
    rows = corpus_community_ids()
    assert rows, "no community_id column found in the corpus conn.logs"
    for row in rows:
        got = community_id(row.orig_h, row.resp_h, row.proto_number, row.orig_p, row.resp_p)
        assert got == row.community_id, row


@pytest.mark.parametrize("proto", [6, 17, 132])
def test_direction_symmetry(proto: int) -> None:
    for a, b, pa, pb in [("10.0.0.1", "10.0.0.2", 1234, 80), ("10.0.0.2", "10.0.0.1", 1234, 80),
                         ("10.0.0.1", "10.0.0.1", 5000, 80), ("::1", "::1", 80, 80),
                         ("2001:db8::1", "fe80::1", 65535, 0)]:
        assert community_id(a, b, proto, pa, pb) == community_id(b, a, proto, pb, pa)


def test_same_address_orders_by_port() -> None:
    # Loopback flows (both addresses equal) must be ordered by port, or the two directions split.
    fwd = community_id("127.0.0.1", "127.0.0.1", 6, 40000, 80)
    assert fwd == community_id("127.0.0.1", "127.0.0.1", 6, 80, 40000)
    assert fwd != community_id("127.0.0.1", "127.0.0.1", 6, 40000, 81)


def test_icmp_two_way_types_pair_up() -> None:
    for table, proto, a, b in [(ICMP4_COUNTERPARTS, 1, "192.0.2.1", "198.51.100.7"),
                               (ICMP6_COUNTERPARTS, 58, "2001:db8::1", "2001:db8::2")]:
        for mtype, counterpart in table.items():
            request = community_id(a, b, proto, mtype, 0)
            if counterpart in table and table[counterpart] == mtype:
                assert request == community_id(b, a, proto, counterpart, 0), (proto, mtype)
            # the code does not matter for a two-way type: its counterpart replaces it
            assert request == community_id(a, b, proto, mtype, 7)


def test_icmp_one_way_types_keep_direction_and_code() -> None:
    # Destination unreachable (3) / time exceeded (11) are one-way: no reordering, code counts.
    for proto, a, b, mtype in [(1, "192.0.2.9", "192.0.2.1", 3), (58, "2001:db8::9", "2001:db8::1", 1)]:
        assert community_id(a, b, proto, mtype, 1) != community_id(b, a, proto, mtype, 1)
        assert community_id(a, b, proto, mtype, 1) != community_id(a, b, proto, mtype, 3)
    # ICMPv4 router advertisement (9) is not mapped back to solicitation (10) by the spec.
    assert 9 not in ICMP4_COUNTERPARTS
    assert community_id("192.0.2.1", "192.0.2.2", 1, 9, 0) != community_id("192.0.2.2", "192.0.2.1", 1, 9, 0)


def test_seed_changes_hash() -> None:
    assert community_id("1.2.3.4", "5.6.7.8", 6, 1, 2) != community_id("1.2.3.4", "5.6.7.8", 6, 1, 2, seed=2)


@pytest.mark.parametrize("args", [
    ("1.2.3.4", "::1", 6, 1, 2),  # mixed families
    ("1.2.3.4", "5.6.7.8", 6, None, 2),  # TCP without a port
    ("1.2.3.4", "5.6.7.8", 17, 1, 70000),  # port out of range
    ("1.2.3.4", "5.6.7.8", 1, None, None),  # ICMP without a type
    ("1.2.3.4", "5.6.7.8", 300, None, None),  # protocol out of range
    ("not-an-address", "5.6.7.8", 6, 1, 2),
])
def test_rejects_bad_input(args: tuple) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValueError):
        community_id(*args)


def test_rejects_bad_seed() -> None:
    with pytest.raises(ValueError):
        community_id("1.2.3.4", "5.6.7.8", 6, 1, 2, seed=1 << 16)
