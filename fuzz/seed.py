#!/usr/bin/env python3
"""Writes the fuzzers' seed corpora into fuzz/corpus/TARGET/seed-*.

Seeds come from the repository's example files and from inputs the unit
tests use, so each fuzzer starts from inputs that reach deep into its parser.
Run from anywhere: `python3 fuzz/seed.py`. Existing non-seed corpus files
(what libFuzzer found) are left alone.
"""

import pathlib
import struct

FUZZ = pathlib.Path(__file__).resolve().parent
ROOT = FUZZ.parent

# --- packets: first byte picks the link type (index into LINKS in packet.rs)
ETHERNET, SLL, SLL2, RAW, NULL, LOOP, IPV4, IPV6 = range(8)
SRC4, DST4 = bytes([192, 0, 2, 7]), bytes([198, 51, 100, 1])
SRC6 = bytes.fromhex("20010db8000000000000000000000007")
DST6 = bytes.fromhex("20010db8000000000000000000000001")
MAPPED = bytes(10) + b"\xff\xff"


def tcp(port, flags=0x02):
    return struct.pack("!HHIIBBHHH", 40000, port, 1, 0, 0x50, flags, 0xFFFF, 0, 0)


def udp(port, payload=b"knock"):
    return struct.pack("!HHHH", 40000, port, 8 + len(payload), 0) + payload


def ipv4(proto, segment, flags_offset=0x4000, src=SRC4, dst=DST4):
    header = struct.pack("!BBHHHBBH", 0x45, 0, 20 + len(segment), 0x1234,
                         flags_offset, 64, proto, 0)
    return header + src + dst + segment


def ipv6(next_header, rest, src=SRC6, dst=DST6):
    return struct.pack("!IHBB", 0x60000000, len(rest), next_header, 64) + src + dst + rest


def framed(link, ip):
    v6 = ip[0] >> 4 == 6
    ether = b"\x86\xdd" if v6 else b"\x08\x00"
    head = {
        ETHERNET: b"\x02\0\0\0\0\x02" + b"\x02\0\0\0\0\x01" + ether,
        SLL: b"\0\0\x03\x04\0\x06" + bytes(8) + ether,
        SLL2: ether + b"\0\0\0\0\0\x03\xff\xfe\0\0" + bytes(8),
        NULL: bytes([10 if v6 else 2, 0, 0, 0]),
        LOOP: bytes([0, 0, 0, 24 if v6 else 2]),
    }.get(link, b"")
    return bytes([link]) + head + ip


def packet_seeds():
    syn4 = ipv4(6, tcp(7000))
    udp4 = ipv4(17, udp(8000))
    udp6 = ipv6(17, udp(8000))
    exts = bytes([43, 0, 1, 4, 0, 0, 0, 0, 60, 0, 0, 0, 0, 0, 0, 0, 6, 0, 1, 4, 0, 0, 0, 0])
    seeds = {}
    for link in range(8):
        if link != IPV6:
            seeds[f"syn4-{link}"] = framed(link, syn4)
            seeds[f"udp4-{link}"] = framed(link, udp4)
        if link != IPV4:
            seeds[f"udp6-{link}"] = framed(link, udp6)
    seeds["ipv6-extension-headers"] = framed(RAW, ipv6(0, exts + tcp(7000)))
    seeds["ipv6-fragment"] = framed(RAW, ipv6(44, bytes([6, 0, 0, 9, 0, 0, 0, 42]) + tcp(7000)))
    seeds["ipv6-atomic-fragment"] = framed(RAW, ipv6(44, bytes([6, 0, 0, 0, 0, 0, 0, 42]) + tcp(7000)))
    seeds["ipv6-mapped"] = framed(RAW, ipv6(6, tcp(7000), MAPPED + SRC4, MAPPED + DST4))
    seeds["ipv4-fragment"] = framed(RAW, ipv4(6, tcp(7000), flags_offset=0x2003))
    seeds["ipv4-options"] = bytes([RAW]) + bytes([0x46]) + ipv4(6, tcp(7000))[1:20] + bytes(4) + tcp(7000)
    mac = b"\x02\0\0\0\0\x02\x02\0\0\0\0\x01"
    seeds["vlan"] = bytes([ETHERNET]) + mac + b"\x81\x00\x00\x2a\x08\x00" + syn4
    seeds["qinq"] = bytes([ETHERNET]) + mac + b"\x88\xa8\x00\x64\x81\x00\x00\x2a\x86\xdd" + udp6
    seeds["arp"] = bytes([ETHERNET]) + b"\xff" * 6 + b"\x02\0\0\0\0\x01\x08\x06" + bytes(28)
    seeds["icmp"] = framed(RAW, ipv4(1, bytes([8, 0, 0, 0, 0, 1, 0, 1]) + b"ping"))
    return seeds


# --- knockd.conf, from src/knockd/config.rs's tests and tests/knockd_offline.rs
KNOCKD_CONF = {
    "example": """
[options]
    UseSyslog
    LogFile = /var/log/knockd.log
    PidFile = /var/run/knockd.pid
    Interface = eth0
[openSSH]
    sequence    = 7000,8000:udp,9000
    seq_timeout = 5
    tcpflags    = syn
    command     = /sbin/iptables -A INPUT -s %IP% -p tcp --dport 22 -j ACCEPT
[openClose]
    sequence      = 2222:udp,3333:tcp,4444:udp
    seq_timeout   = 15
    start_command = /sbin/iptables -A INPUT -s %IP% -p tcp --dport 22 -j ACCEPT
    cmd_timeout   = 10
    stop_command  = /sbin/iptables -D INPUT -s %IP% -p tcp --dport 22 -j ACCEPT
[oneTime]
    one_time_sequences = /etc/knockd/ssh_sequences
    seq_timeout = 15
    tcpflags    = fin,!ack
    start_command = ...
""",
    "aliases": "[aliases]\nsequence = 1\ntimeout = 7\ncommand = on4\ncommand_6 = on6\nstop_command = off4\n"
    "[explicit]\nsequence = 2\nstart_command = on4\nstart_command_6 = on6\n"
    "stop_command = off4\nstop_command_6 = off6\ncmd_timeout = 3\n"
    "[disabled6]\nsequence = 3\nstart_command = on4\nstart_command_6 =\n"
    "stop_command = off4\nstop_command_6 =\n[defaults]\nsequence = 4\n",
    "case": "[options]\n  # comment\n\nINTERFACE = wlan0\n[d]\nSEQUENCE = 1:UDP, 2:Tcp\n"
    "Seq_TimeOut = 3\nTcpFlags = SYN\nTARGET = 2001:db8::1\nCoMmAnD = x\n",
    "crlf": "[options]\r\n\tUseSyslog\r\n[d]\r\nsequence = 7000|8000\r\ntcpflags = syn|!ack\r\n",
    "outside": "# knockd\nUseSyslog\n[d]\nsequence = 1",
}

SERVER_TOML = {
    "example": (ROOT / "knockd.example.toml").read_text(),
    "tests": """
[knockd]
interfaces = ["eth0"]
log_file = "/var/log/knockr.log"
syslog = false
pid_file = "/run/knockr.pid"
user = "nobody"
max_sources = 100000

[[door]]
name = "openSSH"
sequence = ["7000", "8000:udp", 9000]
seq_timeout = "5s"
tcp_flags = "syn,!ack"
target = "192.0.2.1"
start = ["/usr/sbin/nft", "add", "element", "inet", "fw", "knocked", "{", "%IP%", "}"]
stop = ["/usr/sbin/nft", "delete", "element", "inet", "fw", "knocked", "{", "%IP%", "}"]
cmd_timeout = "10s"
setup = ["/usr/sbin/nft", "-f", "/etc/knockr/fw.nft"]
teardown = ["/usr/sbin/nft", "delete", "table", "inet", "fw"]
strict = false
tolerate_repeats = false
""",
    "one-time": '[[door]]\nname = "t"\none_time_sequences = "/etc/knockr/t.seq"\n'
    'tcp_flags = ["syn", "!ack"]\nstart6 = ["x", "%IP%"]\nstop6 = ["y"]\n',
}

PROFILES = {
    "example": (ROOT / "profiles.example.toml").read_text(),
    "group": '[defaults]\ndelay = 100\n[profiles.a]\nhost = "gw.example.net"\nsequence = [7000, "8000:udp"]\n'
    '[profiles.b]\nhosts = ["192.0.2.1", "2001:db8::1"]\nsequence = ["9000"]\ncheck = 22\n'
    '[profiles.all]\ninclude = ["a", "b"]\n',
    "otp": '[profiles.t]\nhost = "gw"\nsecret_env = "K"\notp_door = "door"\notp_length = 4\n'
    'otp_ports = "10000-10010"\notp_step = "30s"\notp_protocols = ["tcp", "udp"]\notp_avoid = [10001]\n',
    "cycle": '[profiles.a]\ninclude = ["b"]\n[profiles.b]\ninclude = ["a"]\n',
}

SEQUENCE = {
    "one": b"\x007000",
    "udp": b"\x018000:udp",
    "list": b"\x007000,8000:udp,9000",
    "spaces": b"\x00 8000 : Tcp ",
    "bounds": b"\x0165535,1",
}

# First byte: 0 duration, 1 UDP payload, 2 OTP secret, 3 TCP flags, 4 host word.
VALUES = {
    "duration-ms": b"\x00250ms",
    "duration-fraction": b"\x001.5s",
    "duration-compound": b"\x001h 30m",
    "duration-bare": b"\x00200",
    "payload-hex": b"\x01hex:00 FF10",
    "payload-base64": b"\x01base64:AP8Q",
    "payload-text": b"\x01text:hex:ab",
    "secret-base32": b"\x02JBSW-Y3DP-EHPK-3PXP-JBSW-Y3DP-EHPK-3PXP====",
    "secret-hex": b"\x02hex:000102030405060708090a0b0c0d0e0f10",
    "flags": b"\x03syn,!ack",
    "flags-pipe": b"\x03FIN | psh|!urg",
    "host-inet-aton": b"\x04127.1",
    "host-zone": b"\x04fe80::1%eth0",
    "host-brackets": b"\x04[2001:db8::1]",
    "host-name": b"\x04gw.example.net.",
    "host-and-port": b"\x04gw:22",
}


# --- netlink: kernel replies as nf_tables and rtnetlink send them (native
# byte order for the framing, big-endian for nf_tables values)
def nlattr(kind, value):
    data = struct.pack("=HH", 4 + len(value), kind) + value
    return data + bytes(-len(data) % 4)


def nlmsg(kind, seq, payload):
    data = struct.pack("=IHHII", 16 + len(payload), kind, 0, seq, 0) + payload
    return data + bytes(-len(data) % 4)


def nfgen(family):
    return bytes([family, 0, 0, 0])


def netlink_seeds():
    newset = (10 << 8) | 9
    set_attrs = (nlattr(1, b"knockr\0") + nlattr(2, b"knocked_v4\0")
                 + nlattr(3, struct.pack("!I", 0x10)) + nlattr(4, struct.pack("!I", 7))
                 + nlattr(5, struct.pack("!I", 4)) + nlattr(11, struct.pack("!Q", 3600000)))
    ack = nlmsg(2, 7, struct.pack("=i", 0) + bytes(16))
    enoent = nlmsg(2, 8, struct.pack("=i", -2) + bytes(16))
    elem = nlattr(0x8000 | 3, nlattr(0x8000 | 1, nlattr(0x8000 | 1, nlattr(1, SRC4))
                                     + nlattr(4, struct.pack("!Q", 60000))))
    newaddr = nlmsg(20, 1, bytes([2, 24, 0, 0, 1, 0, 0, 0])
                    + nlattr(1, SRC4) + nlattr(2, SRC4))
    return {
        "newset-ack": nlmsg(newset, 7, nfgen(1) + set_attrs) + ack,
        "enoent": enoent,
        "setelem": nlmsg((10 << 8) | 12, 9, nfgen(1) + nlattr(1, b"knockr\0")
                         + nlattr(2, b"knocked_v4\0") + elem),
        "newaddr-done": newaddr + nlmsg(3, 1, struct.pack("=i", 0)),
    }


def write(target, seeds):
    directory = FUZZ / "corpus" / target
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in seeds.items():
        if isinstance(data, str):
            data = data.encode()
        (directory / f"seed-{name}").write_bytes(data)
    print(f"{target}: {len(seeds)} seeds in {directory}")


write("packet", packet_seeds())
write("knockd_conf", KNOCKD_CONF)
write("server_toml", SERVER_TOML)
write("profiles", PROFILES)
write("sequence", SEQUENCE)
write("values", VALUES)
write("netlink", netlink_seeds())
