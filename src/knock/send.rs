//! Sends one knock and watches briefly for its answer, and runs the
//! destination check. The only module of the client that opens sockets.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::net::{TcpSocket, UdpSocket};
use tokio::time::timeout;

use crate::knock::plan::{Bind, Check, Mode, Settings};
use crate::sequence::{Knock, Proto};

/// Linux retransmits an unanswered SYN after 1 s (the initial RTO); a `syn`
/// knock gives up on its socket before then so exactly one SYN goes out.
pub const SYN_WATCH_CAP: Duration = Duration::from_millis(900);

/// Pause between check attempts that were refused straight away.
pub const CHECK_RETRY_PAUSE: Duration = Duration::from_millis(250);

/// What came back after a knock was sent. None of these is a failure: a
/// firewalled knock port normally stays silent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Nothing while it was watched for.
    Silent,
    /// A TCP reset or an ICMP port-unreachable: the host got the knock, the port is closed.
    Refused,
    /// The port accepted the connection (TCP) or replied (UDP).
    Open,
}

impl Answer {
    pub fn as_str(self) -> &'static str {
        match self {
            Answer::Silent => "none",
            Answer::Refused => "refused",
            Answer::Open => "open",
        }
    }
}

/// Sends `knock` to `ip`, then watches for an answer for at most `watch`.
/// `Err` means the knock did not leave or did not reach the host (no route,
/// host unreachable, ...). In `connect` mode a TCP knock waits for the
/// handshake for the full `timeout` instead: completing it is the point.
pub async fn knock(
    ip: IpAddr,
    knock: Knock,
    settings: &Settings,
    bind: &Bind,
    watch: Duration,
) -> io::Result<Answer> {
    let addr = SocketAddr::new(ip, knock.port);
    match knock.proto {
        Proto::Tcp => {
            let watch = match settings.mode {
                Mode::Syn => watch.min(settings.timeout).min(SYN_WATCH_CAP),
                Mode::Connect => settings.timeout,
            };
            let socket = tcp_socket(ip, bind)?;
            // The first poll sends the SYN, even with a zero watch. Dropping the
            // connect future closes the socket: an abandoned SYN is never
            // retransmitted.
            match timeout(watch, socket.connect(addr)).await {
                Err(_) => Ok(Answer::Silent),
                Ok(Ok(_stream)) => Ok(Answer::Open),
                Ok(Err(err)) if err.kind() == io::ErrorKind::ConnectionRefused => {
                    Ok(Answer::Refused)
                }
                Ok(Err(err)) => Err(err),
            }
        }
        Proto::Udp => {
            let local = SocketAddr::new(bind.source.unwrap_or(unspecified(ip)), 0);
            let socket = UdpSocket::bind(local).await?;
            if let Some(interface) = &bind.interface {
                socket.bind_device(Some(interface.as_bytes()))?;
            }
            socket.connect(addr).await?;
            socket.send(&settings.udp_payload).await?;
            // A connected UDP socket reports the ICMP port-unreachable as ECONNREFUSED.
            let mut buf = [0u8; 1];
            match timeout(watch.min(settings.timeout), socket.recv(&mut buf)).await {
                Err(_) => Ok(Answer::Silent),
                Ok(Ok(_)) => Ok(Answer::Open),
                Ok(Err(err)) if err.kind() == io::ErrorKind::ConnectionRefused => {
                    Ok(Answer::Refused)
                }
                Ok(Err(err)) => Err(err),
            }
        }
    }
}

/// The outcome of the destination check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOutcome {
    pub open: bool,
    /// From the first attempt to the connection (or to giving up).
    pub elapsed: Duration,
    pub attempts: u32,
    /// The last failure, when closed: "connection refused", "timed out", ...
    pub last_error: Option<String>,
}

/// Connects to `check.port` until it accepts, `check.timeout` has passed, or
/// the retries are spent. The connection is closed at once; nothing is sent on it.
pub async fn check(ip: IpAddr, check: Check, bind: &Bind) -> CheckOutcome {
    let addr = SocketAddr::new(ip, check.port);
    let start = Instant::now();
    let deadline = start + check.timeout;
    let mut attempts = 0;
    let mut last_error = None;
    while attempts <= check.retries {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            break;
        }
        attempts += 1;
        let connect = async { tcp_socket(ip, bind)?.connect(addr).await };
        match timeout(remaining, connect).await {
            Ok(Ok(_stream)) => {
                return CheckOutcome {
                    open: true,
                    elapsed: start.elapsed(),
                    attempts,
                    last_error: None,
                };
            }
            Ok(Err(err)) => last_error = Some(describe(&err)),
            Err(_) => {
                last_error = Some("timed out".to_string());
                break;
            }
        }
        let pause = CHECK_RETRY_PAUSE.min(deadline.saturating_duration_since(Instant::now()));
        if attempts <= check.retries {
            tokio::time::sleep(pause).await;
        }
    }
    CheckOutcome {
        open: false,
        elapsed: start.elapsed(),
        attempts,
        last_error,
    }
}

/// A TCP socket for reaching `ip`, bound as `--source`/`--interface` say.
fn tcp_socket(ip: IpAddr, bind: &Bind) -> io::Result<TcpSocket> {
    let socket = if ip.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(interface) = &bind.interface {
        socket.bind_device(Some(interface.as_bytes()))?;
    }
    if let Some(source) = bind.source {
        socket.bind(SocketAddr::new(source, 0))?;
    }
    Ok(socket)
}

fn unspecified(ip: IpAddr) -> IpAddr {
    if ip.is_ipv4() {
        IpAddr::from([0u8; 4])
    } else {
        IpAddr::from([0u16; 8])
    }
}

/// An io::Error as a short lower-case phrase, without "(os error 111)".
pub fn describe(err: &io::Error) -> String {
    let text = err.to_string();
    let text = match text.find(" (os error") {
        Some(end) => &text[..end],
        None => &text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}
