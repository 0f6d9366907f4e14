"""Driver of bench/nft_latency.sh; runs inside the client namespace, starts
`knockr knockd` and `nft monitor elements` in the server namespace (`ip netns
exec`), knocks with the knockr client, and prints the table.

What is measured, per knock: from the kernel's transmit timestamp of the last
knock packet (the SYN to the door's last port, seen on the client's veth by a
packet socket, SO_TIMESTAMPNS) to the moment `nft monitor` prints the "add
element" line for that source (stamped as this process reads it). The
client's own start-up and its earlier knocks are not included; nft monitor's
formatting and the pipe to this process are, the same for both routes.

Every loop is bounded: KNOCKS knocks per route, each waited for at most
PATIENCE seconds. Traffic goes from the client namespace to the server
namespace over their veth pair only.
"""

import os
import signal
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time

E = os.environ
NS_SRV, IF_SRV, IF_CLI = E["NS_SRV"], E["IF_SRV"], E["IF_CLI"]
SRV_IP, KNOCKR, OUT = E["SRV_IP"], E["KNOCKR"], E["OUT"]
KNOCKS = int(E.get("KNOCKS", "200"))
ROUTES = E.get("ROUTES", "nftables command").split()
PATIENCE = 5.0

# One door per route, each on its own sequence and its own source addresses
# (bench/nft_latency.sh gives the client 10.77.1.x and 10.77.2.x), so that
# every knock makes a new element in the one set: nft monitor reports an add
# only for an element that was not there.
DOORS = {
    "nftables": {
        "sequence": ["7000", "8000:udp", "9000"],
        "sources": [f"10.77.1.{i}" for i in range(1, 251)],
        "action": "[door.nftables]\ntimeout = \"1h\"\n",
    },
    "command": {
        "sequence": ["7100", "8100:udp", "9100"],
        "sources": [f"10.77.2.{i}" for i in range(1, 251)],
        "action": 'start = ["nft", "add", "element", "inet", "knockr", "knocked_v4", "{ %IP% timeout 1h }"]\n',
    },
}
LABELS = {
    "nftables": "`[door.nftables]` (netlink)",
    "command": '`start = ["nft", "add", "element", ...]`',
}


def config():
    text = "[knockd]\n"
    for route in ROUTES:
        door = DOORS[route]
        seq = ", ".join(f'"{k}"' for k in door["sequence"])
        text += (
            f'\n[[door]]\nname = "{route}"\nsequence = [{seq}]\n'
            f'seq_timeout = "5s"\ntcp_flags = "syn"\n{door["action"]}'
        )
    return text


class Lines:
    """A process in the server namespace whose output lines are read by threads."""

    def __init__(self, argv, on_line=None):
        self.lines = []
        self.on_line = on_line
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", NS_SRV] + argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        for pipe in (self.proc.stdout, self.proc.stderr):
            threading.Thread(target=self._drain, args=(pipe,), daemon=True).start()

    def _drain(self, pipe):
        for line in pipe:
            now = time.time_ns()
            line = line.rstrip("\n")
            self.lines.append(line)
            if self.on_line:
                self.on_line(now, line)

    def wait_for(self, needle):
        deadline = time.monotonic() + PATIENCE
        while time.monotonic() < deadline and self.proc.poll() is None:
            if any(needle in line for line in self.lines):
                return
            time.sleep(0.01)
        sys.exit(f"never saw {needle!r}: {self.lines}")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=PATIENCE)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


added = {}  # source -> ns when nft monitor printed its "add element"
sent = {}  # source -> ns when its last knock left the client's veth


def on_monitor(now, line):
    # add element inet knockr knocked_v4 { 10.77.1.5 expires 1h }
    words = line.split()
    if words[:2] == ["add", "element"] and "{" in words:
        added.setdefault(words[words.index("{") + 1], now)


def sniff(last_ports, stop):
    """Records the kernel's transmit time of each source's SYN to a last port."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    sock.bind((IF_CLI, 0))
    sock.setsockopt(socket.SOL_SOCKET, 35, 1)  # SO_TIMESTAMPNS
    sock.settimeout(0.2)
    while not stop.is_set():
        try:
            frame, ancillary, _, addr = sock.recvmsg(256, socket.CMSG_SPACE(16))
        except socket.timeout:
            continue
        if addr[2] != socket.PACKET_OUTGOING or frame[12:14] != b"\x08\x00" or frame[23] != 6:
            continue
        ihl = (frame[14] & 0x0F) * 4
        port, flags = struct.unpack_from("!H", frame, 14 + ihl + 2)[0], frame[14 + ihl + 13]
        if port not in last_ports or not flags & 0x02:
            continue
        for level, kind, data in ancillary:
            if level == socket.SOL_SOCKET and kind == 35:
                secs, nanos = struct.unpack("qq", data[:16])
                sent.setdefault(socket.inet_ntoa(frame[26:30]), secs * 1_000_000_000 + nanos)


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def main():
    conf = os.path.join(OUT, "knockd.toml")
    with open(conf, "w") as f:
        f.write(config())
    stop = threading.Event()
    last_ports = {int(DOORS[r]["sequence"][-1]) for r in ROUTES}
    threading.Thread(target=sniff, args=(last_ports, stop), daemon=True).start()
    monitor = Lines(["stdbuf", "-oL", "nft", "monitor", "elements"], on_monitor)
    state = os.path.join(OUT, "state", "knockd.state")
    knockd = Lines([KNOCKR, "knockd", "-i", IF_SRV, "-c", conf, "--state-file", state])
    knockd.wait_for("listening:")
    time.sleep(0.2)  # nft monitor has subscribed long since; make sure

    delays = {r: [] for r in ROUTES}
    missed = {r: 0 for r in ROUTES}
    for i in range(KNOCKS):
        # The routes take turns, so that the machine's other load falls on both.
        for route in ROUTES:
            door = DOORS[route]
            src = door["sources"][i]
            knock = subprocess.run(
                [KNOCKR, "--source", src, "-d", "10ms", "-t", "50ms", SRV_IP] + door["sequence"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                timeout=PATIENCE,
            )
            if knock.returncode != 0:
                sys.exit(f"knockr --source {src} failed: {knock.stderr}")
            deadline = time.monotonic() + PATIENCE
            while time.monotonic() < deadline and not (src in added and src in sent):
                time.sleep(0.0005)
            if src in added and src in sent:
                delays[route].append((added[src] - sent[src]) / 1e6)
            else:
                missed[route] += 1
            time.sleep(0.02)

    status = knockd.stop()
    monitor.stop()
    stop.set()
    errors = [line for line in knockd.lines if "fail" in line.lower() or "error" in line.lower()]
    if status != 0 or errors:
        print(f"knockd exited {status}; its log:\n" + "\n".join(knockd.lines), file=sys.stderr)
    listed = subprocess.run(
        ["ip", "netns", "exec", NS_SRV, "nft", "list", "set", "inet", "knockr", "knocked_v4"],
        capture_output=True,
        text=True,
    ).stdout
    elements = sum(listed.count(f"10.77.{n}.") for n in (1, 2))

    print(f"#### Last knock sent to element in the set, {KNOCKS} knocks per route (ms)")
    print()
    print("| route | p50 | p99 | max | min | mean | missed |")
    print("|---|---|---|---|---|---|---|")
    for route in ROUTES:
        d = delays[route]
        if d:
            print(
                f"| {LABELS[route]} | {pct(d, 50):.2f} | {pct(d, 99):.2f} | {max(d):.2f} "
                f"| {min(d):.2f} | {statistics.mean(d):.2f} | {missed[route]} |"
            )
        else:
            print(f"| {LABELS[route]} | - | - | - | - | - | {missed[route]} |")
    print()
    print(f"elements in inet knockr knocked_v4 at the end: {elements} (expected {KNOCKS * len(ROUTES)})")


if __name__ == "__main__":
    main()
