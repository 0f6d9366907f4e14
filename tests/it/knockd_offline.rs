//! `knockr knockd --read`: capture files written by the tests, replayed with
//! their timestamps as the clock; commands printed (`--dry-run`) or really run.
#![cfg(feature = "server")]

use crate::support;
use crate::support::{frame, knockr, pcap_file};

const HOST: &str = "192.0.2.1";

/// A server config and a capture in one temporary directory.
struct Case {
    dir: tempfile::TempDir,
}

impl Case {
    fn new(config: &str) -> Case {
        let dir = tempfile::tempdir().unwrap();
        let config = config.replace("DIR", &dir.path().display().to_string());
        std::fs::write(dir.path().join("knockd.toml"), config).unwrap();
        Case { dir }
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    fn capture(&self, packets: &[(u64, Vec<u8>)]) -> &Self {
        pcap_file(&self.path("knocks.pcap"), packets);
        self
    }

    /// Replays the capture; returns (exit status, stdout lines).
    fn replay(&self, extra: &[&str]) -> (Option<i32>, Vec<String>) {
        let output = knockr(self.dir.path())
            .arg("knockd")
            .arg("-c")
            .arg(self.path("knockd.toml"))
            .arg("--read")
            .arg(self.path("knocks.pcap"))
            .args(extra)
            .output()
            .unwrap();
        let stdout = String::from_utf8(output.stdout).unwrap();
        assert!(
            output.stderr.is_empty(),
            "stderr: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        (
            output.status.code(),
            stdout.lines().map(String::from).collect(),
        )
    }

    /// Replays with `--json`; returns the (src, event, stage) of each event line.
    fn events(&self, extra: &[&str]) -> Vec<(String, String, Option<u64>)> {
        let mut args = vec!["--json"];
        args.extend_from_slice(extra);
        let (status, lines) = self.replay(&args);
        assert_eq!(status, Some(0));
        lines
            .iter()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|v| v.get("event").is_some())
            .map(|v| {
                (
                    v["src"].as_str().unwrap().to_string(),
                    v["event"].as_str().unwrap().to_string(),
                    v["stage"].as_u64(),
                )
            })
            .collect()
    }
}

const SSH: &str = r#"
[[door]]
name = "openSSH"
sequence = ["7000", "8000:udp", "9000"]
seq_timeout = "5s"
tcp_flags = "syn"
start = ["/bin/sh", "-c", "echo start %IP% %DOOR% >> DIR/ran"]
stop = ["/bin/sh", "-c", "echo stop %IP% >> DIR/ran"]
cmd_timeout = "10s"
"#;

fn ev(src: &str, event: &str, stage: Option<u64>) -> (String, String, Option<u64>) {
    (src.to_string(), event.to_string(), stage)
}

#[test]
fn a_valid_knock_in_a_capture_opens_and_the_command_is_printed() {
    let case = Case::new(SSH);
    case.capture(&[
        (0, frame("198.51.100.7", HOST, "7000")),
        (150, frame("198.51.100.7", HOST, "8000:udp")),
        (300, frame("198.51.100.7", HOST, "9000")),
    ]);
    let events = case.events(&["--dry-run"]);
    assert_eq!(
        events,
        [
            ev("198.51.100.7", "stage", Some(1)),
            ev("198.51.100.7", "stage", Some(2)),
            ev("198.51.100.7", "stage", Some(3)),
            ev("198.51.100.7", "open", None),
            ev("198.51.100.7", "close", None),
        ]
    );
    let (_, lines) = case.replay(&["--dry-run", "-v"]);
    assert!(
        lines.iter().any(|l| {
            l.ends_with(&format!(
        "openSSH: would run start command: /bin/sh -c 'echo start 198.51.100.7 openSSH >> {}/ran'",
        case.dir.path().display()
    ))
        }),
        "{lines:#?}"
    );
    assert!(
        lines[0].starts_with("[2026-11-18 11:06] 198.51.100.7: openSSH: Stage 1"),
        "knockd-style lines: {}",
        lines[0]
    );
    assert!(!case.path("ran").exists(), "a dry run runs nothing");
}

#[test]
fn commands_run_for_real_start_now_and_stop_after_cmd_timeout() {
    let case = Case::new(SSH);
    case.capture(&[
        (0, frame("198.51.100.7", HOST, "7000")),
        (100, frame("198.51.100.7", HOST, "8000:udp")),
        (200, frame("198.51.100.7", HOST, "9000")),
        // A knock again while open: the stop moves later, no second start.
        (5_000, frame("198.51.100.7", HOST, "7000")),
        (5_100, frame("198.51.100.7", HOST, "8000:udp")),
        (5_200, frame("198.51.100.7", HOST, "9000")),
        // Unrelated traffic 20 s later advances the clock past the stop.
        (25_000, frame("203.0.113.9", HOST, "443")),
    ]);
    let (status, lines) = case.replay(&["--json"]);
    assert_eq!(status, Some(0));
    assert_eq!(
        support::read(case.path("ran")),
        "start 198.51.100.7 openSSH\nstop 198.51.100.7\n"
    );
    let close = lines
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["event"] == "close")
        .unwrap();
    // Capture time: the second open at 5.2 s moved the stop to 5.2 s + 10 s.
    assert_eq!(close["time"], "2026-11-18T11:06:55.200Z");
}

#[test]
fn interleaved_knockers_all_open() {
    let case = Case::new(SSH);
    let sources: Vec<String> = (1..=20).map(|n| format!("198.51.100.{n}")).collect();
    let mut packets = Vec::new();
    for (step, knock) in ["7000", "8000:udp", "9000"].iter().enumerate() {
        for (n, src) in sources.iter().enumerate() {
            packets.push(((step * 100 + n) as u64, frame(src, HOST, knock)));
        }
    }
    case.capture(&packets);
    let opened: Vec<String> = case
        .events(&["--dry-run"])
        .into_iter()
        .filter(|e| e.1 == "open")
        .map(|e| e.0)
        .collect();
    assert_eq!(opened.len(), 20);
    for src in &sources {
        assert!(opened.contains(src), "{src} did not open");
    }
}

#[test]
fn a_wrong_sequence_or_a_late_one_opens_nothing() {
    let case = Case::new(SSH);
    case.capture(&[
        // Wrong order: 9000 before 8000.
        (0, frame("198.51.100.7", HOST, "7000")),
        (100, frame("198.51.100.7", HOST, "9000")),
        (200, frame("198.51.100.7", HOST, "8000:udp")),
        // Right order but slower than seq_timeout (5 s).
        (1_000, frame("198.51.100.8", HOST, "7000")),
        (3_000, frame("198.51.100.8", HOST, "8000:udp")),
        (6_000, frame("198.51.100.8", HOST, "9000")),
        // Right ports but UDP for a TCP knock.
        (7_000, frame("198.51.100.9", HOST, "7000:udp")),
    ]);
    let events = case.events(&["--dry-run"]);
    assert!(!events.iter().any(|e| e.1 == "open"), "{events:?}");
    assert!(events.contains(&ev("198.51.100.7", "reset", None)));
    assert!(events.contains(&ev("198.51.100.8", "timeout", None)));
}

/// The replay skips packets no door can care about; what fell due while it
/// skipped them (a timeout, a stop command) must still be reported, at its own time.
#[test]
fn timeouts_and_stops_after_the_last_knock_are_reported_at_their_time() {
    let case = Case::new(SSH);
    case.capture(&[
        (0, frame("198.51.100.20", HOST, "7000")),
        (100, frame("198.51.100.20", HOST, "8000:udp")),
        (200, frame("198.51.100.20", HOST, "9000")),
        (300, frame("198.51.100.21", HOST, "7000")),
        // Only noise from here on: ports no door watches.
        (20_000, frame("198.51.100.22", HOST, "1234")),
        (30_000, frame("198.51.100.22", HOST, "1235:udp")),
    ]);
    let (status, lines) = case.replay(&["--json", "--dry-run"]);
    assert_eq!(status, Some(0));
    let events: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let find = |what: &str, src: &str| {
        events
            .iter()
            .find(|v| v["event"] == what && v["src"].as_str() == Some(src))
            .unwrap_or_else(|| panic!("no {what} for {src} in {lines:#?}"))
    };
    // The capture starts at 11:06:40 (crate::support::pcap_file).
    let timeout = find("timeout", "198.51.100.21");
    assert!(
        timeout["time"].as_str().unwrap().ends_with("06:45.300Z"),
        "{timeout}"
    );
    let stop = find("close", "198.51.100.20");
    assert!(
        stop["time"].as_str().unwrap().ends_with("06:50.200Z"),
        "{stop}"
    );
}

#[test]
fn ipv6_knockers_get_the_ipv6_command() {
    let case = Case::new(
        r#"
[[door]]
name = "v6"
sequence = ["7000", "8000"]
start = ["/bin/sh", "-c", "echo v4 %IP% >> DIR/ran"]
start6 = ["/bin/sh", "-c", "echo v6 %IP% >> DIR/ran"]
"#,
    );
    case.capture(&[
        (0, frame("2001:db8::7", "2001:db8::1", "7000")),
        (10, frame("2001:db8::7", "2001:db8::1", "8000")),
        (20, frame("::ffff:198.51.100.7", "::ffff:192.0.2.1", "7000")),
        (30, frame("::ffff:198.51.100.7", "::ffff:192.0.2.1", "8000")),
    ]);
    assert_eq!(case.replay(&[]).0, Some(0));
    // An IPv4-mapped knocker is an IPv4 knocker.
    assert_eq!(
        support::read(case.path("ran")),
        "v6 2001:db8::7\nv4 198.51.100.7\n"
    );
}

#[test]
fn a_used_one_time_sequence_never_opens_again() {
    let case = Case::new(
        r#"
[[door]]
name = "once"
one_time_sequences = "DIR/seq"
start = ["/bin/sh", "-c", "echo open %IP% >> DIR/ran"]
"#,
    );
    std::fs::write(case.path("seq"), " 7000,8000\n 7100,8100\n").unwrap();
    let knock =
        |src: &str, a: &str, b: &str| vec![(0, frame(src, HOST, a)), (100, frame(src, HOST, b))];
    case.capture(&knock("198.51.100.7", "7000", "8000"));
    assert_eq!(case.replay(&[]).0, Some(0));
    assert_eq!(support::read(case.path("seq")), "#7000,8000\n 7100,8100\n");
    // The very same capture again: the line is spent.
    assert_eq!(case.replay(&[]).0, Some(0));
    assert_eq!(support::read(case.path("ran")), "open 198.51.100.7\n");
    // The next line works, once.
    case.capture(&knock("198.51.100.8", "7100", "8100"));
    case.replay(&[]);
    case.replay(&[]);
    assert_eq!(
        support::read(case.path("ran")),
        "open 198.51.100.7\nopen 198.51.100.8\n"
    );
}

#[test]
fn a_bad_next_one_time_line_disables_the_door_and_says_why() {
    let case = Case::new(
        r#"
[[door]]
name = "once"
one_time_sequences = "DIR/seq"
start = ["/bin/sh", "-c", "echo open %IP% >> DIR/ran"]
"#,
    );
    std::fs::write(case.path("seq"), " 7000,8000\n 7100,56:icmp\n").unwrap();
    case.capture(&[
        (0, frame("198.51.100.7", HOST, "7000")),
        (100, frame("198.51.100.7", HOST, "8000")),
    ]);
    let (status, lines) = case.replay(&[]);
    assert_eq!(status, Some(0));
    assert_eq!(support::read(case.path("ran")), "open 198.51.100.7\n");
    let seq = case.path("seq");
    assert!(
        lines.iter().any(|l| l.ends_with(&format!(
            "once: cannot read the next one-time sequence: {}:2: the ICMP knock 56:icmp: \
             knockr knockd matches TCP and UDP knocks only; ICMP knocks are for the router's \
             native rules (knockr routeros rules); the door is disabled",
            seq.display()
        ))),
        "{lines:#?}"
    );
}

#[test]
fn a_classic_knockd_conf_is_read_as_is_and_its_commands_go_through_the_shell() {
    let dir = tempfile::tempdir().unwrap();
    let conf = format!(
        "[options]\n    UseSyslog\n\n[openSSH]\n    sequence    = 7000,8000:UDP,9000\n    seq_timeout = 5\n    tcpflags    = syn\n    \
         command     = echo %IP% > {0}/ip; echo done >> {0}/ip\n",
        dir.path().display()
    );
    std::fs::write(dir.path().join("knockd.conf"), conf).unwrap();
    pcap_file(
        &dir.path().join("k.pcap"),
        &[
            (0, frame("198.51.100.7", HOST, "7000")),
            (1, frame("198.51.100.7", HOST, "8000:udp")),
            (2, frame("198.51.100.7", HOST, "9000")),
        ],
    );
    let output = knockr(dir.path())
        .args(["knockd", "-c"])
        .arg(dir.path().join("knockd.conf"))
        .arg("--read")
        .arg(dir.path().join("k.pcap"))
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(support::read(dir.path().join("ip")), "198.51.100.7\ndone\n");
}

#[test]
fn check_lists_the_doors_and_lints() {
    let case = Case::new(
        r#"
[[door]]
name = "scan-me"
sequence = ["7000", "7001", "7002"]
start = ["/bin/true"]
"#,
    );
    let output = knockr(case.dir.path())
        .args(["knockd", "--check", "-c"])
        .arg(case.path("knockd.toml"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.contains("knockr TOML, 1 door(s)"), "{stdout}");
    assert!(
        stdout.contains("scan-me: 7000:tcp,7001:tcp,7002:tcp, timeout 25s"),
        "{stdout}"
    );
    assert!(stdout.contains("warning: scan-me:"), "{stdout}");
}

#[test]
fn an_invalid_config_exits_2_naming_the_line() {
    let case = Case::new("[[door]]\nname = \"x\"\nsequence = [\"0\"]\n");
    let output = knockr(case.dir.path())
        .args(["knockd", "--check", "-c"])
        .arg(case.path("knockd.toml"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("knockd.toml:3:"), "{stderr}");
}

#[test]
fn the_example_config_passes_check() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = knockr(root)
        .args(["knockd", "--check", "-c"])
        .arg(root.join("knockd.example.toml"))
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.contains("knockr TOML, 1 door(s)"), "{stdout}");
    assert!(
        stdout.contains("openSSH: 7000:tcp,8000:udp,9000:tcp, timeout 5s"),
        "{stdout}"
    );
}

#[test]
fn a_failing_command_is_logged_with_its_status_and_stderr() {
    let case = Case::new(
        r#"
[[door]]
name = "broken"
sequence = ["7000"]
start = ["/bin/sh", "-c", "echo no such table >&2; exit 3"]
"#,
    );
    case.capture(&[(0, frame("198.51.100.7", HOST, "7000"))]);
    let (status, lines) = case.replay(&[]);
    assert_eq!(status, Some(0), "a failed command does not stop the server");
    assert!(
        lines.iter().any(|l| l.ends_with(
            "broken: command returned non-zero status code (exit status 3): no such table"
        )),
        "{lines:#?}"
    );
}
