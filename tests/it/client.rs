//! The client end to end on loopback: real sockets receive the knocks.

use std::time::Duration;

use crate::support;
use crate::support::{Door, closed_port, json, knockr, profiles};

#[test]
fn knocks_arrive_in_order_with_their_protocol_payload_and_delay() {
    let door = Door::new("127.0.1.10");
    let (a, b, c) = (door.tcp(), door.udp(), door.tcp());
    let file = profiles(&format!(
        "[profiles.lab]\nhost = \"127.0.1.10\"\nsequence = [\"{a}\", \"{b}:udp\", \"{c}:tcp\"]\n\
         delay = \"300ms\"\nudp_payload = \"hex:c0ffee\"\n"
    ));
    assert_eq!(file.run(&["lab"]).status.code(), Some(0));

    let seen = door.wait_for(3);
    let got: Vec<(u16, &str)> = seen.iter().map(|s| (s.to.port(), s.proto)).collect();
    assert_eq!(
        got,
        [(a, "tcp"), (b, "udp"), (c, "tcp")],
        "each knock once, in order, with its protocol"
    );
    assert_eq!(seen[1].payload, [0xc0, 0xff, 0xee]);
    for pair in seen.windows(2) {
        let gap = pair[1].at - pair[0].at;
        // Lower bound only: knockr must never knock sooner than the delay.
        assert!(
            gap >= Duration::from_millis(250),
            "knocks {gap:?} apart, delay is 300ms"
        );
    }
}

#[test]
fn udp_knocks_carry_one_zero_byte_by_default_like_c_knock() {
    let door = Door::new("127.0.1.11");
    let port = door.udp();
    knockr(tempfile::tempdir().unwrap().path())
        .args(["-n", "udp", "-p", &port.to_string(), "127.0.1.11"])
        .assert()
        .success();
    let seen = door.wait_for(1);
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].payload, [0]);
}

#[test]
fn comma_lists_and_repeated_flags_make_one_sequence() {
    let door = Door::new("127.0.1.12");
    let (a, b, c) = (door.tcp(), door.udp(), door.udp());
    knockr(tempfile::tempdir().unwrap().path())
        .args([
            "-d",
            "50",
            "-p",
            &format!("{a},{b}:udp"),
            "-p",
            &format!("{c}:UDP"),
            "127.0.1.12",
        ])
        .assert()
        .success();
    let got: Vec<(u16, &str)> = door
        .wait_for(3)
        .iter()
        .map(|s| (s.to.port(), s.proto))
        .collect();
    assert_eq!(got, [(a, "tcp"), (b, "udp"), (c, "udp")]);
}

#[test]
fn several_hosts_are_knocked_at_the_same_time() {
    // Five hosts, each its own profile with its own listeners, knocked as one group.
    let doors: Vec<Door> = (21..26)
        .map(|n| Door::new(&format!("127.0.1.{n}")))
        .collect();
    let mut text =
        String::from("[profiles.fleet]\ninclude = [\"h21\", \"h22\", \"h23\", \"h24\", \"h25\"]\n");
    let mut firsts = Vec::new();
    for (n, door) in (21..26).zip(&doors) {
        let (first, second) = (door.tcp(), door.tcp());
        firsts.push(std::net::SocketAddr::new(door.ip, first));
        text += &format!(
            "[profiles.h{n}]\nhost = \"{}\"\nsequence = [\"{first}\", \"{second}\"]\ndelay = \"500ms\"\n",
            door.ip
        );
    }
    let file = profiles(&text);
    let output = file.run(&["--json", "fleet"]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = json(&output);
    let hosts: Vec<&str> = report["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["host"].as_str().unwrap())
        .collect();
    assert_eq!(
        hosts,
        [
            "127.0.1.21",
            "127.0.1.22",
            "127.0.1.23",
            "127.0.1.24",
            "127.0.1.25"
        ],
        "plan order kept"
    );

    let arrivals: Vec<support::Arrival> = doors.iter().flat_map(|d| d.wait_for(2)).collect();
    assert_eq!(arrivals.len(), 10, "two knocks on each of five hosts");
    let is_first = |a: &support::Arrival| firsts.contains(&a.to);
    let last_first = arrivals
        .iter()
        .filter(|a| is_first(a))
        .map(|a| a.at)
        .max()
        .unwrap();
    let first_second = arrivals
        .iter()
        .filter(|a| !is_first(a))
        .map(|a| a.at)
        .min()
        .unwrap();
    // Knocked one host after another, host 2's first knock would follow host 1's second.
    assert!(
        last_first < first_second,
        "every host's first knock came before any host's second"
    );
}

#[test]
fn check_reports_open_when_the_port_listens() {
    let door = Door::new("127.0.1.31");
    let knock = door.udp();
    let ssh = door.tcp();
    let output = knockr(tempfile::tempdir().unwrap().path())
        .args([
            "--json",
            "-p",
            &format!("{knock}:udp"),
            "--check",
            &ssh.to_string(),
            "127.0.1.31",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let report = json(&output);
    assert_eq!(report["ok"], true);
    assert_eq!(report["targets"][0]["check"]["port"], ssh);
    assert_eq!(report["targets"][0]["check"]["open"], true);
    assert!(report["targets"][0]["check"]["ms"].is_u64());
    let seen = door.wait_for(2);
    assert_eq!(
        seen.iter().map(|s| s.proto).collect::<Vec<_>>(),
        ["udp", "tcp"],
        "the knock, then the check"
    );
}

#[test]
fn check_reports_closed_and_exits_1_when_nothing_listens() {
    let door = Door::new("127.0.1.32");
    let knock = door.tcp();
    let shut = closed_port("127.0.1.32");
    let file = profiles(&format!(
        "[profiles.p]\nhost = \"127.0.1.32\"\nsequence = [\"{knock}\"]\ncheck = {shut}\ncheck_timeout = \"600ms\"\n"
    ));
    let output = file.run(&["--json", "p"]);
    assert_eq!(output.status.code(), Some(1));
    let report = json(&output);
    assert_eq!(report["ok"], false);
    let target = &report["targets"][0];
    assert_eq!(target["check"]["open"], false);
    assert_eq!(target["check"]["error"], "connection refused");
    assert_eq!(target["knocks"][0]["sent"], true);
    assert!(
        target["error"]
            .as_str()
            .unwrap()
            .contains(&format!("port {shut} on 127.0.1.32 is still closed"))
    );

    // The human summary says so on stdout too.
    let output = file.run(&["p"]);
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.contains(&format!("port {shut} CLOSED")), "{stdout}");
}

#[test]
fn a_name_that_does_not_resolve_fails_only_its_own_target() {
    let door = Door::new("127.0.1.40");
    let port = door.tcp();
    let output = knockr(tempfile::tempdir().unwrap().path())
        // `.invalid` never resolves and is answered without asking any DNS server.
        .args([
            "--json",
            "-p",
            &port.to_string(),
            "no-such-host.invalid",
            "127.0.1.40",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let report = json(&output);
    assert_eq!(report["ok"], false);
    let bad = &report["targets"][0];
    assert_eq!(bad["host"], "no-such-host.invalid");
    assert_eq!(bad["ok"], false);
    assert_eq!(bad["address"], serde_json::Value::Null);
    assert_eq!(
        bad["error"],
        "cannot resolve no-such-host.invalid: no such host"
    );
    assert_eq!(bad["knocks"][0]["sent"], false);
    let good = &report["targets"][1];
    assert_eq!(good["ok"], true);
    assert_eq!(good["address"], "127.0.1.40");
    assert_eq!(door.wait_for(1).len(), 1, "the good host was knocked");
}

#[test]
fn ipv6_loopback_is_knocked() {
    let door = Door::new("::1");
    let port = door.udp();
    knockr(tempfile::tempdir().unwrap().path())
        .args(["-6", "-p", &format!("{port}:udp"), "::1"])
        .assert()
        .success();
    let seen = door.wait_for(1);
    assert_eq!(seen.len(), 1);
    assert!(seen[0].from.is_ipv6());
}

#[test]
fn connect_mode_completes_a_connection_per_knock() {
    let door = Door::new("127.0.1.41");
    let (a, b) = (door.tcp(), door.tcp());
    knockr(tempfile::tempdir().unwrap().path())
        .args([
            "--mode",
            "connect",
            "-t",
            "2s",
            "-d",
            "10ms",
            "-p",
            &format!("{a},{b}"),
            "127.0.1.41",
        ])
        .assert()
        .success();
    let ports: Vec<u16> = door.wait_for(2).iter().map(|s| s.to.port()).collect();
    assert_eq!(ports, [a, b]);
}

#[test]
fn quiet_prints_nothing_on_success_and_the_error_on_failure() {
    let door = Door::new("127.0.1.42");
    let port = door.tcp();
    let home = tempfile::tempdir().unwrap();
    let output = knockr(home.path())
        .args(["-q", "-p", &port.to_string(), "127.0.1.42"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert!(output.stdout.is_empty() && output.stderr.is_empty());

    let output = knockr(home.path())
        .args(["-q", "-p", &port.to_string(), "x.invalid"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    assert_eq!(
        String::from_utf8(output.stderr).unwrap(),
        "knockr: x.invalid: cannot resolve x.invalid: no such host\n"
    );
}

#[test]
fn dry_run_resolves_but_sends_nothing() {
    let door = Door::new("127.0.1.50");
    let (a, b) = (door.tcp(), door.udp());
    let output = knockr(tempfile::tempdir().unwrap().path())
        .args([
            "--dry-run",
            "--check",
            "22",
            "-p",
            &format!("{a},{b}:udp"),
            "127.0.1.50",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(
        stdout,
        format!("-  127.0.1.50  127.0.1.50  would knock {a}:tcp {b}:udp\n")
    );
    assert!(
        door.collect_for(Duration::from_millis(500)).is_empty(),
        "nothing was sent"
    );

    let output = knockr(tempfile::tempdir().unwrap().path())
        .args(["--dry-run", "--json", "-p", &a.to_string(), "127.0.1.50"])
        .output()
        .unwrap();
    let report = json(&output);
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["targets"][0]["knocks"][0]["sent"], false);
    assert!(door.collect_for(Duration::from_millis(300)).is_empty());
}

#[test]
fn verbose_prints_each_knock_on_stderr() {
    let door = Door::new("127.0.1.51");
    let (a, b) = (door.tcp(), door.tcp());
    let output = knockr(tempfile::tempdir().unwrap().path())
        .args(["-v", "-d", "100ms", "-p", &format!("{a},{b}"), "127.0.1.51"])
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    // The first knock's answer is watched for until the next knock is due.
    assert_eq!(
        lines[0],
        format!("127.0.1.51: knock 1/2 {a}:tcp to 127.0.1.51 sent, answer: open")
    );
    // The last one is not waited for (no check follows), so its answer may not be seen.
    assert!(
        lines[1].starts_with(&format!(
            "127.0.1.51: knock 2/2 {b}:tcp to 127.0.1.51 sent, answer: "
        )),
        "{stderr}"
    );
}

#[test]
fn source_binds_the_knocks_and_the_check_to_a_local_address() {
    let door = Door::new("127.0.1.78");
    let (knock, check) = (door.udp(), door.tcp());
    let output = knockr(tempfile::tempdir().unwrap().path())
        .args([
            "--source",
            "127.0.1.77",
            "-p",
            &format!("{knock}:udp"),
            "--check",
            &check.to_string(),
            "127.0.1.78",
        ])
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seen = door.wait_for(2);
    assert_eq!(seen.len(), 2);
    for arrival in &seen {
        assert_eq!(
            arrival.from.ip().to_string(),
            "127.0.1.77",
            "{} came from the wrong address",
            arrival.proto
        );
    }
}

#[test]
fn interface_binds_the_knocks_to_a_device() {
    let door = Door::new("127.0.1.79");
    let port = door.udp();
    let home = tempfile::tempdir().unwrap();
    let ok = knockr(home.path())
        .args([
            "--interface",
            "lo",
            "-n",
            "udp",
            "-p",
            &port.to_string(),
            "127.0.1.79",
        ])
        .output()
        .unwrap();
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_eq!(door.wait_for(1).len(), 1);
    // An interface this machine lacks is a usage error: nothing is tried.
    let output = knockr(home.path())
        .args([
            "--json",
            "--interface",
            "no-such-if0",
            "-p",
            &port.to_string(),
            "127.0.1.79",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with(
            "knockr: --interface no-such-if0 is not a network interface of this machine: expected one of "
        ) && stderr.contains("lo"),
        "{stderr}"
    );
}

/// As root, in a namespace whose hosts file gives one name both loopback
/// addresses: the machine's own /etc/hosts may give `localhost` only one,
/// and then that is all getaddrinfo, and knockr, find.
#[cfg(feature = "server")]
#[test]
fn all_addresses_knocks_every_address_of_a_name() {
    use crate::support::netns::{Net, NetnsEtc, can_run};
    if !can_run() {
        return;
    }
    let net = Net::new();
    let etc = NetnsEtc::new(&net.cli);
    etc.set("hosts", Some("127.0.0.1 dual\n::1 dual\n"));
    etc.set("host.conf", Some("multi on\n"));
    let (v4, v6, port) = net.in_client(|| {
        let v4 = Door::new("127.0.0.1");
        let v6 = Door::new("::1");
        let port = loop {
            let port = v4.udp();
            if std::net::UdpSocket::bind(("::1", port)).is_ok() {
                break port;
            }
        };
        v6.udp_on(port);
        (v4, v6, port)
    });
    let home = tempfile::tempdir().unwrap();
    let output = net
        .in_client_ns(assert_cmd::cargo::cargo_bin("knockr"))
        .env_remove("KNOCKR_CONFIG")
        .env("HOME", home.path())
        .args([
            "--json",
            "--all-addresses",
            "-n",
            "udp",
            "-p",
            &port.to_string(),
            "dual",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let report = json(&output);
    let addresses: Vec<&str> = report["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["address"].as_str().unwrap())
        .collect();
    assert_eq!(addresses, ["::1", "127.0.0.1"], "in getaddrinfo's order");
    assert_eq!(v4.wait_for(1).len(), 1);
    assert_eq!(v6.wait_for(1).len(), 1);
}

#[test]
fn retry_knocks_again_while_the_check_finds_the_port_closed() {
    let door = Door::new("127.0.1.80");
    let knock = door.udp();
    let shut = closed_port("127.0.1.80");
    let file = profiles(&format!(
        "[profiles.p]\nhost = \"127.0.1.80\"\nsequence = [\"{knock}:udp\"]\ncheck = {shut}\ncheck_timeout = \"300ms\"\n"
    ));
    let output = file.run(&["--json", "--retry", "2", "p"]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "still closed after every round"
    );
    let report = json(&output);
    assert_eq!(report["targets"][0]["rounds"], 3);
    assert_eq!(report["targets"][0]["check"]["open"], false);
    assert_eq!(
        door.wait_for(3).len(),
        3,
        "the sequence was sent once per round"
    );
}

/// A stand-in SSH server: sends its banner on every connection and records
/// the first line each client sends.
fn fake_ssh_server(ip: &str) -> (u16, std::sync::mpsc::Receiver<String>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind((ip, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten().take(5) {
            let tx = tx.clone();
            std::thread::spawn(move || {
                let _ = stream.write_all(b"SSH-2.0-knockr-test\r\n");
                stream
                    .set_read_timeout(Some(Duration::from_secs(5)))
                    .unwrap();
                let mut line = String::new();
                if BufReader::new(&stream).read_line(&mut line).is_ok() && !line.is_empty() {
                    let _ = tx.send(line);
                }
            });
        }
    });
    (port, rx)
}

#[test]
fn connect_knocks_then_relays_the_real_ssh_client() {
    if std::process::Command::new("ssh")
        .arg("-V")
        .output()
        .is_err()
    {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "ssh (openssh-client) is missing under CI"
        );
        eprintln!("skipping: no ssh client here (install openssh-client)");
        return;
    }
    let door = Door::new("127.0.1.90");
    let knock = door.udp();
    let (ssh_port, banners) = fake_ssh_server("127.0.1.90");
    let file = profiles(&format!(
        "[profiles.box]\nhost = \"127.0.1.90\"\nsequence = [\"{knock}:udp\"]\ncheck = {ssh_port}\n"
    ));
    let proxy = format!(
        "{} connect -c {} %n",
        assert_cmd::cargo::cargo_bin("knockr").display(),
        file.path.display()
    );
    let output = std::process::Command::new("ssh")
        .args([
            "-v",
            "-F",
            "/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=20",
        ])
        .args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
        ])
        .arg("-o")
        .arg(format!("ProxyCommand={proxy}"))
        .arg("box")
        .stdin(std::process::Stdio::null())
        .env("HOME", file.dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(door.wait_for(1).len(), 1, "the knock arrived");
    // Both directions went through knockr: ssh read the server's banner and
    // the server read ssh's.
    assert!(
        stderr.contains("remote software version knockr-test"),
        "{stderr}"
    );
    let banner = banners
        .recv_timeout(Duration::from_secs(10))
        .expect("the server got ssh's banner");
    assert!(banner.starts_with("SSH-2.0-OpenSSH"), "{banner:?}");
}

#[test]
fn connect_without_a_port_is_a_usage_error_and_a_closed_port_fails() {
    let door = Door::new("127.0.1.91");
    let knock = door.udp();
    let shut = closed_port("127.0.1.91");
    let file = profiles(&format!(
        "[profiles.box]\nhost = \"127.0.1.91\"\nsequence = [\"{knock}:udp\"]\ncheck_timeout = \"300ms\"\n"
    ));
    let output = file.run(&["connect", "box"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no port to connect to"));
    let output = file.run(&["connect", "box", &shut.to_string()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        output.stdout.is_empty(),
        "nothing but relayed bytes on stdout"
    );
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains(&format!("port {shut} on 127.0.1.91 is still closed"))
    );
}

#[test]
fn every_knocks_each_interval_one_line_a_round_until_sigterm() {
    let door = Door::new("127.0.1.92");
    let port = door.udp();
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("knockr"))
        .args([
            "--every",
            "1s",
            "-n",
            "udp",
            "-p",
            &port.to_string(),
            "127.0.1.92",
        ])
        .env_remove("KNOCKR_CONFIG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Four knocks arrive, one per round: rounds 1 to 3 have then printed
    // their lines (a signal stops round 4 where it is, line or not).
    assert_eq!(door.wait_for(4).len(), 4);
    send_signal(child.id(), "TERM");
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "a clean exit on SIGTERM");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let rounds: Vec<&str> = stdout.lines().filter(|l| l.contains(" round ")).collect();
    assert!(rounds.len() >= 3, "{stdout}");
    assert!(
        rounds[0].ends_with("round 1: 1/1 targets ok"),
        "{}",
        rounds[0]
    );
    assert!(
        rounds[2].ends_with("round 3: 1/1 targets ok"),
        "{}",
        rounds[2]
    );
}

/// The server refuses a step's sequence once used: each round of `--every`
/// must knock the sequence of its own step, not the first round's again.
#[test]
fn every_knocks_each_round_the_time_based_sequence_of_its_own_step() {
    let door = Door::new("127.0.1.94");
    for port in 47310..=47329 {
        door.udp_on(port);
    }
    let file = profiles(
        "[profiles.otp]\nhost = \"127.0.1.94\"\nsecret_file = \"SECRET\"\notp_door = \"openSSH\"\notp_length = 3\n\
         otp_ports = \"47310-47329\"\notp_protocols = [\"udp\"]\notp_step = \"1s\"\ndelay = \"10ms\"\n",
    );
    private_secret(&file);
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    let first = now();
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("knockr"))
        .args(["--every", "1200ms", "-c"])
        .arg(&file.path)
        .arg("otp")
        .env_remove("KNOCKR_CONFIG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let seen: Vec<u16> = door.wait_for(9).iter().map(|a| a.to.port()).collect();
    send_signal(child.id(), "TERM");
    let last = now();
    assert_eq!(child.wait_with_output().unwrap().status.code(), Some(0));
    let udp = vec![knockr::core::knock::Proto::Udp];
    let spec = knockr::core::otp::OtpSpec::new(3, 47310..=47329, vec![], udp, 1).unwrap();
    let of_step = |step: u64| -> Vec<u16> {
        spec.sequence(b"12345678901234567890", "openSSH", step)
            .iter()
            .map(|k| k.port)
            .collect()
    };
    let rounds: Vec<&[u16]> = seen.chunks(3).collect();
    for round in &rounds {
        assert!(
            (first..=last).any(|step| of_step(step) == *round),
            "{round:?} is no step's sequence between {first} and {last}"
        );
    }
    assert!(
        rounds.windows(2).all(|w| w[0] != w[1]),
        "a round repeated the previous round's sequence: {rounds:?}"
    );
}

/// Writes the RFC 6238 test secret ("12345678901234567890") to a file only
/// its owner can read, next to the profiles, and puts its path where the
/// profiles say `SECRET`.
fn private_secret(file: &support::Profiles) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let secret = file.dir.path().join("secret");
    std::fs::write(&secret, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let text = std::fs::read_to_string(&file.path)
        .unwrap()
        .replace("SECRET", &secret.display().to_string());
    std::fs::write(&file.path, text).unwrap();
    secret
}

/// Sends a signal by name with kill(1), so this file needs no libc.
fn send_signal(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn a_profile_with_a_secret_knocks_the_current_time_based_sequence() {
    use std::os::unix::fs::PermissionsExt as _;
    let door = Door::new("127.0.1.93");
    for port in 47300..=47309 {
        door.udp_on(port);
    }
    let file = profiles(
        "[profiles.otp]\nhost = \"127.0.1.93\"\nsecret_file = \"SECRET\"\notp_door = \"openSSH\"\notp_length = 3\n\
         otp_ports = \"47300-47309\"\notp_protocols = [\"udp\"]\ndelay = \"20ms\"\n",
    );
    let secret = private_secret(&file);

    let udp = vec![knockr::core::knock::Proto::Udp];
    let spec = knockr::core::otp::OtpSpec::new(3, 47300..=47309, vec![], udp, 30).unwrap();
    let step = || {
        spec.step_of(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
        )
    };
    // A run that straddles a step boundary is tried again.
    for _ in 0..2 {
        let before = step();
        let output = file.run(&["otp"]);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let seen: Vec<u16> = door.wait_for(3).iter().map(|a| a.to.port()).collect();
        if step() != before {
            continue;
        }
        let expected: Vec<u16> = spec
            .sequence(b"12345678901234567890", "openSSH", before)
            .iter()
            .map(|k| k.port)
            .collect();
        assert_eq!(seen, expected);
        // A secret file others can read is refused, and its content never shown.
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
        let output = file.run(&["otp"]);
        assert_eq!(output.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("can be read by others (mode 644): refused"),
            "{stderr}"
        );
        assert!(!stderr.contains("GEZD"));
        return;
    }
    panic!("two runs in a row crossed a 30 s step boundary");
}

#[test]
fn connect_takes_knockings_flags_and_a_dry_run_neither_knocks_nor_connects() {
    let door = Door::new("127.0.1.95");
    let (knock, check) = (door.udp(), door.tcp());
    let file = profiles(&format!(
        "[profiles.box]\nhost = \"127.0.1.95\"\nsequence = [\"{knock}:udp\"]\ncheck = {check}\n"
    ));
    let output = file.run(&["connect", "--dry-run", "box"]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.stdout.is_empty(), "stdout is the relay's");
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        format!(
            "knockr: dry run: would knock {knock}:udp on 127.0.1.95, wait for port {check}, then connect to it\n"
        )
    );
    assert!(
        door.collect_for(Duration::from_millis(300)).is_empty(),
        "a dry run sends nothing and connects nothing"
    );

    // Ad hoc, from a source address, each knock said on stderr: the knock,
    // the check and the relayed connection all come from that address.
    let output = knockr(tempfile::tempdir().unwrap().path())
        .args([
            "connect",
            "-v",
            "-p",
            &format!("{knock}:udp"),
            "--source",
            "127.0.1.96",
            "127.0.1.95",
            &check.to_string(),
        ])
        .write_stdin("")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "127.0.1.95: knock 1/1 {knock}:udp to 127.0.1.95 sent"
        )),
        "{stderr}"
    );
    let seen = door.wait_for(3);
    let got: Vec<(&str, u16, String)> = seen
        .iter()
        .map(|a| (a.proto, a.to.port(), a.from.ip().to_string()))
        .collect();
    let from = "127.0.1.96".to_string();
    assert_eq!(
        got,
        [
            ("udp", knock, from.clone()),
            ("tcp", check, from.clone()),
            ("tcp", check, from)
        ],
        "the knock, the check, the relayed connection"
    );
}

/// Reproduced: a SIGTERM or SIGINT during a round of `--every` was only
/// looked at after the round, so the rest of a slow sequence still went out
/// and the exit waited for it (6 s here).
#[test]
fn regression_a_signal_during_a_round_of_every_let_the_round_finish() {
    let spawn = |door: &Door| {
        let ports: Vec<String> = (0..3).map(|_| format!("{}:udp", door.udp())).collect();
        std::process::Command::new(assert_cmd::cargo::cargo_bin("knockr"))
            .args(["--every", "1s", "-d", "3s", "-p", &ports.join(",")])
            .arg(door.ip.to_string())
            .env_remove("KNOCKR_CONFIG")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let (term, int) = (Door::new("127.0.1.97"), Door::new("127.0.1.98"));
    let mut children = [(spawn(&term), "TERM"), (spawn(&int), "INT")];
    for (door, (child, signal)) in [&term, &int].into_iter().zip(&mut children) {
        assert_eq!(door.wait_for(1).len(), 1, "the first knock of the round");
        send_signal(child.id(), signal);
    }
    let signalled = std::time::Instant::now();
    for (child, signal) in &mut children {
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if signalled.elapsed() > Duration::from_secs(5) {
                let _ = child.kill();
                panic!("SIG{signal}: still running 5 s after the signal");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(status.code(), Some(0), "SIG{signal}");
        assert!(
            signalled.elapsed() < Duration::from_secs(1),
            "SIG{signal}: the exit took {:?}",
            signalled.elapsed()
        );
    }
    // The second knocks were due 3 s after the first.
    for door in [&term, &int] {
        assert!(
            door.collect_for(Duration::from_millis(3500)).is_empty(),
            "a knock went out after the signal"
        );
    }
}

/// The C knock's `knock [-u] HOST PORT[:PROTO]...` and the Go knockr's
/// `knockr [-s] [-n udp] ADDRESS PORT,PORT,...` knock as they did there; on
/// main both were read as profile names ("there is no profiles file").
#[test]
fn the_c_knock_and_go_knockr_command_lines_knock_as_they_did_there() {
    let door = Door::new("127.0.1.99");
    let (a, b, c) = (door.udp(), door.tcp(), door.udp());
    let home = tempfile::tempdir().unwrap();
    let output = knockr(home.path())
        .args(["-u", "-d", "50", "127.0.1.99"])
        .args([a.to_string(), format!("{b}:tcp"), c.to_string()])
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let got: Vec<(u16, &str)> = door
        .wait_for(3)
        .iter()
        .map(|s| (s.to.port(), s.proto))
        .collect();
    assert_eq!(
        got,
        [(a, "udp"), (b, "tcp"), (c, "udp")],
        "-u: bare ports are UDP"
    );

    let output = knockr(home.path())
        .args([
            "-s",
            "-n",
            "udp",
            "-d",
            "50ms",
            "127.0.1.99",
            &format!("{a},{c}"),
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert!(
        output.stdout.is_empty() && output.stderr.is_empty(),
        "-s: silent"
    );
    let got: Vec<u16> = door.wait_for(2).iter().map(|s| s.to.port()).collect();
    assert_eq!(got, [a, c]);

    // A profile name always wins: `gw` is a profile, so `7000` after it is
    // no port of an ad-hoc knock, and nothing is sent.
    let file = profiles(&format!(
        "[profiles.gw]\nhost = \"127.0.1.99\"\nsequence = [\"{c}:udp\"]\n"
    ));
    assert_eq!(file.run(&["gw"]).status.code(), Some(0));
    assert_eq!(door.wait_for(1).len(), 1);
    let output = file.run(&["gw", &a.to_string()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr).starts_with(&format!(
            "knockr: `{a}` after the profile `gw` is a knock, not a profile"
        )),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // A word that is neither a profile nor a host says what would be.
    let output = file.run(&["gw.example.net"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr).starts_with(
            "knockr: `gw.example.net` is not a profile but a host: to knock it, give its ports"
        ),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(door.collect_for(Duration::from_millis(300)).is_empty());
}

/// Reproduced: `127.1` was looked up as a name ("cannot resolve 127.1: no
/// such host"); ssh, ping and getaddrinfo read it as 127.0.0.1.
#[test]
fn regression_inet_aton_addresses_were_looked_up_as_names() {
    let door = Door::new("127.0.0.1");
    let port = door.udp();
    let home = tempfile::tempdir().unwrap();
    for host in ["127.1", "0x7f.0.0.1", "127.0.1"] {
        let output = knockr(home.path())
            .args(["--json", "-p", &format!("{port}:udp"), host])
            .output()
            .unwrap();
        assert_eq!(
            output.status.code(),
            Some(0),
            "{host}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let report = json(&output);
        assert_eq!(report["targets"][0]["host"], host, "shown as written");
        assert_eq!(report["targets"][0]["address"], "127.0.0.1");
        assert_eq!(door.wait_for(1).len(), 1, "{host}");
    }
}

/// `fe80::1%IFACE` knocks the link-local address through that interface, as
/// ssh would; both ends are in namespaces of the test's own making.
#[cfg(feature = "server")]
#[test]
fn a_scoped_link_local_address_is_knocked_through_its_interface() {
    use crate::support::netns::{Net, can_run, enter, sh};
    if !can_run() {
        return;
    }
    let net = Net::new();
    let cli_if = net.cli_if();
    for (ns, ifname, address) in [
        (&net.srv, &net.srv_if, "fe80::1"),
        (&net.cli, &cli_if, "fe80::2"),
    ] {
        sh(&[
            "ip",
            "-n",
            ns,
            "-6",
            "addr",
            "add",
            &format!("{address}/64"),
            "dev",
            ifname,
            "nodad",
        ]);
    }
    // A listener on the far side: its socket is made inside the server namespace.
    let srv = net.srv.clone();
    let (door, port) = std::thread::spawn(move || {
        enter(&srv);
        let door = Door::new("::");
        let port = door.udp();
        (door, port)
    })
    .join()
    .unwrap();
    let host = format!("fe80::1%{cli_if}");
    let output = net
        .in_client_ns(assert_cmd::cargo::cargo_bin("knockr"))
        .args(["--json", "-p", &format!("{port}:udp"), &host])
        .env_remove("KNOCKR_CONFIG")
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(json(&output)["targets"][0]["host"], host.as_str());
    let seen = door.wait_for(1);
    assert_eq!(seen.len(), 1, "the knock arrived");
    assert_eq!(seen[0].from.ip().to_string(), "fe80::2");
}
