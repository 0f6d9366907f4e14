//! Interop with the tools people use today, live, as root, in network
//! namespaces made by each test: the `knockr` client against the C `knockd`,
//! the C `knock` client and `hping3` against `knockr knockd`, and both servers
//! fed the same replayed traffic under the same knockd.conf. Under CI=true
//! these tests must run (scripts/setup.sh installs knockd, hping3 and
//! tcpreplay); elsewhere without root or the tools they skip, saying why.
//!
//! Every door's command appends `DOOR ADDRESS` to a file `ran` in the
//! server's working directory: what a user would see as a door opened.
#![cfg(feature = "server")]

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::netns::{Net, Server, can_run_with, sh, which};
use crate::support::{PATIENCE, frame, frame_with_flags, pcap_file};
use knockr::core::packet::tcp_flags::{ACK, SYN};

/// One knockd.conf for every test: a TCP/UDP door and a UDP-only one. No
/// `LogFile`: each server logs to its own stdout/stderr, and the commands
/// write relative to the server's working directory, so two servers can
/// share the file.
const KNOCKD_CONF: &str = "\
[options]
\tInterface = eth0
[ssh]
\tsequence    = 7000,8000:udp,9000
\tseq_timeout = 2
\ttcpflags    = syn
\tcommand     = echo ssh %IP% >> ran
[udp]
\tsequence    = 7100:udp,7200:udp,7300:udp
\tseq_timeout = 2
\tcommand     = echo udp %IP% >> ran
";

/// Writes [`KNOCKD_CONF`] into `dir`.
fn knockd_conf(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("knockd.conf");
    std::fs::write(&path, KNOCKD_CONF).unwrap();
    path
}

/// The C knockd in the server namespace, on the veth, verbose (its stage
/// lines and "listening on" go to stdout), working in `dir`.
fn c_knockd(net: &Net, dir: &Path) -> Server {
    let mut command = net.in_server(which("knockd").expect("knockd is installed"));
    command
        .args(["-v", "-i", &net.srv_if, "-c"])
        .arg(knockd_conf(dir))
        .current_dir(dir);
    Server::start(command, "listening on")
}

/// `knockr knockd` with the same knockd.conf, working in `dir`.
fn knockr_knockd(net: &Net, dir: &Path) -> Server {
    let mut command = net.in_server(assert_cmd::cargo::cargo_bin("knockr"));
    command
        .args(["knockd", "-v", "-i", &net.srv_if, "-c"])
        .arg(knockd_conf(dir))
        .arg("--state-file")
        .arg(dir.join("state").join("knockd.state"))
        .current_dir(dir);
    Server::start(command, "listening:")
}

/// The doors opened so far, as `DOOR ADDRESS` lines of `dir/ran`.
fn opened(dir: &Path) -> BTreeSet<String> {
    std::fs::read_to_string(dir.join("ran"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Waits until `dir/ran` holds every line of `want` (or `PATIENCE` passes);
/// returns what it holds.
fn wait_opened(dir: &Path, want: &[String]) -> BTreeSet<String> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let now = opened(dir);
        if want.iter().all(|w| now.contains(w)) || Instant::now() > deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `command` to completion within `PATIENCE`, asserting it succeeded.
fn run_bounded(mut command: Command) {
    command.stdout(std::process::Stdio::null());
    command.stderr(std::process::Stdio::null());
    let mut child = command.spawn().unwrap();
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{command:?} failed: {status}");
            return;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{command:?} did not finish within {PATIENCE:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn the_knockr_client_opens_a_c_knockd_door_over_ipv4_and_ipv6() {
    if !can_run_with(&["knockd"]) {
        return;
    }
    let net = Net::new();
    let dir = tempfile::tempdir().unwrap();
    let mut knockd = c_knockd(&net, dir.path());

    assert_eq!(
        net.knock(&["-d", "50ms", "-p", "7000,8000:udp,9000", &net.v4(1)]),
        Some(0)
    );
    assert_eq!(
        net.knock(&["-d", "50ms", "-p", "7100:udp,7200:udp,7300:udp", &net.v4(1)]),
        Some(0)
    );
    assert_eq!(
        net.knock(&["-6", "-d", "50ms", "-p", "7000,8000:udp,9000", &net.v6(1)]),
        Some(0)
    );
    let want = [
        format!("ssh {}", net.v4(2)),
        format!("udp {}", net.v4(2)),
        format!("ssh {}", net.v6(2)),
    ];
    let got = wait_opened(dir.path(), &want);
    knockd.expect("OPEN SESAME");
    assert_eq!(
        got,
        want.into_iter().collect(),
        "the C knockd ran its command for each knockr knock; it logged:\n{}",
        knockd.terminate().1.join("\n")
    );
}

#[test]
fn the_c_knock_client_and_hping3_open_a_knockr_knockd_door() {
    if !can_run_with(&["knock", "hping3"]) {
        return;
    }
    let net = Net::new();
    let hping_source = net.client_addresses(1).remove(0);
    let dir = tempfile::tempdir().unwrap();
    let server = knockr_knockd(&net, dir.path());

    // The C client, as users script it: one host, ports with protocols, a delay in ms.
    let mut knock = net.in_client_ns(which("knock").unwrap());
    knock.args(["-d", "50", &net.v4(1), "7000", "8000:udp", "9000"]);
    run_bounded(knock);
    let mut knock6 = net.in_client_ns(which("knock").unwrap());
    knock6.args([
        "-6",
        "-d",
        "50",
        &net.v6(1),
        "7100:udp",
        "7200:udp",
        "7300:udp",
    ]);
    run_bounded(knock6);

    // hping3, one bounded packet per knock (`-c 1`), from a second address.
    for (proto, port) in [("-S", "7000"), ("--udp", "8000"), ("-S", "9000")] {
        let mut hping = net.in_client_ns(which("hping3").unwrap());
        hping.args([
            "-q",
            proto,
            "-c",
            "1",
            "-a",
            &hping_source,
            "-p",
            port,
            &net.v4(1),
        ]);
        run_bounded(hping);
    }

    let want = [
        format!("ssh {}", net.v4(2)),
        format!("udp {}", net.v6(2)),
        format!("ssh {hping_source}"),
    ];
    let got = wait_opened(dir.path(), &want);
    let (status, log) = server.terminate();
    assert_eq!(
        got,
        want.into_iter().collect(),
        "knockr knockd ran its command for each C knock / hping3 sequence; it logged:\n{}",
        log.join("\n")
    );
    assert_eq!(status, Some(0));
}

/// The replayed traffic: (milliseconds from the start, frame, what it is).
/// Scenarios follow one another (each source's knocks end before the next
/// source starts), so the C knockd's documented rules decide every one; the
/// interleaved part comes last and separately.
struct Traffic {
    packets: Vec<(u64, Vec<u8>)>,
    /// `DOOR ADDRESS` of every knocker whose knocks are valid, by the rules
    /// of knockd-semantics.md, in the sequential part.
    opens: Vec<String>,
    /// The knockers of the interleaved part: each valid on its own.
    interleaved: Vec<String>,
}

fn traffic(net: &Net) -> Traffic {
    let dst = net.v4(1);
    let mut t = Traffic {
        packets: Vec::new(),
        opens: Vec::new(),
        interleaved: Vec::new(),
    };
    let mut at = 0;
    // knocks: (delay before it in ms, knock, TCP flags).
    let mut scenario =
        |t: &mut Traffic, src: String, knocks: &[(u64, &str, u8)], opens: &[&str]| {
            for (delay, knock, flags) in knocks {
                at += delay;
                t.packets
                    .push((at, frame_with_flags(&src, &dst, knock, *flags)));
            }
            t.opens
                .extend(opens.iter().map(|door| format!("{door} {src}")));
            at += 300;
        };
    let src = |host: u8| format!("10.201.{}.{host}", net.n);
    // A valid knock on each door.
    let valid = [(0, "7000", SYN), (50, "8000:udp", 0), (50, "9000", SYN)];
    scenario(&mut t, src(1), &valid, &["ssh"]);
    let udp = [(0, "7100:udp", 0), (50, "7200:udp", 0), (50, "7300:udp", 0)];
    scenario(&mut t, src(2), &udp, &["udp"]);
    // Wrong order: reset at the second knock, the third starts nothing.
    let wrong_order = [(0, "7000", SYN), (50, "9000", SYN), (50, "8000:udp", 0)];
    scenario(&mut t, src(3), &wrong_order, &[]);
    // A first knock on a door port that is not the first: nothing starts; then a valid knock.
    let late_start = [
        (0, "9000", SYN),
        (50, "7000", SYN),
        (50, "8000:udp", 0),
        (50, "9000", SYN),
    ];
    scenario(&mut t, src(4), &late_start, &["ssh"]);
    // A wrong door port in the middle resets; the last knock then starts nothing.
    let wrong_middle = [
        (0, "7000", SYN),
        (50, "8000:udp", 0),
        (50, "7000", SYN),
        (50, "9000", SYN),
    ];
    scenario(&mut t, src(5), &wrong_middle, &[]);
    // A knock without the flags the door wants is ignored, not a reset.
    let ack = [
        (0, "7000", SYN),
        (50, "8000:udp", 0),
        (50, "9000", ACK),
        (50, "9000", SYN),
    ];
    scenario(&mut t, src(6), &ack, &["ssh"]);
    // A repeated knock (a SYN retransmit) is a wrong knock by default.
    let repeat = [
        (0, "7000", SYN),
        (50, "7000", SYN),
        (50, "8000:udp", 0),
        (50, "9000", SYN),
    ];
    scenario(&mut t, src(7), &repeat, &[]);
    // The right port with the wrong protocol starts nothing.
    let wrong_proto = [(0, "7000:udp", 0), (50, "8000:udp", 0), (50, "9000", SYN)];
    scenario(&mut t, src(8), &wrong_proto, &[]);
    // Too slow: the last knock comes 3.5 s after the first (seq_timeout 2 s,
    // in whole seconds of packet time: at least 3 apart).
    let slow = [(0, "7000", SYN), (50, "8000:udp", 0), (3450, "9000", SYN)];
    scenario(&mut t, src(9), &slow, &[]);

    // Interleaved: 20 sources, every first knock, then every second, then every third.
    let sources: Vec<String> = (0..20).map(|i| src(100 + i)).collect();
    for (round, knock) in ["7100:udp", "7200:udp", "7300:udp"].iter().enumerate() {
        at += if round == 0 { 0 } else { 50 };
        for source in &sources {
            t.packets.push((at, frame(source, &dst, knock)));
            at += 1;
        }
    }
    t.interleaved = sources.iter().map(|s| format!("udp {s}")).collect();
    t
}

#[test]
fn one_knockd_conf_drives_the_c_knockd_and_knockr_to_the_same_decisions_on_replayed_traffic() {
    if !can_run_with(&["knockd", "tcpreplay"]) {
        return;
    }
    let net = Net::new();
    // The frames are addressed to this MAC, so the server's kernel takes them
    // as its own, as it would real traffic.
    sh(&[
        "ip",
        "-n",
        &net.srv,
        "link",
        "set",
        &net.srv_if,
        "address",
        "02:00:00:00:00:02",
    ]);
    let traffic = traffic(&net);
    let files = tempfile::tempdir().unwrap();
    let capture = files.path().join("knocks.pcap");
    pcap_file(&capture, &traffic.packets);

    let c_dir = tempfile::tempdir().unwrap();
    let r_dir = tempfile::tempdir().unwrap();
    let c = c_knockd(&net, c_dir.path());
    let r = knockr_knockd(&net, r_dir.path());

    // Replayed at the capture's own pace onto the client's end of the veth.
    let mut replay = net.in_client_ns(which("tcpreplay").unwrap());
    replay.args(["-q", "-i", &net.cli_if()]).arg(&capture);
    run_bounded(replay);

    let sequential: BTreeSet<String> = traffic.opens.iter().cloned().collect();
    let interleaved: BTreeSet<String> = traffic.interleaved.iter().cloned().collect();
    let everything: Vec<String> = traffic
        .opens
        .iter()
        .chain(&traffic.interleaved)
        .cloned()
        .collect();
    let by_knockr = wait_opened(r_dir.path(), &everything);
    // The C knockd is not waited for beyond what knockr needed: it runs its
    // commands synchronously, so give it a moment more.
    std::thread::sleep(Duration::from_millis(500));
    let by_c = opened(c_dir.path());
    let (_, c_log) = c.terminate();
    let (status, r_log) = r.terminate();
    assert_eq!(status, Some(0));

    let split = |set: &BTreeSet<String>| -> (BTreeSet<String>, BTreeSet<String>) {
        set.iter().cloned().partition(|s| !interleaved.contains(s))
    };
    let (c_seq, c_inter) = split(&by_c);
    let (r_seq, r_inter) = split(&by_knockr);
    assert_eq!(
        r_seq,
        sequential,
        "knockr opened what the rules say; it logged:\n{}",
        r_log.join("\n")
    );
    assert_eq!(
        c_seq,
        r_seq,
        "the C knockd decided as knockr on the sequential part; it logged:\n{}",
        c_log.join("\n")
    );
    assert_eq!(
        r_inter, interleaved,
        "knockr opened every interleaved knocker"
    );
    // The C knockd loses interleaved knockers (a documented bug): whatever it
    // opened, knockr opened too. How many it kept is said, not asserted.
    assert!(c_inter.is_subset(&r_inter));
    eprintln!(
        "interleaved knockers opened: knockr {} of 20, the C knockd {} of 20",
        r_inter.len(),
        c_inter.len()
    );
}
