//! Helpers shared by the integration tests: the binary under a clean
//! environment, and listeners on loopback that record each knock arriving.

#[cfg(feature = "server")]
pub mod dns;
pub mod firewall;
#[cfg(feature = "server")]
pub mod netns;
#[cfg(feature = "server")]
pub mod pcap_file;
pub mod routeros;

use std::io::Read;
use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// How long any test waits for traffic before it gives up.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// `knockr` with no profiles file from the environment and a private HOME,
/// in UTC: knockd's text lines are in local time, and the tests read them
/// the same on any machine.
pub fn knockr(home: &Path) -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("knockr").expect("the binary is built");
    cmd.env_remove("KNOCKR_CONFIG")
        .env("TZ", "UTC")
        .env_remove("COMPLETE")
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .timeout(Duration::from_secs(60));
    cmd
}

/// A temporary directory that holds a profiles file.
pub struct Profiles {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
}

impl Profiles {
    /// `knockr -c FILE` with this file, and `args` after it.
    pub fn run(&self, args: &[&str]) -> std::process::Output {
        knockr(self.dir.path())
            .arg("-c")
            .arg(&self.path)
            .args(args)
            .output()
            .unwrap()
    }
}

pub fn profiles(text: &str) -> Profiles {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("profiles.toml");
    std::fs::write(&path, text).unwrap();
    Profiles { dir, path }
}

/// One packet or connection seen by a [`Door`].
#[derive(Debug, Clone)]
pub struct Arrival {
    pub to: SocketAddr,
    pub from: SocketAddr,
    pub proto: &'static str,
    /// UDP payload; empty for TCP.
    pub payload: Vec<u8>,
    pub at: Instant,
}

/// Sockets bound on loopback that record every knock they receive, each in
/// its own thread, until the door is dropped or `PATIENCE` runs out.
pub struct Door {
    arrivals: mpsc::Receiver<Arrival>,
    sender: mpsc::Sender<Arrival>,
    pub ip: IpAddr,
}

impl Door {
    pub fn new(ip: &str) -> Door {
        let (sender, arrivals) = mpsc::channel();
        Door {
            arrivals,
            sender,
            ip: ip.parse().unwrap(),
        }
    }

    /// A TCP listener on a free port; returns the port.
    pub fn tcp(&self) -> u16 {
        self.tcp_on(0)
    }

    /// A TCP listener on `port` (0: a free one); returns the port.
    pub fn tcp_on(&self, port: u16) -> u16 {
        let listener = TcpListener::bind((self.ip, port)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let to = listener.local_addr().unwrap();
        let sender = self.sender.clone();
        thread::spawn(move || {
            let deadline = Instant::now() + PATIENCE;
            while Instant::now() < deadline {
                match listener.accept() {
                    Ok((_stream, from)) => {
                        let arrival = Arrival {
                            to,
                            from,
                            proto: "tcp",
                            payload: Vec::new(),
                            at: Instant::now(),
                        };
                        if sender.send(arrival).is_err() {
                            return;
                        }
                    }
                    Err(_) => thread::sleep(Duration::from_millis(1)),
                }
            }
        });
        to.port()
    }

    /// A UDP socket on a free port; returns the port.
    pub fn udp(&self) -> u16 {
        self.udp_on(0)
    }

    /// A UDP socket on `port` (0: a free one); returns the port.
    pub fn udp_on(&self, port: u16) -> u16 {
        let socket = UdpSocket::bind((self.ip, port)).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let to = socket.local_addr().unwrap();
        let sender = self.sender.clone();
        thread::spawn(move || {
            let deadline = Instant::now() + PATIENCE;
            let mut buf = vec![0u8; 65536];
            while Instant::now() < deadline {
                if let Ok((len, from)) = socket.recv_from(&mut buf) {
                    let arrival = Arrival {
                        to,
                        from,
                        proto: "udp",
                        payload: buf[..len].to_vec(),
                        at: Instant::now(),
                    };
                    if sender.send(arrival).is_err() {
                        return;
                    }
                }
            }
        });
        to.port()
    }

    /// Waits for `count` arrivals (or `PATIENCE`), in arrival order.
    pub fn wait_for(&self, count: usize) -> Vec<Arrival> {
        let deadline = Instant::now() + PATIENCE;
        let mut seen = Vec::new();
        while seen.len() < count {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.arrivals.recv_timeout(left) {
                Ok(arrival) => seen.push(arrival),
                Err(_) => break,
            }
        }
        seen
    }

    /// Everything that arrived within `window`.
    pub fn collect_for(&self, window: Duration) -> Vec<Arrival> {
        let deadline = Instant::now() + window;
        let mut seen = Vec::new();
        while let Ok(arrival) = self
            .arrivals
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            seen.push(arrival);
        }
        seen
    }
}

/// A TCP port on `ip` that nothing listens on (bound, then released).
pub fn closed_port(ip: &str) -> u16 {
    let listener = TcpListener::bind((ip.parse::<IpAddr>().unwrap(), 0)).unwrap();
    listener.local_addr().unwrap().port()
}

/// The JSON document a `--json` run printed.
pub fn json(output: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|err| {
        panic!(
            "stdout is not JSON ({err}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// Reads a whole file to a string.
pub fn read(path: impl AsRef<Path>) -> String {
    let mut text = String::new();
    std::fs::File::open(path)
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    text
}

/// An Ethernet frame from `src` to `dst` carrying a knock: `"7000"` (a TCP
/// SYN), `"8000:udp"` (one zero byte) or `"56:icmp"` (an echo request).
#[cfg(feature = "server")]
pub fn frame(src: &str, dst: &str, knock: &str) -> Vec<u8> {
    frame_with_flags(src, dst, knock, knockr::core::packet::tcp_flags::SYN)
}

#[cfg(feature = "server")]
pub fn frame_with_flags(src: &str, dst: &str, knock: &str, flags: u8) -> Vec<u8> {
    use etherparse::PacketBuilder;
    let knock = knockr::core::knock::parse_knock(knock, knockr::core::knock::Proto::Tcp).unwrap();
    let (src, dst): (IpAddr, IpAddr) = (src.parse().unwrap(), dst.parse().unwrap());
    let eth = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
    let ip = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => eth.ipv4(s.octets(), d.octets(), 64),
        (IpAddr::V6(s), IpAddr::V6(d)) => eth.ipv6(s.octets(), d.octets(), 64),
        _ => panic!("mixed address families"),
    };
    let mut out = Vec::new();
    match knock.proto {
        knockr::core::knock::Proto::Tcp => {
            let mut tcp = ip.tcp(40_000, knock.port, 1, 64_240);
            use knockr::core::packet::tcp_flags as f;
            if flags & f::SYN != 0 {
                tcp = tcp.syn();
            }
            if flags & f::ACK != 0 {
                tcp = tcp.ack(1);
            }
            if flags & f::RST != 0 {
                tcp = tcp.rst();
            }
            if flags & f::FIN != 0 {
                tcp = tcp.fin();
            }
            tcp.write(&mut out, &[]).unwrap();
        }
        knockr::core::knock::Proto::Udp => {
            ip.udp(40_000, knock.port).write(&mut out, &[0]).unwrap()
        }
        // An echo request whose payload is `port` bytes, as `ping -s` sends.
        knockr::core::knock::Proto::Icmp => {
            let payload = vec![0u8; usize::from(knock.port)];
            match src {
                IpAddr::V4(_) => ip.icmpv4_echo_request(1, 1).write(&mut out, &payload),
                IpAddr::V6(_) => ip.icmpv6_echo_request(1, 1).write(&mut out, &payload),
            }
            .unwrap()
        }
    }
    out
}

/// Writes `packets` — (milliseconds since the capture's start, frame) — to a pcap file.
#[cfg(feature = "server")]
pub fn pcap_file(path: &Path, packets: &[(u64, Vec<u8>)]) {
    let start = Duration::from_secs(1_795_000_000);
    let mut writer = pcap_file::Writer::create(path).unwrap();
    for (ms, frame) in packets {
        writer.write(start + Duration::from_millis(*ms), frame);
    }
    writer.finish().unwrap();
}
