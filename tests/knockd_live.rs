//! `knockr knockd` live, as root: two network namespaces made by the test,
//! joined by a veth pair. The server captures in one, the real `knockr`
//! client knocks from the other. Under CI=true these tests must run; elsewhere
//! without root they skip, saying why. Namespaces are removed on drop.
#![cfg(feature = "server")]

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::PATIENCE;

/// Whether this test may run; panics under CI=true when it cannot.
fn can_run() -> bool {
    let root = unsafe { libc::geteuid() } == 0;
    let ip = Command::new("ip")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if root && ip {
        return true;
    }
    let why = if root {
        "the `ip` command (iproute2) is missing"
    } else {
        "it needs root to make network namespaces"
    };
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "live test cannot run under CI: {why}"
    );
    eprintln!("skipping live test: {why}");
    false
}

fn sh(args: &[&str]) {
    let status = Command::new(args[0]).args(&args[1..]).status().unwrap();
    assert!(status.success(), "{args:?} failed");
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Two namespaces, `srv` (10.200.N.1, fd00:200:N::1) and `cli` (10.200.N.2,
/// fd00:200:N::2, plus any extra addresses), joined by a veth pair.
struct Net {
    srv: String,
    cli: String,
    /// The server side's interface name.
    srv_if: String,
    n: u32,
}

impl Net {
    fn new() -> Net {
        let n = NEXT.fetch_add(1, Ordering::SeqCst) + 10;
        let tag = format!("{}{}", std::process::id() % 100_000, n);
        let net = Net {
            srv: format!("kr-s{tag}"),
            cli: format!("kr-c{tag}"),
            srv_if: format!("kvs{tag}"),
            n,
        };
        let cli_if = format!("kvc{tag}");
        sh(&["ip", "netns", "add", &net.srv]);
        sh(&["ip", "netns", "add", &net.cli]);
        sh(&[
            "ip",
            "link",
            "add",
            &net.srv_if,
            "netns",
            &net.srv,
            "type",
            "veth",
            "peer",
            "name",
            &cli_if,
            "netns",
            &net.cli,
        ]);
        for (ns, ifname, host) in [(&net.srv, &net.srv_if, 1), (&net.cli, &cli_if, 2)] {
            sh(&["ip", "-n", ns, "link", "set", "lo", "up"]);
            sh(&[
                "ip",
                "-n",
                ns,
                "addr",
                "add",
                &format!("10.200.{}.{host}/24", net.n),
                "dev",
                ifname,
            ]);
            sh(&[
                "ip",
                "-n",
                ns,
                "-6",
                "addr",
                "add",
                &format!("fd00:200:{}::{host}/64", net.n),
                "dev",
                ifname,
                "nodad",
            ]);
            sh(&["ip", "-n", ns, "link", "set", ifname, "up"]);
        }
        net
    }

    fn v4(&self, host: u8) -> String {
        format!("10.200.{}.{host}", self.n)
    }

    fn v6(&self, host: u8) -> String {
        format!("fd00:200:{}::{host}", self.n)
    }

    /// Adds `count` more IPv4 addresses to the client side: .101, .102, ...
    fn client_addresses(&self, count: u8) -> Vec<String> {
        let ifname = self.srv_if.replace("kvs", "kvc");
        (0..count)
            .map(|i| {
                let addr = self.v4(101 + i);
                sh(&[
                    "ip",
                    "-n",
                    &self.cli,
                    "addr",
                    "add",
                    &format!("{addr}/24"),
                    "dev",
                    &ifname,
                ]);
                addr
            })
            .collect()
    }

    /// Starts `knockr knockd` in the server namespace and waits until it listens.
    fn server(&self, config: &std::path::Path) -> Server {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.srv])
            .arg(assert_cmd::cargo::cargo_bin("knockr"))
            .args(["knockd", "-v", "-i", &self.srv_if, "-c"])
            .arg(config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let server = Server {
            child,
            lines,
            log: Vec::new(),
        };
        server.wait_for("listening:")
    }

    /// Runs the knockr client in the client namespace; returns its exit status.
    fn knock(&self, args: &[&str]) -> Option<i32> {
        let output = Command::new("ip")
            .args(["netns", "exec", &self.cli])
            .arg(assert_cmd::cargo::cargo_bin("knockr"))
            .args(args)
            .output()
            .unwrap();
        output.status.code()
    }

    /// Runs `f` on a thread inside the client namespace.
    fn in_client<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/var/run/netns/{}", self.cli);
        std::thread::spawn(move || {
            let ns = std::fs::File::open(path).unwrap();
            use std::os::fd::AsRawFd;
            // SAFETY: setns on this thread only, with a namespace fd we opened.
            assert_eq!(
                unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) },
                0,
                "setns failed"
            );
            f()
        })
        .join()
        .unwrap()
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in [&self.srv, &self.cli] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

struct Server {
    child: Child,
    lines: mpsc::Receiver<String>,
    /// Every line read so far.
    log: Vec<String>,
}

impl Server {
    /// Waits for a log line containing `needle` (panics after `PATIENCE`).
    fn wait_for(mut self, needle: &str) -> Server {
        self.expect(needle);
        self
    }

    fn expect(&mut self, needle: &str) {
        let deadline = Instant::now() + PATIENCE;
        if self.log.iter().any(|l| l.contains(needle)) {
            return;
        }
        while let Ok(line) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            let found = line.contains(needle);
            self.log.push(line);
            if found {
                return;
            }
        }
        panic!(
            "the server never logged {needle:?}; it logged:\n{}",
            self.log.join("\n")
        );
    }

    /// Sends SIGTERM and waits for the exit status.
    fn terminate(mut self) -> (Option<i32>, Vec<String>) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                self.log.extend(self.lines.try_iter());
                return (status.code(), std::mem::take(&mut self.log));
            }
            assert!(
                Instant::now() < deadline,
                "knockd did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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

/// A fresh secret in `dir/name`, readable by its owner only.
fn secret_file(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let (base32, _) = knockr::otp::new_secret().unwrap();
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
