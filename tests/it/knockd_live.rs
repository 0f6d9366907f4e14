//! `knockr knockd` live, as root: two network namespaces made by the test,
//! joined by a veth pair. The server captures in one, the real `knockr`
//! client knocks from the other. Under CI=true these tests must run; elsewhere
//! without root they skip, saying why. Namespaces are removed on drop.
#![cfg(feature = "server")]

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::netns::{Net, Server, can_run, sh};

/// A door that records start and stop in `DIR/ran`.
fn config(dir: &std::path::Path, door: &str) -> std::path::PathBuf {
    let text = format!(
        "{door}\nstart = [\"/bin/sh\", \"-c\", \"echo start %IP% >> {0}/ran\"]\n\
         stop = [\"/bin/sh\", \"-c\", \"echo stop %IP% >> {0}/ran\"]\ncmd_timeout = \"60s\"\n",
        dir.display()
    );
    let path = dir.join("knockd.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn ran(dir: &std::path::Path) -> String {
    std::fs::read_to_string(dir.join("ran")).unwrap_or_default()
}

const DOOR: &str =
    "[[door]]\nname = \"ssh\"\nsequence = [\"7000\", \"8000:udp\", \"9000\"]\ntcp_flags = \"syn\"";

#[test]
fn the_client_opens_a_door_over_ipv4_and_ipv6_and_sigterm_closes_it() {
    if !can_run() {
        return;
    }
    let net = Net::new();
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("knockd.pid");
    let with_pid = format!("[knockd]\npid_file = \"{}\"\n{DOOR}", pid_file.display());
    let mut server = net.server(&config(dir.path(), &with_pid));
    assert_eq!(
        std::fs::read_to_string(&pid_file).unwrap().trim(),
        server.child.id().to_string()
    );

    assert_eq!(
        net.knock(&["-d", "50ms", "-p", "7000,8000:udp,9000", &net.v4(1)]),
        Some(0)
    );
    server.expect(&format!(
        "running start command: /bin/sh -c 'echo start {} >> ",
        net.v4(2)
    ));
    assert_eq!(
        net.knock(&["-6", "-d", "50ms", "-p", "7000,8000:udp,9000", &net.v6(1)]),
        Some(0)
    );
    server.expect(&format!("echo start {} >> ", net.v6(2)));

    // A wrong sequence does nothing.
    assert_eq!(
        net.knock(&["-d", "50ms", "-p", "7000,9000,8000:udp", &net.v4(1)]),
        Some(0)
    );
    server.expect("sequence reset by a wrong knock");

    let (status, log) = server.terminate();
    assert_eq!(status, Some(0), "{}", log.join("\n"));
    assert!(!pid_file.exists(), "the pid file is removed at exit");
    let ran = ran(dir.path());
    let mut lines: Vec<&str> = ran.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            format!("start {}", net.v4(2)),
            format!("start {}", net.v6(2)),
            format!("stop {}", net.v4(2)),
            format!("stop {}", net.v6(2))
        ],
        "SIGTERM ran the pending stop commands"
    );
}

#[test]
fn twenty_sources_knocking_at_once_all_get_through() {
    if !can_run() {
        return;
    }
    let net = Net::new();
    let sources = net.client_addresses(20);
    let dir = tempfile::tempdir().unwrap();
    let door = "[[door]]\nname = \"udp\"\nsequence = [\"7000:udp\", \"8000:udp\", \"9000:udp\"]";
    let mut server = net.server(&config(dir.path(), door));
    let target = net.v4(1);
    let knockers = sources.clone();
    net.in_client(move || {
        let sockets: Vec<std::net::UdpSocket> = knockers
            .iter()
            .map(|src| std::net::UdpSocket::bind((src.as_str(), 0)).unwrap())
            .collect();
        // Interleaved: every source's first knock, then every second, then every third.
        for port in [7000, 8000, 9000] {
            for socket in &sockets {
                socket.send_to(&[0], (target.as_str(), port)).unwrap();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    for src in &sources {
        server.expect(&format!("echo start {src} >> "));
    }
    let (status, _) = server.terminate();
    assert_eq!(status, Some(0));
    assert_eq!(
        ran(dir.path())
            .lines()
            .filter(|l| l.starts_with("start "))
            .count(),
        20
    );
}

#[test]
fn privileges_drop_setup_teardown_and_sighup_reload() {
    if !can_run() {
        return;
    }
    use std::os::unix::fs::PermissionsExt as _;
    let net = Net::new();
    let dir = tempfile::tempdir().unwrap();
    // After the drop the server runs as nobody: it must be able to reread the
    // config and the commands to write their record.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    let path = dir.path().join("knockd.toml");
    let write_config = |door: &str, ports: &str| {
        let text = format!(
            "[knockd]\nuser = \"nobody\"\n[[door]]\nname = \"{door}\"\nsequence = {ports}\n\
             start = [\"/bin/sh\", \"-c\", \"echo {door} %IP% $(id -u) >> {0}/ran\"]\n\
             setup = [\"/bin/sh\", \"-c\", \"echo setup $(id -u) >> {0}/ran\"]\n\
             teardown = [\"/bin/sh\", \"-c\", \"echo teardown $(id -u) >> {0}/ran\"]\n",
            dir.path().display()
        );
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    };
    write_config("first", "[\"7000\", \"8000\"]");
    let mut server = net.server(&path);
    server.expect("now running as nobody");
    assert_eq!(
        net.knock(&["-d", "50ms", "-p", "7000,8000", &net.v4(1)]),
        Some(0)
    );
    server.expect("running start command");

    // A broken file is refused; the running doors stay.
    std::fs::write(&path, "[[door]]\nname = \"broken\"\nsequence = [\"0\"]\n").unwrap();
    let hup = |server: &Server| unsafe { libc::kill(server.child.id() as i32, libc::SIGHUP) };
    hup(&server);
    server.expect("refused, the old configuration keeps running");

    // A good one replaces them, new ports included in the kernel filter.
    write_config("second", "[\"7100\", \"8100:udp\"]");
    hup(&server);
    server.expect("reloaded");
    // The reader applies the new filter on its own thread: knock once it holds.
    server.expect("the new kernel filter is in force");
    assert_eq!(
        net.knock(&["-d", "50ms", "-p", "7100,8100:udp", &net.v4(1)]),
        Some(0)
    );
    server.expect("echo second");

    let (status, log) = server.terminate();
    assert_eq!(status, Some(0), "{}", log.join("\n"));
    let nobody = String::from_utf8(
        Command::new("id")
            .args(["-u", "nobody"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let nobody = nobody.trim();
    assert_eq!(
        ran(dir.path()),
        format!(
            "setup {nobody}\nfirst {0} {nobody}\nsecond {0} {nobody}\nteardown {nobody}\n",
            net.v4(2)
        ),
        "commands ran as nobody, setup first and teardown last"
    );
}

#[test]
fn every_knocks_again_at_once_when_the_source_address_changes() {
    if !can_run() {
        return;
    }
    let net = Net::new();
    let dir = tempfile::tempdir().unwrap();
    let door = "[[door]]\nname = \"udp\"\nsequence = [\"7000:udp\"]";
    let mut server = net.server(&config(dir.path(), door));
    // A long interval: any second knock within it comes from the address change.
    let mut client = Command::new("ip")
        .args(["netns", "exec", &net.cli])
        .arg(assert_cmd::cargo::cargo_bin("knockr"))
        .args(["--every", "10m", "-n", "udp", "-p", "7000", &net.v4(1)])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    server.expect(&format!("echo start {} >> ", net.v4(2)));
    let cli_if = net.srv_if.replace("kvs", "kvc");
    // (Deleting a primary address deletes its subnet's secondaries: del first.)
    sh(&[
        "ip",
        "-n",
        &net.cli,
        "addr",
        "del",
        &format!("{}/24", net.v4(2)),
        "dev",
        &cli_if,
    ]);
    sh(&[
        "ip",
        "-n",
        &net.cli,
        "addr",
        "add",
        &format!("{}/24", net.v4(3)),
        "dev",
        &cli_if,
    ]);
    server.expect(&format!("echo start {} >> ", net.v4(3)));
    unsafe { libc::kill(client.id() as i32, libc::SIGTERM) };
    let status = client.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let mut out = String::new();
    std::io::Read::read_to_string(client.stdout.as_mut().unwrap(), &mut out).unwrap();
    assert!(
        out.contains(&format!("-> {}): knocking now", net.v4(3))),
        "{out}"
    );
    let _ = server.terminate();
}

#[test]
fn at_exit_knockd_reports_the_capture_counters_and_a_burst_is_not_dropped() {
    if !can_run() {
        return;
    }
    let net = Net::new();
    let dir = tempfile::tempdir().unwrap();
    let door = "[[door]]\nname = \"udp\"\nsequence = [\"7000:udp\", \"8000:udp\"]";
    let server = net.server(&config(dir.path(), door));
    let target = net.v4(1);
    net.in_client(move || {
        let socket = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
        // 2,000 packets the kernel filter passes, at once: the capture ring
        // holds them even if the server reads none meanwhile (with a ring of
        // 65,535-byte slots it held 32, and dropped most of such a burst).
        // And 10 the filter does not pass (port 7999).
        for _ in 0..2000 {
            socket.send_to(&[0], (target.as_str(), 7000)).unwrap();
        }
        for _ in 0..10 {
            socket.send_to(&[0], (target.as_str(), 7999)).unwrap();
        }
    });
    // The counters are read when the server stops: let the packets arrive first.
    std::thread::sleep(Duration::from_millis(500));
    let (status, log) = server.terminate();
    assert_eq!(status, Some(0));
    let line = log
        .iter()
        .find(|l| l.contains("capture on "))
        .unwrap_or_else(|| panic!("no capture counters at exit:\n{}", log.join("\n")));
    assert!(
        line.ends_with(&format!(
            "capture on {}: 2000 packets received by the filter, 0 dropped by the kernel, 0 dropped by the interface",
            net.srv_if
        )),
        "{line}"
    );
}

/// A fresh secret in `dir/name`, readable by its owner only.
fn secret_file(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let (base32, _) = knockr::config::secret::new_secret().unwrap();
    let path = dir.join(name);
    std::fs::write(&path, format!("{base32}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

#[test]
fn the_client_opens_a_time_based_door_each_client_under_its_name_and_a_replay_is_refused() {
    if !can_run() {
        return;
    }
    let net = Net::new();
    let dir = tempfile::tempdir().unwrap();
    let [alice, bob] = ["alice", "bob"].map(|n| secret_file(dir.path(), &format!("{n}.secret")));
    let shape = "otp_ports = \"20000-29999\"\notp_protocols = [\"tcp\", \"udp\"]\notp_length = 4\n";
    // The door's own keys come before its [[door.client]] tables.
    let path = dir.path().join("knockd.toml");
    let door = format!(
        "[[door]]\nname = \"team\"\n{shape}tcp_flags = \"syn\"\n\
         start = [\"/bin/sh\", \"-c\", \"echo start %IP% >> {}/ran\"]\n\
         [[door.client]]\nname = \"alice\"\nsecret_file = \"{}\"\n\
         [[door.client]]\nname = \"bob\"\nsecret_file = \"{}\"\n",
        dir.path().display(),
        alice.display(),
        bob.display()
    );
    std::fs::write(&path, door).unwrap();
    let profiles = dir.path().join("profiles.toml");
    let profile = |name: &str, secret: &std::path::Path| {
        format!(
            "[profiles.{name}]\nhost = \"{}\"\nsecret_file = \"{}\"\notp_door = \"team\"\n{shape}delay = \"50ms\"\n",
            net.v4(1),
            secret.display()
        )
    };
    std::fs::write(&profiles, profile("alice", &alice) + &profile("bob", &bob)).unwrap();
    let profiles = profiles.to_str().unwrap();

    // Every knock below falls in one 30 s step: start just after a boundary.
    let into_step = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            % 30
    };
    if into_step() > 15 {
        std::thread::sleep(Duration::from_secs(31 - into_step()));
    }
    let mut server = net.server(&path);
    assert_eq!(net.knock(&["-c", profiles, "alice"]), Some(0));
    server.expect("team (client alice): OPEN SESAME");
    server.expect(&format!("echo start {} >> ", net.v4(2)));
    assert_eq!(net.knock(&["-c", profiles, "bob"]), Some(0));
    server.expect("team (client bob): OPEN SESAME");
    // Alice's knock again in the same step: the very same packets, refused.
    assert_eq!(net.knock(&["-c", profiles, "alice"]), Some(0));
    server
        .expect("team (client alice): sequence already used in its time step: refused as a replay");
    // Still refused after a reload: the replay cache carries over.
    unsafe { libc::kill(server.child.id() as i32, libc::SIGHUP) };
    server.expect("reloaded");
    assert_eq!(net.knock(&["-c", profiles, "alice"]), Some(0));
    let (status, log) = server.terminate();
    assert_eq!(status, Some(0), "{}", log.join("\n"));
    assert!(into_step() < 29, "the test stayed within one step");
    let refused = log
        .iter()
        .filter(|l| l.contains("refused as a replay"))
        .count();
    assert_eq!(refused, 2, "{}", log.join("\n"));
    let opened = log.iter().filter(|l| l.contains("OPEN SESAME")).count();
    assert_eq!(opened, 2, "{}", log.join("\n"));
    assert_eq!(
        ran(dir.path()),
        format!("start {0}\nstart {0}\n", net.v4(2)),
        "alice's and bob's openings ran the start command, the replays did not"
    );
}

/// A door opened by one knock, 7000/udp, whose start command is `/bin/sh -c
/// SCRIPT` (SCRIPT in TOML, quoted).
fn one_knock(dir: &std::path::Path, script: &str) -> std::path::PathBuf {
    let text = format!(
        "[[door]]\nname = \"once\"\nsequence = [\"7000:udp\"]\nstart = [\"/bin/sh\", \"-c\", {script:?}]\n"
    );
    let path = dir.join("knockd.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Before, libpcap's AF_PACKET socket and eventfd (not close-on-exec)
/// reached every command: it could send frames or filter knockd's capture.
#[test]
fn commands_inherit_no_descriptor_of_knockd_but_stdin_stdout_and_stderr() {
    if !can_run() {
        return;
    }
    let net = Net::new();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("fds");
    // The shell lists its own descriptors. `set` expands the glob with no
    // redirection in force; the glob reads /proc/PID/fd through a directory
    // descriptor of its own, the lowest free: 3.
    let script = format!(
        "set -- /proc/$$/fd/*; for f; do printf '%s ' \"${{f##*/}}\"; done > {}",
        out.display()
    );
    let mut server = net.server(&one_knock(dir.path(), &script));
    assert_eq!(net.knock(&["-p", "7000:udp", &net.v4(1)]), Some(0));
    server.expect(&format!("start command for {} finished", net.v4(2)));
    let fds = std::fs::read_to_string(&out).unwrap();
    assert_eq!(fds.trim_end(), "0 1 2 3", "the command's descriptors");
    let (status, _) = server.terminate();
    assert_eq!(status, Some(0));
}

/// Before, every command got knockd's environment, a router's
/// `password_env` variable included.
#[test]
fn commands_get_path_their_door_and_knocker_and_none_of_knockds_environment() {
    if !can_run() {
        return;
    }
    let net = Net::new();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("env");
    // The environment the shell was started with, whatever it sets itself.
    let script = format!("tr '\\0' '\\n' < /proc/$$/environ > {}", out.display());
    let config = one_knock(dir.path(), &script);
    let mut server = net
        .start_server_via(&["env", "ROUTER_PASS=hunter2-secret"], &config)
        .wait_for("listening:");
    let own = std::fs::read(format!("/proc/{}/environ", server.child.id())).unwrap();
    assert!(
        String::from_utf8_lossy(&own).contains("ROUTER_PASS=hunter2-secret"),
        "knockd has the secret"
    );
    assert_eq!(net.knock(&["-p", "7000:udp", &net.v4(1)]), Some(0));
    server.expect(&format!("start command for {} finished", net.v4(2)));
    let env = std::fs::read_to_string(&out).unwrap();
    let mut vars: Vec<&str> = env.lines().collect();
    vars.sort();
    assert_eq!(
        vars,
        [
            "KNOCKR_DOOR=once".to_string(),
            format!("KNOCKR_IP={}", net.v4(2)),
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string()
        ]
    );
    let (status, _) = server.terminate();
    assert_eq!(status, Some(0));
}

/// Before, knockd held a command's whole stderr: 100 MB of it took knockd
/// to 1.28 GB of memory, and the log line was as long as its first lines.
#[test]
fn a_gibibyte_on_a_commands_stderr_is_drained_and_only_its_start_logged() {
    if !can_run() {
        return;
    }
    let net = Net::new();
    let dir = tempfile::tempdir().unwrap();
    let script = "yes 0123456789 | head -c 1073741824 >&2; exit 3";
    let mut server = net.server(&one_knock(dir.path(), script));
    assert_eq!(net.knock(&["-p", "7000:udp", &net.v4(1)]), Some(0));
    server.expect("(1073741824 bytes, 1073737728 cut)");
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.child.id())).unwrap();
    let peak_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    assert!(peak_kib < 64 * 1024, "knockd's peak memory: {peak_kib} KiB");
    let (status, log) = server.terminate();
    assert_eq!(status, Some(0));
    let line = log
        .iter()
        .find(|l| l.contains(" cut)"))
        .expect("the command's line");
    assert!(
        line.contains(
            "once: command returned non-zero status code (exit status 3): 0123456789 | 0123456789"
        ),
        "{line}"
    );
    assert!(line.len() < 6000, "a line of {} bytes", line.len());
}

/// The same two promises after `user =` drops root: the command runs as
/// that account, with only fds 0-2 and only the documented environment.
#[test]
fn after_dropping_root_commands_still_inherit_only_three_descriptors_and_a_clean_environment() {
    if !can_run() {
        return;
    }
    use std::os::unix::fs::PermissionsExt as _;
    let net = Net::new();
    let dir = tempfile::tempdir().unwrap();
    // The command, as nobody, writes its record here. (3 is the directory
    // descriptor the glob reads /proc/PID/fd through, as above.)
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    let out = dir.path().join("seen");
    let script = format!(
        "exec > {}; id -u; set -- /proc/$$/fd/*; for f; do printf '%s ' \"${{f##*/}}\"; done; \
         echo; tr '\\0' '\\n' < /proc/$$/environ",
        out.display()
    );
    let config = dir.path().join("knockd.toml");
    std::fs::write(
        &config,
        format!(
            "[knockd]\nuser = \"nobody\"\n[[door]]\nname = \"once\"\nsequence = [\"7000:udp\"]\n\
             start = [\"/bin/sh\", \"-c\", {script:?}]\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut server = net
        .start_server_via(&["env", "ROUTER_PASS=hunter2-secret"], &config)
        .wait_for("listening:");
    server.expect("now running as nobody");
    assert_eq!(net.knock(&["-p", "7000:udp", &net.v4(1)]), Some(0));
    server.expect(&format!("start command for {} finished", net.v4(2)));
    let seen = std::fs::read_to_string(&out).unwrap();
    let mut lines = seen.lines();
    let nobody = String::from_utf8(
        Command::new("id")
            .args(["-u", "nobody"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert_eq!(lines.next(), Some(nobody.trim()), "runs as nobody");
    assert_eq!(lines.next().map(str::trim_end), Some("0 1 2 3"), "{seen}");
    let mut vars: Vec<&str> = lines.collect();
    vars.sort();
    assert_eq!(
        vars,
        [
            "KNOCKR_DOOR=once".to_string(),
            format!("KNOCKR_IP={}", net.v4(2)),
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string()
        ],
        "{seen}"
    );
    let (status, _) = server.terminate();
    assert_eq!(status, Some(0));
}
