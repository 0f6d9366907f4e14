//! Network namespaces for live tests, as root: two namespaces joined by a
//! veth pair (`Net`), `knockr knockd` running in one of them (`Server`), and
//! the rule that such tests fail under CI=true rather than skip (`can_run`).
//! Files a namespace sees at /etc (`NetnsEtc`). Everything made here is
//! removed on drop.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::PATIENCE;

/// Whether this test may run; panics under CI=true when it cannot.
pub fn can_run() -> bool {
    can_run_with(&[])
}

/// Whether this test may run with these programs too (the C `knockd`,
/// `hping3`, ...: `scripts/setup.sh` installs them); panics under CI=true
/// when it cannot.
pub fn can_run_with(programs: &[&str]) -> bool {
    let root = unsafe { libc::geteuid() } == 0;
    let missing: Vec<&str> = ["ip"]
        .iter()
        .chain(programs)
        .copied()
        .filter(|p| !on_path(p))
        .collect();
    let why = if !root {
        "it needs root to make network namespaces".to_string()
    } else if !missing.is_empty() {
        format!(
            "these programs are missing: {} (scripts/setup.sh installs them)",
            missing.join(", ")
        )
    } else {
        return true;
    };
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "live test cannot run under CI: {why}"
    );
    eprintln!("skipping live test: {why}");
    false
}

/// Whether `program` is an executable file in a directory of PATH (or the sbin
/// directories, which a root shell has but CI's PATH may lack).
pub fn on_path(program: &str) -> bool {
    which(program).is_some()
}

/// The full path of `program`, looked up as [`on_path`] does.
pub fn which(program: &str) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/bin"])
        .map(|dir| std::path::Path::new(dir).join(program))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

pub fn sh(args: &[&str]) {
    let status = Command::new(args[0]).args(&args[1..]).status().unwrap();
    assert!(status.success(), "{args:?} failed");
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Two namespaces, `srv` (10.200.N.1, fd00:200:N::1) and `cli` (10.200.N.2,
/// fd00:200:N::2, plus any extra addresses), joined by a veth pair.
pub struct Net {
    /// The server side's namespace, where the knock servers capture.
    pub srv: String,
    /// The client side's namespace, where knocks are sent from.
    pub cli: String,
    /// The server side's interface name.
    pub srv_if: String,
    pub n: u32,
}

impl Net {
    pub fn new() -> Net {
        let n = NEXT.fetch_add(1, Ordering::SeqCst) + 10;
        let tag = format!("{}{}", std::process::id() % 100_000, n);
        let net = Net {
            srv: format!("kr-s{tag}"),
            cli: format!("kr-c{tag}"),
            srv_if: format!("kvs{tag}"),
            n,
        };
        sh(&["ip", "netns", "add", &net.srv]);
        sh(&["ip", "netns", "add", &net.cli]);
        net.link();
        net
    }

    /// Makes the veth pair between the namespaces, with the base addresses.
    pub fn link(&self) {
        let net = self;
        let cli_if = net.srv_if.replace("kvs", "kvc");
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
    }

    /// Deletes the veth pair (both ends go), as when an interface disappears.
    pub fn unlink(&self) {
        sh(&["ip", "-n", &self.srv, "link", "del", &self.srv_if]);
    }

    pub fn v4(&self, host: u8) -> String {
        format!("10.200.{}.{host}", self.n)
    }

    pub fn v6(&self, host: u8) -> String {
        format!("fd00:200:{}::{host}", self.n)
    }

    /// Adds `count` more IPv4 addresses to the client side: .101, .102, ...
    pub fn client_addresses(&self, count: u8) -> Vec<String> {
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
    pub fn server(&self, config: &std::path::Path) -> Server {
        self.start_server(config).wait_for("listening:")
    }

    /// Starts `knockr knockd -v` capturing on the veth in the server
    /// namespace, without waiting for anything.
    pub fn start_server(&self, config: &std::path::Path) -> Server {
        self.start_server_via(&[], config)
    }

    /// As `start_server`, run through `wrapper` (a command that ends by
    /// exec'ing its arguments, e.g. `unshare --mount ...`); the server keeps
    /// the wrapper's process id.
    pub fn start_server_via(&self, wrapper: &[&str], config: &std::path::Path) -> Server {
        let argv: Vec<&str> = wrapper.iter().copied().chain(["ip"]).collect();
        let mut child = Command::new(argv[0])
            .args(&argv[1..])
            .args(["netns", "exec", &self.srv])
            .arg(assert_cmd::cargo::cargo_bin("knockr"))
            .args(["knockd", "-v", "-i", &self.srv_if, "-c"])
            .arg(config)
            .arg("--state-file")
            .arg(state_file_for(config))
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
        Server {
            child,
            lines,
            log: Vec::new(),
        }
    }

    /// `program` to be run in the server namespace.
    pub fn in_server(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.srv]).arg(program);
        command
    }

    /// `program` to be run in the client namespace.
    pub fn in_client_ns(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.cli]).arg(program);
        command
    }

    /// The client side's interface name.
    pub fn cli_if(&self) -> String {
        self.srv_if.replace("kvs", "kvc")
    }

    /// Runs the knockr client in the client namespace; returns its exit status.
    pub fn knock(&self, args: &[&str]) -> Option<i32> {
        let output = Command::new("ip")
            .args(["netns", "exec", &self.cli])
            .arg(assert_cmd::cargo::cargo_bin("knockr"))
            .args(args)
            .output()
            .unwrap();
        output.status.code()
    }

    /// Loads the nftables ruleset `text` in the server namespace (`nft -f`).
    pub fn load_nft(&self, text: &str) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("knockr.nft");
        std::fs::write(&file, text).unwrap();
        let output = self.in_server("nft").arg("-f").arg(&file).output().unwrap();
        assert!(output.status.success(), "nft -f failed: {output:?}\n{text}");
    }

    /// A TCP listener on `port` (IPv4 and IPv6) in the server namespace.
    pub fn listen(&self, port: u16) -> std::net::TcpListener {
        let srv = self.srv.clone();
        std::thread::spawn(move || {
            enter(&srv);
            std::net::TcpListener::bind(("::", port)).unwrap()
        })
        .join()
        .unwrap()
    }

    /// Whether a TCP connection to `addr` is made from the client namespace
    /// (within a second: a dropped SYN is a no).
    pub fn connects(&self, addr: std::net::SocketAddr) -> bool {
        self.in_client(move || {
            std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
        })
    }

    /// Runs `f` on a thread inside the client namespace.
    pub fn in_client<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let ns = self.cli.clone();
        std::thread::spawn(move || {
            enter(&ns);
            f()
        })
        .join()
        .unwrap()
    }
}

/// The state file a test's server keeps next to its config: its own, so
/// parallel tests never share (and lock) the default under /var/lib/knockr,
/// and the same across restarts of one test's server. The config's
/// directory is made traversable (mode o+x), so that a server that drops
/// root to `user =` can still reach the directory it makes for the file.
pub fn state_file_for(config: &std::path::Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = config.parent().expect("a config file in a directory");
    let mode = std::fs::metadata(dir).unwrap().permissions().mode();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode | 0o011)).unwrap();
    dir.join("state").join("knockd.state")
}

/// Moves the calling thread (only it) into network namespace `ns`.
pub fn enter(ns: &str) {
    let file = std::fs::File::open(format!("/var/run/netns/{ns}")).unwrap();
    use std::os::fd::AsRawFd;
    // SAFETY: setns on this thread only, with a namespace fd we opened.
    assert_eq!(
        unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) },
        0,
        "setns into {ns} failed"
    );
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in [&self.srv, &self.cli] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// Files in /etc/netns/NS: `ip netns exec NS program` mounts each over
/// /etc/FILE for the program, so it reads its own hosts, resolv.conf,
/// host.conf or gai.conf. The directory goes on drop.
pub struct NetnsEtc {
    dir: std::path::PathBuf,
}

impl NetnsEtc {
    pub fn new(ns: &str) -> NetnsEtc {
        let dir = std::path::Path::new("/etc/netns").join(ns);
        std::fs::create_dir_all(&dir).unwrap();
        NetnsEtc { dir }
    }

    /// Writes /etc/netns/NS/`name`; `None` removes it (the host's file shows again).
    pub fn set(&self, name: &str, text: Option<&str>) {
        let path = self.dir.join(name);
        match text {
            Some(text) => std::fs::write(path, text).unwrap(),
            None => {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

impl Drop for NetnsEtc {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub struct Server {
    /// The `ip netns exec ... knockr knockd` process.
    pub child: Child,
    /// Its stderr (the log), line by line, from a reader thread.
    lines: mpsc::Receiver<String>,
    /// Every line read so far.
    pub log: Vec<String>,
}

impl Server {
    /// Spawns `command` (a server), collects what it writes to stdout and
    /// stderr line by line, and waits for a line containing `ready`.
    pub fn start(mut command: Command, ready: &str) -> Server {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let out = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = out.send(line);
            }
        });
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
        server.wait_for(ready)
    }

    /// Waits for a log line containing `needle` (panics after `PATIENCE`).
    pub fn wait_for(mut self, needle: &str) -> Server {
        self.expect(needle);
        self
    }

    pub fn expect(&mut self, needle: &str) {
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
    pub fn terminate(self) -> (Option<i32>, Vec<String>) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        self.wait_exit(PATIENCE)
    }

    /// Waits up to `within` for the server to exit by itself; its exit status
    /// and every line it logged on stderr (panics if it is still running).
    pub fn wait_exit(mut self, within: Duration) -> (Option<i32>, Vec<String>) {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // The reader thread ends with the pipe; take what it still holds.
                while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(1)) {
                    self.log.push(line);
                }
                return (status.code(), std::mem::take(&mut self.log));
            }
            assert!(
                Instant::now() < deadline,
                "knockd did not exit within {within:?}; it logged:\n{}",
                self.log.join("\n")
            );
            self.log.extend(self.lines.try_iter());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL, at once: no cleanup of any kind runs.
    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
