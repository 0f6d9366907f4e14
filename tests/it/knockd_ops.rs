//! knockd as operators run it: logs that never go silent (local time in
//! text lines, stderr when syslog has no daemon), systemd's readiness
//! protocol on a `NOTIFY_SOCKET` the test listens on, and the units in
//! `contrib/`. Live tests run as root in namespaces (`can_run`).
#![cfg(feature = "server")]

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

use crate::support::netns::{Net, can_run, on_path};
use crate::support::{PATIENCE, frame, knockr, pcap_file};

const HOST: &str = "192.0.2.1";

/// The repository's root, where `contrib/` and README.md are.
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A door that opens on 7000, 8000 and records its start in `DIR/ran`.
fn config(dir: &Path, knockd: &str) -> PathBuf {
    let text = format!(
        "[knockd]\n{knockd}\n[[door]]\nname = \"ssh\"\nsequence = [\"7000\", \"8000\"]\n\
         tcp_flags = \"syn\"\nstart = [\"/bin/sh\", \"-c\", \"echo start %IP% >> {0}/ran\"]\n",
        dir.display()
    );
    let path = dir.join("knockd.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn text_lines_are_in_local_time_as_knockd_and_json_stays_utc() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), "");
    let capture = dir.path().join("knocks.pcap");
    // 2026-11-18 11:06:40 UTC, the capture's start.
    pcap_file(
        &capture,
        &[
            (0, frame("198.51.100.7", HOST, "7000")),
            (100, frame("198.51.100.7", HOST, "8000")),
        ],
    );
    let replay = |zone: &str, json: bool| {
        let mut command = knockr(dir.path());
        command
            .env("TZ", zone)
            .args(["knockd", "--dry-run", "-c"])
            .arg(&config)
            .arg("--read")
            .arg(&capture);
        if json {
            command.arg("--json");
        }
        let output = command.output().unwrap();
        assert_eq!(output.status.code(), Some(0));
        String::from_utf8(output.stdout).unwrap()
    };
    // POSIX TZ: "UTC-3" is three hours east of UTC; no zoneinfo file needed.
    let text = replay("UTC-3", false);
    assert!(
        text.starts_with("[2026-11-18 14:06] 198.51.100.7: ssh: OPEN SESAME"),
        "{text}"
    );
    assert!(
        replay("UTC+5", false).starts_with("[2026-11-18 06:06] 198.51.100.7: ssh: OPEN SESAME")
    );
    let json = replay("UTC-3", true);
    let first: serde_json::Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    assert_eq!(first["time"], "2026-11-18T11:06:40.000Z", "{json}");
}

/// Runs knockd where no syslog daemon listens: in a mount namespace of its
/// own with /dev/null (no socket) over `/dev/log` when the machine has one.
const WITHOUT_SYSLOG: [&str; 8] = [
    "unshare",
    "--mount",
    "--propagation",
    "private",
    "sh",
    "-c",
    "if [ -e /dev/log ]; then mount --bind /dev/null /dev/log || exit 1; fi; exec \"$@\"",
    "sh",
];

#[test]
fn syslog_with_no_daemon_listening_logs_to_stderr_saying_so_once() {
    if !can_run() {
        return;
    }
    let net = Net::new();
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), "syslog = true");
    let mut server = net
        .start_server_via(&WITHOUT_SYSLOG, &config)
        .wait_for("listening:");
    assert_eq!(
        net.knock(&["-d", "50ms", "-p", "7000,8000", &net.v4(1)]),
        Some(0)
    );
    server.expect(&format!("{}: ssh: OPEN SESAME", net.v4(2)));
    let (status, log) = server.terminate();
    assert_eq!(status, Some(0), "{}", log.join("\n"));
    let warnings: Vec<&String> = log
        .iter()
        .filter(|l| l.contains("no syslog daemon listens at /dev/log"))
        .collect();
    assert_eq!(warnings.len(), 1, "{}", log.join("\n"));
    assert!(
        warnings[0].ends_with("log lines go to stderr instead"),
        "{}",
        warnings[0]
    );
}

/// The next datagram systemd would read, or a panic after `PATIENCE`.
fn next_notice(socket: &UnixDatagram) -> String {
    socket.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut buffer = [0u8; 4096];
    let n = socket
        .recv(&mut buffer)
        .expect("knockd told systemd something");
    String::from_utf8(buffer[..n].to_vec()).unwrap()
}

#[test]
fn systemd_is_told_ready_once_the_capture_is_open_then_reloading_and_stopping() {
    if !can_run() {
        return;
    }
    let net = Net::new();
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), "");
    let notify = dir.path().join("notify");
    let systemd = UnixDatagram::bind(&notify).unwrap();
    let variable = format!("NOTIFY_SOCKET={}", notify.display());
    let mut server = net.start_server_via(&["env", &variable], &config);

    let ready = next_notice(&systemd);
    assert_eq!(ready, "READY=1\nSTATUS=listening: 1 doors, 1 readers");
    // Ready means knocks count: the first one sent after it is seen.
    assert_eq!(
        net.knock(&["-d", "50ms", "-p", "7000,8000", &net.v4(1)]),
        Some(0)
    );
    server.expect(&format!("{}: ssh: OPEN SESAME", net.v4(2)));
    server.expect("running start command");

    unsafe { libc::kill(server.child.id() as i32, libc::SIGHUP) };
    assert!(next_notice(&systemd).starts_with("RELOADING=1\n"));
    assert_eq!(
        next_notice(&systemd),
        "READY=1\nSTATUS=listening: 1 doors, 1 readers"
    );

    unsafe { libc::kill(server.child.id() as i32, libc::SIGTERM) };
    assert!(next_notice(&systemd).starts_with("STOPPING=1\n"));
    let (status, log) = server.wait_exit(PATIENCE);
    assert_eq!(status, Some(0), "{}", log.join("\n"));
}

/// The notify socket is close-on-exec and the variable is not passed on:
/// no door command can pose as knockd to systemd.
#[test]
fn a_command_inherits_neither_the_notify_socket_nor_its_variable() {
    if !can_run() {
        return;
    }
    let net = Net::new();
    let dir = tempfile::tempdir().unwrap();
    // The shell's own descriptors (the glob reads /proc/PID/fd through one
    // of its own, the lowest free: 3), then the variable.
    let script = format!(
        "set -- /proc/$$/fd/*; for f; do printf '%s ' \"${{f##*/}}\"; done > {0}/ran; \
         echo \"notify=$NOTIFY_SOCKET\" >> {0}/ran",
        dir.path().display()
    );
    let text = format!(
        "[[door]]\nname = \"ssh\"\nsequence = [\"7000\", \"8000\"]\ntcp_flags = \"syn\"\n\
         start = [\"/bin/sh\", \"-c\", {script:?}]\n"
    );
    let config = dir.path().join("knockd.toml");
    std::fs::write(&config, text).unwrap();
    let notify = dir.path().join("notify");
    let systemd = UnixDatagram::bind(&notify).unwrap();
    let variable = format!("NOTIFY_SOCKET={}", notify.display());
    let mut server = net.start_server_via(&["env", &variable], &config);
    assert!(next_notice(&systemd).starts_with("READY=1\n"));
    assert_eq!(
        net.knock(&["-d", "50ms", "-p", "7000,8000", &net.v4(1)]),
        Some(0)
    );
    server.expect(&format!("start command for {} finished", net.v4(2)));
    let (status, log) = server.terminate();
    assert_eq!(status, Some(0), "{}", log.join("\n"));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("ran")).unwrap(),
        "0 1 2 3 notify=\n"
    );
}

/// `KEY=value` of the unit file at `contrib/NAME`, every one.
fn unit_values(name: &str, key: &str) -> Vec<String> {
    let text = std::fs::read_to_string(root().join("contrib").join(name)).unwrap();
    let prefix = format!("{key}=");
    text.lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .map(String::from)
        .collect()
}

const UNITS: [&str; 2] = ["knockr-knockd.service", "knockr-knockd-classic.service"];

#[test]
fn both_units_wait_for_readiness_do_not_loop_on_a_bad_config_and_start_the_installed_binary() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let install = &readme[readme.find("## Install").unwrap()..readme.find("## Use").unwrap()];
    for unit in UNITS {
        assert_eq!(unit_values(unit, "Type"), ["notify"], "{unit}");
        assert_eq!(
            unit_values(unit, "RestartPreventExitStatus"),
            ["2"],
            "{unit}"
        );
        let exec = unit_values(unit, "ExecStart");
        let binary = exec[0].split(' ').next().unwrap();
        assert_eq!(binary, "/usr/local/bin/knockr", "{unit}");
        assert!(
            install.contains("--root /usr/local"),
            "README's Install puts the binary at {binary}, where {unit} starts it"
        );
        assert!(
            readme.contains(&format!("`{unit}`")),
            "README says when to pick {unit}"
        );
    }
    assert_eq!(
        unit_values("knockr-knockd.service", "ExecStartPre"),
        ["+/bin/mkdir -p -m 0700 /var/lib/knockr"]
    );
    assert_eq!(
        unit_values("knockr-knockd.service", "ReadWritePaths"),
        ["/etc/knockr /var/log -/var/lib/knockr"]
    );
    assert_eq!(
        unit_values("knockr-knockd-classic.service", "ProtectHome"),
        [] as [&str; 0]
    );
    assert_eq!(
        unit_values("knockr-knockd-classic.service", "ProtectSystem"),
        ["true"],
        "/etc (ufw's rules) and /run (xtables.lock) stay writable"
    );
}

#[test]
fn systemd_analyze_verifies_both_units() {
    if !on_path("systemd-analyze") {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "systemd-analyze is missing under CI: scripts/setup.sh installs it (package systemd)"
        );
        eprintln!("skipping: systemd-analyze is not installed (package systemd)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let binary = assert_cmd::cargo::cargo_bin("knockr");
    for unit in UNITS {
        // The binary this test built, where the unit expects the installed one.
        let text = std::fs::read_to_string(root().join("contrib").join(unit))
            .unwrap()
            .replace("/usr/local/bin/knockr", binary.to_str().unwrap());
        let path = dir.path().join(unit);
        std::fs::write(&path, text).unwrap();
        let output = std::process::Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .arg(&path)
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&output.stderr).into_owned()
            + &String::from_utf8_lossy(&output.stdout);
        // Only its own lines: verify also reports on units it pulls in.
        let own: Vec<&str> = said.lines().filter(|l| l.contains(unit)).collect();
        assert!(output.status.success() && own.is_empty(), "{unit}: {said}");
    }
}
