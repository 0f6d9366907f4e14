//! Time-based doors in `knockr knockd`, from captures whose packet
//! timestamps the tests choose (the capture's clock is the server's clock):
//! the window's edges, replays, several clients, and secrets kept out of
//! every output. Sequences are derived with the library, as a client would.
#![cfg(feature = "server")]

use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;
use std::process::Output;

use crate::support;
use crate::support::{frame, knockr, pcap_file};
use knockr::core::knock::Proto;
use knockr::core::otp::OtpSpec;

const HOST: &str = "192.0.2.1";
/// Where `pcap_file` puts the capture's time 0 (Unix seconds).
const CAPTURE_START: u64 = 1_795_000_000;
const STEP: u64 = 30;

/// The door every test uses, with `otp_window = WINDOW` and its clients.
fn door(window: u64, secrets: &str) -> String {
    format!(
        r#"
[[door]]
name = "team"
otp_length = 4
otp_ports = "20000-29999"
otp_protocols = ["tcp", "udp"]
otp_window = {window}
tcp_flags = "syn"
start = ["/bin/sh", "-c", "echo start %IP% >> DIR/ran"]
{secrets}
"#
    )
}

/// A configuration, secrets and a capture in one temporary directory.
struct Case {
    dir: tempfile::TempDir,
}

impl Case {
    fn new() -> Case {
        Case {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A fresh secret in file `name` (mode `mode`): its base32 and hex spellings.
    fn secret(&self, name: &str, mode: u32) -> (String, String) {
        let (base32, hex) = knockr::config::secret::new_secret().unwrap();
        std::fs::write(self.path(name), format!("{base32}\n")).unwrap();
        std::fs::set_permissions(self.path(name), std::fs::Permissions::from_mode(mode)).unwrap();
        (base32, hex)
    }

    fn config(&self, text: &str) {
        let text = text.replace("DIR", &self.dir.path().display().to_string());
        std::fs::write(self.path("knockd.toml"), text).unwrap();
    }

    fn knockd(&self, args: &[&str]) -> Output {
        knockr(self.dir.path())
            .arg("knockd")
            .arg("-c")
            .arg(self.path("knockd.toml"))
            .args(args)
            .output()
            .unwrap()
    }

    /// Replays `packets` with `--json`: the (src, event, client) of each event.
    fn events(&self, packets: &[(u64, Vec<u8>)]) -> Vec<(String, String, Option<String>)> {
        pcap_file(&self.path("knocks.pcap"), packets);
        let capture = self.path("knocks.pcap");
        let output = self.knockd(&["--read", capture.to_str().unwrap(), "--json", "--dry-run"]);
        assert_eq!(output.status.code(), Some(0), "{output:?}");
        String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|v| v.get("event").is_some_and(|e| e != "stage"))
            .map(|v| {
                (
                    v["src"].as_str().unwrap().to_string(),
                    v["event"].as_str().unwrap().to_string(),
                    v["client"].as_str().map(String::from),
                )
            })
            .collect()
    }
}

/// The sequence a client with `secret` (base32) knocks for door "team" at `step`.
fn sequence(secret: &str, step: u64) -> Vec<String> {
    let spec = OtpSpec::new(4, 20000..=29999, vec![], vec![Proto::Tcp, Proto::Udp], STEP).unwrap();
    let secret = knockr::core::otp::parse_secret(secret).unwrap();
    spec.sequence(&secret, "team", step)
        .iter()
        .map(|k| k.to_string())
        .collect()
}

/// The frames of `src` knocking `knocks`, 100 ms apart from `at_ms` (capture time).
fn knocking(src: &str, knocks: &[String], at_ms: u64) -> Vec<(u64, Vec<u8>)> {
    knocks
        .iter()
        .enumerate()
        .map(|(i, k)| (at_ms + 100 * i as u64, frame(src, HOST, k)))
        .collect()
}

/// The step of the capture's time `ms`.
fn step_at(ms: u64) -> u64 {
    (CAPTURE_START + ms / 1000) / STEP
}

fn ev(src: &str, event: &str, client: Option<&str>) -> (String, String, Option<String>) {
    (src.into(), event.into(), client.map(String::from))
}

#[test]
fn sequences_of_t_minus_window_to_t_plus_window_open_and_one_step_further_do_not() {
    for window in [1, 2] {
        let case = Case::new();
        let (secret, _) = case.secret("team.secret", 0o600);
        case.config(&door(window, "secret_file = \"DIR/team.secret\""));
        // All knocks fall inside one step t of the server's clock.
        let t = step_at(0);
        assert_eq!(step_at(9_000), t, "the test's knocks share one step");
        let tries = [
            ("198.51.100.1", t - window - 1),
            ("198.51.100.2", t - window),
            ("198.51.100.3", t),
            ("198.51.100.4", t + window),
            ("198.51.100.5", t + window + 1),
        ];
        let mut packets = Vec::new();
        for (n, (src, step)) in tries.iter().enumerate() {
            packets.extend(knocking(src, &sequence(&secret, *step), 1_000 * n as u64));
        }
        let opened: Vec<String> = case
            .events(&packets)
            .into_iter()
            .filter(|e| e.1 == "open")
            .map(|e| e.0)
            .collect();
        assert_eq!(
            opened,
            ["198.51.100.2", "198.51.100.3", "198.51.100.4"],
            "window {window}: t-{window} and t+{window} open, one step further does not"
        );
    }
}

#[test]
fn the_same_packets_replayed_open_once_from_any_address_until_their_step_leaves_the_window() {
    let case = Case::new();
    let (secret, _) = case.secret("team.secret", 0o600);
    case.config(&door(1, "secret_file = \"DIR/team.secret\""));
    let t = step_at(1_000);
    let knocks = sequence(&secret, t);
    // The first 30 s boundary after the capture's start.
    let boundary_ms = ((t + 1) * STEP - CAPTURE_START) * 1000;
    let mut packets = knocking("198.51.100.7", &knocks, 1_000);
    // The very same packets again, from the same address and from another one.
    packets.extend(knocking("198.51.100.7", &knocks, 3_000));
    packets.extend(knocking("203.0.113.9", &knocks, 5_000));
    // In the next step the sequence of t is still valid: still refused.
    packets.extend(knocking("203.0.113.10", &knocks, boundary_ms + 1_000));
    // Two steps on it left the window: not even watched any more.
    packets.extend(knocking(
        "203.0.113.11",
        &knocks,
        boundary_ms + 2 * STEP * 1000,
    ));
    let events = case.events(&packets);
    assert_eq!(
        events,
        [
            ev("198.51.100.7", "open", None),
            ev("198.51.100.7", "replay", None),
            ev("203.0.113.9", "replay", None),
            ev("203.0.113.10", "replay", None),
        ]
    );
}

#[test]
fn a_second_clients_sequence_in_the_same_step_opens_under_its_name() {
    let case = Case::new();
    let (alice, _) = case.secret("alice.secret", 0o600);
    let (bob, _) = case.secret("bob.secret", 0o400);
    case.config(&door(
        1,
        "[[door.client]]\nname = \"alice\"\nsecret_file = \"DIR/alice.secret\"\n\
         [[door.client]]\nname = \"bob\"\nsecret_file = \"DIR/bob.secret\"\n",
    ));
    let t = step_at(1_000);
    let mut packets = knocking("198.51.100.1", &sequence(&alice, t), 1_000);
    packets.extend(knocking("198.51.100.2", &sequence(&bob, t), 2_000));
    // Alice's sequence of this step is hers: from bob's address it is a replay.
    packets.extend(knocking("198.51.100.2", &sequence(&alice, t), 3_000));
    let events = case.events(&packets);
    assert_eq!(
        events,
        [
            ev("198.51.100.1", "open", Some("alice")),
            ev("198.51.100.2", "open", Some("bob")),
            ev("198.51.100.2", "replay", Some("alice")),
        ]
    );
    // The text log names the client, and the start command runs for each.
    let capture = case.path("knocks.pcap");
    let output = case.knockd(&["--read", capture.to_str().unwrap()]);
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.contains("198.51.100.2: team (client bob): OPEN SESAME"),
        "{text}"
    );
    assert_eq!(
        support::read(case.path("ran")),
        "start 198.51.100.1\nstart 198.51.100.2\n"
    );
}

#[test]
fn a_secret_file_others_can_read_is_refused_at_its_line() {
    let case = Case::new();
    let (secret, hex) = case.secret("team.secret", 0o640);
    case.config(&door(1, "secret_file = \"DIR/team.secret\""));
    let output = case.knockd(&["--check"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8(output.stderr).unwrap();
    let expected = format!(
        "{}:10:15: door `team`: the secret file {} can be read by others (mode 640): refused; run chmod 600 {}",
        case.path("knockd.toml").display(),
        case.path("team.secret").display(),
        case.path("team.secret").display()
    );
    assert!(stderr.contains(&expected), "{stderr}");
    assert_no_secret(&stderr, &[&secret, &hex]);
}

/// Neither spelling of any secret, in any case, appears in `text`.
fn assert_no_secret(text: &str, secrets: &[&str]) {
    let text = text.to_ascii_lowercase();
    for secret in secrets {
        let secret = secret.trim_start_matches("hex:").to_ascii_lowercase();
        assert!(!text.contains(&secret), "a secret leaked into: {text}");
        // A fragment long enough not to occur by chance either.
        assert!(
            !text.contains(&secret[..16]),
            "part of a secret leaked into: {text}"
        );
    }
}

#[test]
fn secrets_appear_in_no_output() {
    let case = Case::new();
    let (alice, alice_hex) = case.secret("alice.secret", 0o600);
    let (single, single_hex) = case.secret("single.secret", 0o600);
    case.config(&format!(
        "{}\n[[door]]\nname = \"solo\"\nsecret_file = \"DIR/single.secret\"\n",
        door(
            1,
            "[[door.client]]\nname = \"alice\"\nsecret_file = \"DIR/alice.secret\"\n"
        )
    ));
    let t = step_at(1_000);
    let mut packets = knocking("198.51.100.1", &sequence(&alice, t), 1_000);
    packets.extend(knocking("198.51.100.1", &sequence(&alice, t), 2_000));
    pcap_file(&case.path("knocks.pcap"), &packets);
    let capture = case.path("knocks.pcap");
    let capture = capture.to_str().unwrap();
    let secrets = [&alice[..], &alice_hex, &single, &single_hex];
    let mut all = String::new();
    for args in [
        &["--check"][..],
        &["--read", capture, "-v"],
        &["--read", capture, "--json", "-v"],
        &["--read", capture, "--json", "--dry-run"],
    ] {
        let output = case.knockd(args);
        assert_eq!(output.status.code(), Some(0), "{args:?}: {output:?}");
        all += &String::from_utf8_lossy(&output.stdout);
        all += &String::from_utf8_lossy(&output.stderr);
    }
    assert!(all.contains("OPEN SESAME"), "the runs did something: {all}");
    assert!(
        all.contains("time-based sequences of 4 knocks in 20000-29999 (tcp,udp)"),
        "{all}"
    );
    assert_no_secret(&all, &secrets);
    // A secret that does not decode is reported without its text.
    std::fs::write(case.path("single.secret"), "hex:00112233445566778899\n").unwrap();
    let output = case.knockd(&["--check"]);
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("expected at least 16"), "{stderr}");
    assert!(!stderr.contains("00112233445566778899"), "{stderr}");
}

#[test]
fn the_check_lists_the_door_and_warns_when_a_fixed_door_knocks_inside_its_range() {
    let case = Case::new();
    case.secret("team.secret", 0o600);
    case.config(&format!(
        "{}\n[[door]]\nname = \"fixed\"\nsequence = [\"25000:udp\", \"3000:udp\"]\nstart = [\"true\"]\n",
        door(1, "secret_file = \"DIR/team.secret\"")
    ));
    let output = case.knockd(&["--check"]);
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        stdout.contains(
            "team: time-based sequences of 4 knocks in 20000-29999 (tcp,udp), steps of 30s, window +-1, clients (one secret)"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "warning: fixed: door `fixed` knocks on 25000:udp, inside door `team`'s otp_ports"
        ),
        "{stdout}"
    );
}

#[test]
fn the_commented_time_based_door_of_the_example_config_loads_once_uncommented() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let example = support::read(root.join("knockd.example.toml"));
    let start = example
        .find("# [[door]]\n# name = \"team\"")
        .expect("the example has it");
    let case = Case::new();
    case.secret("team.secret", 0o600);
    let door: String = example[start..]
        .lines()
        .filter(|l| !l.starts_with("# # "))
        .map(|l| format!("{}\n", l.strip_prefix("# ").unwrap_or(l)))
        .collect();
    case.config(&door.replace("/etc/knockr/team.secret", "DIR/team.secret"));
    let output = case.knockd(&["--check"]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        stdout.contains("team: time-based sequences of 4 knocks in 10000-60000 (tcp)"),
        "{stdout}"
    );
}

#[test]
fn a_knock_in_progress_across_a_step_boundary_completes_unless_its_step_left_the_window() {
    let case = Case::new();
    let (secret, _) = case.secret("team.secret", 0o600);
    case.config(&door(1, "secret_file = \"DIR/team.secret\""));
    let t = step_at(1_000);
    let boundary_ms = ((t + 1) * STEP - CAPTURE_START) * 1000;
    // Half the knocks before the boundary to step t+1, half after.
    let straddling =
        |src: &str, step: u64| knocking(src, &sequence(&secret, step), boundary_ms - 200);
    let mut packets = straddling("198.51.100.1", t);
    // Step t-1 is valid before the boundary and gone after it.
    packets.extend(straddling("198.51.100.2", t - 1));
    packets.sort_by_key(|p| p.0);
    let events = case.events(&packets);
    assert_eq!(events, [ev("198.51.100.1", "open", None)]);
}
