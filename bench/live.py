"""Driver of bench/live.sh; runs inside the client namespace, starts each
server in the server namespace (`ip netns exec`), and prints the tables.

Every loop is bounded: a fixed number of knocks, floods limited in packets
(tcpreplay --limit) and in time (a timeout on every wait). Traffic goes from
the client namespace to the server namespace over their veth pair only.
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
SRV_IP, SRV_MAC, CLI_MAC = E["SRV_IP"], E["SRV_MAC"], E["CLI_MAC"]
KNOCKR, KNOCKD, OUT = E["KNOCKR"], E["KNOCKD"], E["OUT"]
LATENCY_KNOCKS = int(E.get("LATENCY_KNOCKS", "60"))
RATES = [int(r) for r in E.get("RATES", "20000 50000 100000 200000 300000 400000").split()]
FLOOD_SECONDS = float(E.get("FLOOD_SECONDS", "3"))
FLOOD_SOURCES = int(E.get("FLOOD_SOURCES", "100000"))
FIRST_SOURCES = int(E.get("FIRST_SOURCES", "1000000"))
FLOODS = E.get("FLOODS", "cycle first").split()
INTERLEAVED = 20
PATIENCE = 10.0

# Source addresses the client owns (bench/netns.sh): 10.77.1.1 ...
SOURCES = [f"10.77.1.{i}" for i in range(1, 251)]

# The same knockd.conf for both servers. The command writes the time it
# started (ns since the epoch) and the knocker: `date` is run by /bin/sh -c
# in both, so both pay the same process start-up.
RAN = os.path.join(OUT, "ran")
CONF = f"""[options]
[ssh]
\tsequence    = 7000,8000:udp,9000
\tseq_timeout = 5
\ttcpflags    = syn
\tcommand     = date "+%s%N %IP%" >> {RAN}
"""


class Server:
    """One knock server in the server namespace; its output is drained by threads."""

    def __init__(self, tool):
        self.tool = tool
        conf = os.path.join(OUT, "knockd.conf")
        with open(conf, "w") as f:
            f.write(CONF)
        if tool == "knockd":
            # No -v: the C knockd then prints nothing (with -v it prints every stage).
            argv = [KNOCKD, "-i", IF_SRV, "-c", conf]
        else:
            # Its own state file, not the system's under /var/lib/knockr.
            state = os.path.join(OUT, "state", "knockd.state")
            argv = [KNOCKR, "knockd", "-i", IF_SRV, "-c", conf, "--state-file", state]
        self.lines = []
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", NS_SRV] + argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for pipe in (self.proc.stdout, self.proc.stderr):
            threading.Thread(target=self._drain, args=(pipe,), daemon=True).start()
        if tool == "knockd":
            # It says nothing when ready without -v; it opens its capture within milliseconds.
            time.sleep(1.0)
        else:
            self._wait_for("listening:")
        if self.proc.poll() is not None:
            sys.exit(f"{tool} exited at start: {self.lines}")

    def _drain(self, pipe):
        for line in pipe:
            self.lines.append(line.rstrip("\n"))

    def _wait_for(self, needle):
        deadline = time.monotonic() + PATIENCE
        while time.monotonic() < deadline:
            if any(needle in line for line in self.lines):
                return
            time.sleep(0.01)
        sys.exit(f"{self.tool} never said {needle!r}: {self.lines}")

    def cpu_seconds(self):
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def peak_rss_mib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self):
        """SIGTERM, then the capture counters knockr logs at exit (None for knockd)."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=PATIENCE)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        time.sleep(0.05)
        for line in self.lines:
            if "capture on" in line and "received by the filter" in line:
                words = line.split(": ", 1)[1].split()
                return {"received": int(words[0]), "dropped": int(words[6]), "if_dropped": int(words[11])}
        return None


def opened():
    """{source: command start time in ns} from the commands' file."""
    seen = {}
    try:
        with open(RAN) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 2:
                    seen.setdefault(parts[1], int(parts[0]))
    except FileNotFoundError:
        pass
    return seen


def reset_ran():
    try:
        os.remove(RAN)
    except FileNotFoundError:
        pass


def syn(src, port):
    """A TCP SYN from `src`, as the C knock client sends it (non-blocking connect)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((src, 0))
    s.setblocking(False)
    s.connect_ex((SRV_IP, port))
    return s


def udp(src, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((src, 0))
    s.sendto(b"\0", (SRV_IP, port))
    return s


def knock(src, gap=0.01):
    """The door's sequence from `src`; returns the time the last knock left (ns)."""
    held = [syn(src, 7000)]
    time.sleep(gap)
    held.append(udp(src, 8000))
    time.sleep(gap)
    sent = time.time_ns()
    held.append(syn(src, 9000))
    time.sleep(0.005)
    for s in held:
        s.close()
    return sent


def wait_opened(sources, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen = opened()
        if all(s in seen for s in sources):
            return seen
        time.sleep(0.0005)
    return opened()


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def latency(tool):
    reset_ran()
    server = Server(tool)
    delays, missed = [], 0
    for src in SOURCES[:LATENCY_KNOCKS]:
        sent = knock(src)
        seen = wait_opened([src], 2.0)
        if src in seen:
            delays.append((seen[src] - sent) / 1e6)
        else:
            missed += 1
        time.sleep(0.05)
    stats = server.stop()
    return delays, missed, stats


def baseline():
    """The floor: the same command started directly (fork, exec /bin/sh, exec
    date) with no server and no network; what any server adds comes on top."""
    reset_ran()
    delays = []
    for i in range(LATENCY_KNOCKS):
        src = f"192.0.2.{i + 1}"
        sent = time.time_ns()
        subprocess.run(["/bin/sh", "-c", f'date "+%s%N {src}" >> {RAN}'], check=True)
        delays.append((opened()[src] - sent) / 1e6)
        time.sleep(0.01)
    return delays


def interleaved(tool):
    reset_ran()
    server = Server(tool)
    sources = SOURCES[100 : 100 + INTERLEAVED]
    held = []
    for send in (lambda s: syn(s, 7000), lambda s: udp(s, 8000), lambda s: syn(s, 9000)):
        for src in sources:
            held.append(send(src))
        time.sleep(0.05)
    seen = wait_opened(sources, 2.0)
    for s in held:
        s.close()
    server.stop()
    return sum(1 for s in sources if s in seen)


def mac(text):
    return bytes(int(b, 16) for b in text.split(":"))


def checksum(header):
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return (~total) & 0xFFFF


def flood_pcap(path, kind):
    """Spoofed sources (100.64.0.0/10), every packet aimed at a sequence port.
    "cycle": FLOOD_SOURCES sources each knocking 7000, 8000/udp, 7000, 9000
    over and over, round by round: every source mid-sequence, none ever
    completing it, one packet in four a wrong knock (a reset).
    "first": FIRST_SOURCES sources each sending only the first knock, once
    (the file is not looped below FIRST_SOURCES / FLOOD_SECONDS packets/s):
    every packet starts a new attempt, none resets one."""
    eth = mac(SRV_MAC) + mac(CLI_MAC) + b"\x08\x00"
    dst = socket.inet_aton(SRV_IP)
    if kind == "cycle":
        cycle, sources = [(6, 7000), (17, 8000), (6, 7000), (6, 9000)], FLOOD_SOURCES
    else:
        cycle, sources = [(6, 7000)], FIRST_SOURCES
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for proto, port in cycle:
            for i in range(sources):
                src = struct.pack("!I", 0x64400000 + 1 + i)
                sport = 1024 + i % 60000
                if proto == 6:
                    l4 = struct.pack("!HHIIBBHHH", sport, port, i, 0, 0x50, 0x02, 64240, 0, 0)
                else:
                    l4 = struct.pack("!HHHH", sport, port, 9, 0) + b"\0"
                ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), i & 0xFFFF, 0x4000, 64, proto, 0, src, dst)
                ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
                frame = eth + ip + l4
                f.write(struct.pack("<IIII", 0, 0, len(frame), len(frame)))
                f.write(frame)
    return len(cycle) * sources


def flood(tool, rate, pcap, packets_in_file, valid_sources):
    """One flood at `rate` packets/s for FLOOD_SECONDS, with a valid knock from
    each of `valid_sources` spread through it."""
    reset_ran()
    server = Server(tool)
    cpu0, t0 = server.cpu_seconds(), time.monotonic()
    limit = int(rate * FLOOD_SECONDS)
    loops = limit // packets_in_file + 1
    # Bounded twice: in packets, and in time when the sender cannot keep up.
    argv = ["tcpreplay", "-q", "-K", "-i", IF_CLI, f"--pps={rate}", f"--limit={limit}", f"--loop={loops}"]
    argv.append(f"--duration={max(1, round(FLOOD_SECONDS))}")
    if rate >= 50000:
        argv.append(f"--pps-multi={max(1, rate // 10000)}")
    replay = subprocess.Popen(argv + [pcap], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    gap = FLOOD_SECONDS / len(valid_sources)
    for i, src in enumerate(valid_sources):
        time.sleep(gap / 2 if i == 0 else gap)
        knock(src, gap=0.02)
    try:
        out, _ = replay.communicate(timeout=FLOOD_SECONDS * 3 + PATIENCE)
    except subprocess.TimeoutExpired:
        replay.kill()
        out, _ = replay.communicate()
    wall = time.monotonic() - t0
    seen = wait_opened(valid_sources, 2.0)
    detected = sum(1 for s in valid_sources if s in seen)
    cpu = (server.cpu_seconds() - cpu0) / wall * 100
    rss = server.peak_rss_mib()
    stats = server.stop()
    achieved = float("nan")
    for line in out.splitlines():
        if "Rated:" in line and "pps" in line:
            achieved = float(line.split(",")[-1].split()[0])
    return detected, achieved, cpu, rss, stats


def label(tool):
    return "C knockd" if tool == "knockd" else "knockr knockd"


def main():
    tools = ["knockd", "knockr"]
    print(f"Last knock to command start, {LATENCY_KNOCKS} knocks each (ms):\n")
    print("| server | p50 | p99 | max | min | missed | kernel drops (received) |")
    print("|---|---|---|---|---|---|---|")
    for tool in tools:
        delays, missed, stats = latency(tool)
        drops = f"{stats['dropped']} ({stats['received']})" if stats else "n/a"
        if delays:
            print(
                f"| {label(tool)} | {pct(delays, 50):.2f} | {pct(delays, 99):.2f} | {max(delays):.2f}"
                f" | {min(delays):.2f} | {missed} | {drops} |"
            )
        else:
            print(f"| {label(tool)} | - | - | - | - | {missed} | {drops} |")
    delays = baseline()
    print(
        f"| floor: the command started directly, no server | {pct(delays, 50):.2f} | {pct(delays, 99):.2f}"
        f" | {max(delays):.2f} | {min(delays):.2f} | - | - |"
    )
    sys.stdout.flush()

    print(f"\n{INTERLEAVED} knockers interleaved (every first knock, then every second, then every third):\n")
    print("| server | opened |")
    print("|---|---|")
    for tool in tools:
        print(f"| {label(tool)} | {interleaved(tool)} of {INTERLEAVED} |")
    sys.stdout.flush()

    for kind in FLOODS:
        pcap = os.path.join(OUT, f"flood-{kind}.pcap")
        packets = flood_pcap(pcap, kind)
        if kind == "cycle":
            what = (
                f"{FLOOD_SOURCES:,} spoofed sources knocking 7000, 8000/udp, 7000, 9000 round and round"
                " (one packet in four resets an attempt)"
            )
        else:
            what = f"{FIRST_SOURCES:,} spoofed sources each sending one SYN to the first port"
        print(f"\nValid knocks detected under a flood ({what}; {FLOOD_SECONDS:g} s per rate, 3 valid knocks spread through it):\n")
        print("| server | asked pps | sent pps | detected | CPU | peak RSS | kernel drops / received |")
        print("|---|---|---|---|---|---|---|")
        used = 0
        best = {}
        for tool in tools:
            for rate in RATES:
                valid = SOURCES[150 + used : 150 + used + 3]
                used = (used + 3) % 90
                detected, achieved, cpu, rss, stats = flood(tool, rate, pcap, packets, valid)
                drops = f"{stats['dropped']:,} / {stats['received']:,}" if stats else "n/a"
                print(
                    f"| {label(tool)} | {rate:,} | {achieved:,.0f} | {detected}/3 | {cpu:.0f}% | {rss:.1f} MiB | {drops} |"
                )
                sys.stdout.flush()
                if detected == 3:
                    best[tool] = max(best.get(tool, 0), rate)
        print()
        for tool in tools:
            print(f"- {label(tool)}: highest asked rate with 3/3 detected: {best.get(tool, 0):,} packets/s")
        os.remove(pcap)


if __name__ == "__main__":
    main()
