//! `knockr knockd` under faults, live as root in network namespaces made by
//! the test: killed with SIGKILL while it rewrites a one-time sequence file,
//! its capture interface deleted and recreated, its log file on a full disk.
//! Under CI=true these tests must run; elsewhere without root they skip.
#![cfg(feature = "server")]

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher as _, Hasher as _};
use std::net::UdpSocket;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::netns::{Net, can_run, enter};

/// A random number below `bound`, for kill timings (no seed to manage: each
/// run probes other moments).
fn random_below(bound: u64) -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(Instant::now().elapsed().as_nanos());
    hasher.finish() % bound
}

/// The lines of `DIR/ran`, where the doors' commands record themselves.
fn ran(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("ran"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Waits until `DIR/ran` holds a line equal to `line` (panics after 10 s).
fn wait_ran(dir: &Path, line: &str) {
    let deadline = Instant::now() + crate::support::PATIENCE;
    while !ran(dir).iter().any(|l| l == line) {
        assert!(
            Instant::now() < deadline,
            "{line:?} never ran; ran: {:?}",
            ran(dir)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends each `(source, [port, ...])` as UDP knocks to `target` from inside
/// the client namespace, a few milliseconds apart.
fn knock_from(net: &Net, target: String, knocks: Vec<(String, Vec<u16>)>) {
    net.in_client(move || send_knocks(&target, &knocks));
}

fn send_knocks(target: &str, knocks: &[(String, Vec<u16>)]) {
    for (source, ports) in knocks {
        let socket = UdpSocket::bind((source.as_str(), 0)).unwrap();
        for port in ports {
            socket.send_to(&[0], (target, *port)).unwrap();
        }
        std::thread::sleep(Duration::from_millis(3));
    }
}

/// One-time sequence line `i`: two UDP knocks no other line uses. The
/// leading space is what a used line's `#` replaces.
fn one_time_line(i: usize) -> String {
    format!(" {}:udp,{}:udp", 20_000 + i, 30_000 + i)
}

fn one_time_ports(i: usize) -> Vec<u16> {
    vec![20_000 + i as u16, 30_000 + i as u16]
}

/// Checks that the one-time file holds every line as written, or the same
/// with `#` over its first byte, the used ones first with no gap; returns
/// how many are used.
fn used_lines(file: &Path, original: &[String]) -> usize {
    let text = std::fs::read_to_string(file).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), original.len(), "lines were lost:\n{text}");
    let mut used = 0;
    for (i, (line, original)) in lines.iter().zip(original).enumerate() {
        if *line == format!("#{}", &original[1..]) {
            assert_eq!(
                used,
                i,
                "line {} is used after an unused one:\n{text}",
                i + 1
            );
            used += 1;
        } else {
            assert_eq!(line, original, "line {} was damaged:\n{text}", i + 1);
        }
    }
    used
}

#[test]
fn kill_9_while_one_time_sequences_are_rewritten_never_tears_the_file_nor_reopens_a_used_line() {
    if !can_run() {
        return;
    }
    const LINES: usize = 60;
    const ROUNDS: usize = 12;
    const PER_ROUND: usize = 4;
    let net = Net::new();
    // Sequence i is always knocked from its own address, so the start
    // command's %IP% says which line opened the door.
    let sources = net.client_addresses(LINES as u8);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sequences");
    let original: Vec<String> = (0..LINES).map(one_time_line).collect();
    std::fs::write(&file, original.join("\n") + "\n").unwrap();
    let config = dir.path().join("knockd.toml");
    std::fs::write(
        &config,
        format!(
            "[[door]]\nname = \"once\"\none_time_sequences = \"{}\"\nseq_timeout = \"2s\"\n\
             start = [\"/bin/sh\", \"-c\", \"echo start %IP% >> {}/ran\"]\n",
            file.display(),
            dir.path().display()
        ),
    )
    .unwrap();
    let line_of = |ip: &str| sources.iter().position(|s| s == ip).unwrap();

    let mut kills = 0;
    for _ in 0..ROUNDS {
        // After every kill: nothing torn, nothing lost.
        let next = used_lines(&file, &original);
        if next + PER_ROUND >= LINES {
            break;
        }
        let server = net.server(&config);
        // A burst of successive sequences, each once its predecessor is due
        // to be used up, and a SIGKILL at a random moment within it.
        let burst: Vec<(String, Vec<u16>)> = (next..next + PER_ROUND)
            .map(|i| (sources[i].clone(), one_time_ports(i)))
            .collect();
        let (target, cli) = (net.v4(1), net.cli.clone());
        let knocker = std::thread::spawn(move || {
            enter(&cli);
            send_knocks(&target, &burst);
        });
        std::thread::sleep(Duration::from_micros(random_below(20_000)));
        server.kill9();
        kills += 1;
        knocker.join().unwrap();
    }
    assert!(
        kills >= 8,
        "only {kills} kills: the rounds used too many lines"
    );
    let used = used_lines(&file, &original);
    assert!(used >= 1, "no sequence was ever used: the race never ran");
    // A start command spawned just before a kill outlives knockd and may
    // write its line a little later: wait until the file stops growing.
    let mut settled = ran(dir.path()).len();
    let deadline = Instant::now() + crate::support::PATIENCE;
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = ran(dir.path()).len();
        if now == settled || Instant::now() > deadline {
            break;
        }
        settled = now;
    }
    assert_eq!(
        knockr::config::onetime::current(&file, knockr::config::server::refuse_line)
            .unwrap()
            .map(|(i, _)| i),
        Some(used),
        "knockd reads the file the same way"
    );
    // Every door that opened used a line that is now marked used.
    let opened = ran(dir.path());
    for line in &opened {
        let ip = line.strip_prefix("start ").unwrap();
        assert!(
            line_of(ip) < used,
            "{ip}'s sequence opened the door but its line is not marked used"
        );
    }
    assert!(
        opened.len() <= used,
        "{opened:?} opened with {used} lines used"
    );
    eprintln!(
        "{kills} kills, {used} lines used, {} doors opened before their kill",
        opened.len()
    );

    // After a last restart no used sequence opens again, and the next unused one does.
    let mut server = net.server(&config);
    let replays: Vec<(String, Vec<u16>)> = (0..used)
        .map(|i| (sources[i].clone(), one_time_ports(i)))
        .collect();
    knock_from(&net, net.v4(1), replays);
    let fresh = (sources[used].clone(), one_time_ports(used));
    knock_from(&net, net.v4(1), vec![fresh.clone()]);
    wait_ran(dir.path(), &format!("start {}", fresh.0));
    server.expect("OPEN SESAME");
    let (status, log) = server.terminate();
    assert_eq!(status, Some(0), "{}", log.join("\n"));
    let after = ran(dir.path());
    assert_eq!(
        after.len(),
        opened.len() + 1,
        "a used sequence opened again: {after:?}"
    );
}

#[test]
fn the_capture_interface_goes_away_comes_back_and_knocks_open_again_then_exit_1_when_it_stays_gone()
{
    if !can_run() {
        return;
    }
    let net = Net::new();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("knockd.toml");
    std::fs::write(
        &config,
        format!(
            "[[door]]\nname = \"udp\"\nsequence = [\"7000:udp\", \"8000:udp\"]\n\
             start = [\"/bin/sh\", \"-c\", \"echo start %IP% >> {}/ran\"]\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let mut server = net.server(&config);
    let knock = || knock_from(&net, net.v4(1), vec![(net.v4(2), vec![7000, 8000])]);
    knock();
    wait_ran(dir.path(), &format!("start {}", net.v4(2)));

    net.unlink();
    server.expect("The interface disappeared; trying to re-open it for up to 20s");
    std::thread::sleep(Duration::from_millis(500));
    net.link();
    server.expect("re-opened: matching goes on");
    knock();
    let deadline = Instant::now() + crate::support::PATIENCE;
    while ran(dir.path()).len() < 2 {
        assert!(
            Instant::now() < deadline,
            "the knock after the interface came back did not open"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // Gone for good: a clear sentence and status 1, for systemd to restart it.
    net.unlink();
    let started = Instant::now();
    let (status, log) = server.wait_exit(Duration::from_secs(40));
    assert_eq!(status, Some(1), "{}", log.join("\n"));
    assert!(
        started.elapsed() >= Duration::from_secs(15),
        "it gave up after {:?}, before the bounded retry",
        started.elapsed()
    );
    let last = log.last().unwrap();
    assert!(
        last.starts_with("knockr knockd: capture on ")
            && last.contains("failed (libpcap error: The interface disappeared) and could not be re-opened within 20s")
            && last.ends_with("; exiting with status 1 (to be restarted)"),
        "{}",
        log.join("\n")
    );
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/knockr-knockd.service"),
    )
    .unwrap();
    assert!(
        unit.lines().any(|l| l == "Restart=on-failure"),
        "the systemd unit restarts a failed knockd"
    );
}

/// After a privilege drop, re-opening cannot work: waiting 20 s for it would
/// only keep the door shut longer before systemd restarts knockd as root.
#[test]
fn a_capture_that_cannot_be_reopened_for_want_of_privileges_exits_1_at_once() {
    if !can_run() {
        return;
    }
    let net = Net::new();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("knockd.toml");
    std::fs::write(
        &config,
        "[knockd]\nuser = \"nobody\"\n[[door]]\nname = \"udp\"\n\
         sequence = [\"7000:udp\", \"8000:udp\"]\nstart = [\"/bin/true\"]\n",
    )
    .unwrap();
    let mut server = net.server(&config);
    server.expect("now running as nobody");
    net.unlink();
    std::thread::sleep(Duration::from_millis(300));
    net.link();
    let started = Instant::now();
    let (status, log) = server.wait_exit(Duration::from_secs(40));
    assert_eq!(status, Some(1), "{}", log.join("\n"));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "it waited {:?} for a re-open that cannot work",
        started.elapsed()
    );
    let last = log.last().unwrap();
    assert!(
        last.contains("could not be re-opened; last attempt: ")
            && last.contains("re-opening a capture needs root or CAP_NET_RAW"),
        "{}",
        log.join("\n")
    );
}

#[test]
fn a_log_file_on_a_full_disk_does_not_stop_doors_opening_and_failure_and_recovery_are_said_once() {
    if !can_run() {
        return;
    }
    let net = Net::new();
    let sources = net.client_addresses(3);
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let config = dir.path().join("knockd.toml");
    std::fs::write(
        &config,
        format!(
            "[knockd]\nlog_file = \"{1}/knockd.log\"\n[[door]]\nname = \"udp\"\n\
             sequence = [\"7000:udp\", \"8000:udp\"]\n\
             setup = [\"/bin/sh\", \"-c\", \"echo ready >> {0}/ran\"]\n\
             start = [\"/bin/sh\", \"-c\", \"echo start %IP% >> {0}/ran\"]\n",
            dir.path().display(),
            logs.display()
        ),
    )
    .unwrap();
    // A 64 KiB tmpfs in a mount namespace of the server's own (it goes away
    // with the server), filled up before knockd starts.
    let mount = format!(
        "mount -t tmpfs -o size=64k knockr-test {0} && \
         {{ dd if=/dev/zero of={0}/fill bs=4096 2>/dev/null; exec \"$@\"; }}",
        logs.display()
    );
    let mut server = net.start_server_via(
        &[
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            &mount,
            "sh",
        ],
        &config,
    );
    // Every log line fails (ENOSPC), "listening" too: the setup command says
    // when the capture is open.
    wait_ran(dir.path(), "ready");
    let inside = Path::new("/proc")
        .join(server.child.id().to_string())
        .join("root")
        .join(logs.strip_prefix("/").unwrap());
    let knock = |source: &String| {
        knock_from(&net, net.v4(1), vec![(source.clone(), vec![7000, 8000])]);
        wait_ran(dir.path(), &format!("start {source}"));
    };
    knock(&sources[0]);
    knock(&sources[1]);
    server.expect("cannot write the log (No space left on device");

    // Space again: the next lines are written, whole.
    std::fs::remove_file(inside.join("fill")).unwrap();
    knock(&sources[2]);
    server.expect("the log can be written again");
    let written = std::fs::read_to_string(inside.join("knockd.log")).unwrap();
    assert!(
        written
            .lines()
            .any(|l| l.ends_with(&format!("] {}: udp: OPEN SESAME", sources[2]))),
        "{written}"
    );
    assert!(
        !written.contains(&format!("{}: udp: OPEN SESAME", sources[0])),
        "a lost line came back: {written}"
    );

    let (status, log) = server.terminate();
    assert_eq!(status, Some(0), "{}", log.join("\n"));
    let count = |needle: &str| log.iter().filter(|l| l.contains(needle)).count();
    assert_eq!(
        (
            count("cannot write the log"),
            count("the log can be written again")
        ),
        (1, 1),
        "the failure and the recovery are said once each, not per line:\n{}",
        log.join("\n")
    );
}
