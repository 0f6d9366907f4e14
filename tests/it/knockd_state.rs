//! `knockr knockd`'s state file: what survives kill -9. Live tests run as
//! root in network namespaces the test makes (`support::netns`); under
//! CI=true they must run, elsewhere without root they skip. Each server gets
//! its own state file next to its config (`state_file_for`), the same across
//! the restarts of one test.
#![cfg(feature = "server")]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::support::knockr;
use crate::support::netns::{Net, can_run, state_file_for};

/// How long a test waits for a file to say something.
const WAIT: Duration = Duration::from_secs(30);

fn ran(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("ran")).unwrap_or_default()
}

/// What `dir/ran` holds once it contains `needle` (panics after [`WAIT`]).
fn wait_ran(dir: &Path, needle: &str) -> String {
    let until = Instant::now() + WAIT;
    loop {
        let text = ran(dir);
        if text.contains(needle) {
            return text;
        }
        assert!(Instant::now() < until, "no {needle:?} in ran:\n{text}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The state file as JSON.
fn state(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// When the stop of the knocker of door `door` is due, as the state file says.
fn due(path: &Path, door: &str) -> SystemTime {
    let state = state(path);
    let open = state["open"].as_array().unwrap();
    let entry = open
        .iter()
        .find(|o| o["door"] == door)
        .unwrap_or_else(|| panic!("no knocker at {door} in {state}"));
    UNIX_EPOCH + Duration::from_nanos(entry["due_ns"].as_u64().unwrap())
}

fn uid_of(user: &str) -> u32 {
    let out = std::process::Command::new("id")
        .args(["-u", user])
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// A door knocked by one UDP datagram to `port`, recording its start and
/// stop in `dir/ran`, closing `timeout` after it opened.
fn door(dir: &Path, name: &str, port: u16, timeout: &str) -> String {
    let ran = dir.join("ran");
    let ran = ran.display();
    format!(
        "[[door]]\nname = \"{name}\"\nsequence = [\"{port}:udp\"]\n\
         start = [\"/bin/sh\", \"-c\", \"echo start {name} %IP% >> {ran}\"]\n\
         stop = [\"/bin/sh\", \"-c\", \"echo stop {name} %IP% >> {ran}\"]\n\
         cmd_timeout = \"{timeout}\"\n"
    )
}

/// After kill -9 the holes stay open (no stop ran); the next start runs the
/// stop that fell due meanwhile at once, schedules the one not due yet and
/// runs it at its time, and SIGTERM runs the last. Run as `user = nobody`:
/// the file written after the drop is read back as root.
#[test]
fn after_kill_9_the_restart_runs_the_overdue_stop_at_once_and_the_others_at_their_time() {
    if !can_run() {
        return;
    }
    use std::os::unix::fs::PermissionsExt as _;
    let net = Net::new();
    let dir = tempfile::tempdir().unwrap();
    // The commands run as nobody and write their record here.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    let config = dir.path().join("knockd.toml");
    let text = format!(
        "[knockd]\nuser = \"nobody\"\n{}{}{}",
        // Apart enough that a loaded machine still kills before short is
        // due and restarts before mid is.
        door(dir.path(), "short", 47401, "3s"),
        door(dir.path(), "mid", 47402, "15s"),
        door(dir.path(), "long", 47403, "1h")
    );
    std::fs::write(&config, text).unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let path = state_file_for(&config);
    assert!(!path.exists());

    let mut server = net.server(&config);
    server.expect("0 open knocker(s) restored (0 overdue)");
    let client = net.v4(2);
    for port in ["47401", "47402", "47403"] {
        let knock = ["-n", "udp", "-p", port, &net.v4(1)];
        assert_eq!(net.knock(&knock), Some(0));
    }
    for name in ["short", "mid", "long"] {
        wait_ran(dir.path(), &format!("start {name} {client}"));
    }
    // The file is rewritten before a start runs: all three are in it.
    let short_due = due(&path, "short");
    let mid_due = due(&path, "mid");
    due(&path, "long");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    // Made by knockd for nobody, who rewrites the file after the drop.
    use std::os::unix::fs::MetadataExt as _;
    let made = std::fs::metadata(path.parent().unwrap()).unwrap();
    assert_eq!(made.mode() & 0o777, 0o700);
    assert_eq!(made.uid(), uid_of("nobody"));
    server.kill9();
    assert!(!ran(dir.path()).contains("stop"), "{}", ran(dir.path()));

    // Back once short's stop is overdue, before mid's is due.
    while SystemTime::now() <= short_due {
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut server = net.server(&config);
    assert!(
        SystemTime::now() < mid_due,
        "the restart took too long for the test"
    );
    server.expect("3 open knocker(s) restored (1 overdue)");
    server.expect(&format!("short: stop for {client} overdue since "));
    wait_ran(dir.path(), &format!("stop short {client}"));
    let text = wait_ran(dir.path(), &format!("stop mid {client}"));
    assert!(SystemTime::now() >= mid_due, "mid closed before its time");
    assert!(!text.contains("stop long"), "{text}");
    let (status, log) = server.terminate();
    assert_eq!(status, Some(0), "{}", log.join("\n"));
    let text = wait_ran(dir.path(), &format!("stop long {client}"));
    for name in ["short", "mid", "long"] {
        let stops = text.matches(&format!("stop {name} ")).count();
        assert_eq!(stops, 1, "{name} closed once:\n{text}");
    }
    assert_eq!(
        state(&path)["open"].as_array().map(Vec::len),
        Some(0),
        "a clean exit leaves nothing open"
    );
}

/// A time-based sequence used before kill -9 is refused after the restart,
/// within the same step: the replay cache was kept in the state file.
#[test]
fn a_time_based_sequence_used_before_kill_9_is_refused_after_the_restart() {
    if !can_run() {
        return;
    }
    use std::os::unix::fs::PermissionsExt as _;
    let net = Net::new();
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("alice.secret");
    let (base32, _) = knockr::config::secret::new_secret().unwrap();
    std::fs::write(&secret, format!("{base32}\n")).unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let shape = "otp_ports = \"20000-29999\"\notp_protocols = [\"udp\"]\notp_length = 3\n";
    let config = dir.path().join("knockd.toml");
    std::fs::write(
        &config,
        format!(
            "[[door]]\nname = \"team\"\n{shape}\
             start = [\"/bin/sh\", \"-c\", \"echo start %IP% >> {}/ran\"]\n\
             [[door.client]]\nname = \"alice\"\nsecret_file = \"{}\"\n",
            dir.path().display(),
            secret.display()
        ),
    )
    .unwrap();
    let profiles = dir.path().join("profiles.toml");
    std::fs::write(
        &profiles,
        format!(
            "[profiles.alice]\nhost = \"{}\"\nsecret_file = \"{}\"\notp_door = \"team\"\n{shape}delay = \"50ms\"\n",
            net.v4(1),
            secret.display()
        ),
    )
    .unwrap();
    let profiles = profiles.to_str().unwrap();
    // Both knocks fall in one 30 s step: start just after a boundary.
    let into_step = || {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            % 30
    };
    if into_step() > 10 {
        std::thread::sleep(Duration::from_secs(31 - into_step()));
    }
    let step = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 30;

    let mut server = net.server(&config);
    assert_eq!(net.knock(&["-c", profiles, "alice"]), Some(0));
    server.expect("team (client alice): OPEN SESAME");
    wait_ran(dir.path(), "start ");
    let path = state_file_for(&config);
    let used = state(&path)["used"].clone();
    assert_eq!(used[0]["client"], "alice", "{used}");
    server.kill9();

    let mut server = net.server(&config);
    server.expect("1 used time-based sequence(s) refused again");
    assert_eq!(net.knock(&["-c", profiles, "alice"]), Some(0));
    server
        .expect("team (client alice): sequence already used in its time step: refused as a replay");
    let (status, log) = server.terminate();
    assert_eq!(status, Some(0), "{}", log.join("\n"));
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 30;
    assert_eq!(now, step, "the test stayed within one step");
    assert_eq!(
        ran(dir.path()).lines().count(),
        1,
        "the door opened once: {}",
        ran(dir.path())
    );
}

/// A corrupt state file is never trusted: knockd refuses to start, naming
/// the file and what to do, and leaves it as it was. Needs no root: the
/// state file is taken before any capture is opened.
#[test]
fn a_corrupt_state_file_is_refused_at_start_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("knockd.toml");
    std::fs::write(&config, door(dir.path(), "d", 47411, "10s")).unwrap();
    let path: PathBuf = dir.path().join("state").join("knockd.state");
    std::fs::create_dir(path.parent().unwrap()).unwrap();
    let torn = b"{\"knockr_state\": 1, \"open\": [{\"door\": \"d\", \"src\": \"10.0.";
    std::fs::write(&path, torn).unwrap();
    let output = knockr(dir.path())
        .args(["knockd", "-i", "lo", "-c"])
        .arg(&config)
        .arg("--state-file")
        .arg(&path)
        .timeout(WAIT)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("state file {} is corrupt (", path.display())),
        "{stderr}"
    );
    assert!(stderr.contains("move it aside or delete it"), "{stderr}");
    assert_eq!(std::fs::read(&path).unwrap(), torn, "left as it was");
}

/// Two servers on one state file would overwrite each other's: the second
/// is refused while the first runs, naming the file.
#[test]
fn a_second_knockd_on_the_same_state_file_is_refused_while_the_first_runs() {
    if !can_run() {
        return;
    }
    let net = Net::new();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("knockd.toml");
    std::fs::write(&config, door(dir.path(), "d", 47421, "10s")).unwrap();
    let first = net.server(&config);
    let second = net.start_server(&config);
    let (status, log) = second.wait_exit(WAIT);
    let path = state_file_for(&config);
    let said = format!("state file {} is in use by another knockd", path.display());
    assert_eq!(status, Some(1), "{}", log.join("\n"));
    assert!(log.iter().any(|l| l.contains(&said)), "{}", log.join("\n"));
    let (status, log) = first.terminate();
    assert_eq!(status, Some(0), "{}", log.join("\n"));
}

/// A replay of a capture carries nothing out for real, so it neither reads
/// nor writes a state file: not even a corrupt one stops it.
#[test]
fn a_replay_uses_no_state_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state").join("knockd.state");
    let config = dir.path().join("knockd.toml");
    let text = format!(
        "[knockd]\nstate_file = \"{}\"\n{}",
        path.display(),
        door(dir.path(), "d", 47431, "10s")
    );
    std::fs::write(&config, text).unwrap();
    let capture = dir.path().join("knocks.pcap");
    crate::support::pcap_file(
        &capture,
        &[(
            0,
            crate::support::frame("198.51.100.7", "192.0.2.1", "47431:udp"),
        )],
    );
    let output = knockr(dir.path())
        .args(["knockd", "-c"])
        .arg(&config)
        .arg("--read")
        .arg(&capture)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("d: OPEN SESAME"), "{stdout}");
    assert!(!path.parent().unwrap().exists(), "no state directory made");
}
