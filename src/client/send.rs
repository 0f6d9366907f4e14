//! Sends one knock and watches briefly for its answer, runs the destination
//! check, and opens `connect`'s connection. The only module of the client
//! that sends (`local` and `resolve` bind and connect UDP sockets to ask the
//! kernel about addresses, which sends nothing).
//!
//! ICMP knocks go out from an unprivileged ping socket where the system
//! allows one (`net.ipv4.ping_group_range`), else from a raw socket (root or
//! CAP_NET_RAW); each from a socket of its own, so with its own identifier.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::net::{TcpSocket, TcpStream, UdpSocket};
use tokio::time::timeout;

use crate::client::plan::{Bind, Check, Destination, Settings};
use crate::core::knock::Mode;
use crate::core::knock::{Knock, Proto};

/// Linux retransmits an unanswered SYN after 1 s (the initial RTO); a `syn`
/// knock gives up on its socket before then so exactly one SYN goes out.
pub(crate) const SYN_WATCH_CAP: Duration = Duration::from_millis(900);

/// Pause between check attempts that were refused straight away.
pub(crate) const CHECK_RETRY_PAUSE: Duration = Duration::from_millis(250);

/// What came back after a knock was sent. None of these is a failure: a
/// firewalled knock port normally stays silent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// Nothing while it was watched for.
    Silent,
    /// A TCP reset or an ICMP port-unreachable: the host got the knock, the port is closed.
    Refused,
    /// The port accepted the connection (TCP) or replied (UDP), or the host
    /// sent the echo reply (ICMP).
    Open,
}

impl Answer {
    pub(crate) fn as_str(self) -> &'static str {
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
pub(crate) async fn knock(
    to: Destination,
    knock: Knock,
    settings: &Settings,
    bind: &Bind,
    watch: Duration,
) -> io::Result<Answer> {
    let (ip, addr) = (to.ip, to.at(knock.port));
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
            let local = SocketAddr::new(bind.source().unwrap_or(unspecified(ip)), 0);
            let socket = UdpSocket::bind(local).await?;
            if let Some(interface) = bind.interface() {
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
        Proto::Icmp => echo(to, knock.port, bind, watch.min(settings.timeout)).await,
    }
}

/// Sends one echo request with `size` payload bytes to `ip`, then watches for
/// its reply for at most `watch`.
async fn echo(to: Destination, size: u16, bind: &Bind, watch: Duration) -> io::Result<Answer> {
    use socket2::SockAddr;
    let ip = to.ip;
    let (socket, raw) = icmp_socket(ip)?;
    if let Some(interface) = bind.interface() {
        socket.bind_device(Some(interface.as_bytes()))?;
    }
    if let Some(source) = bind.source() {
        socket.bind(&SockAddr::from(SocketAddr::new(source, 0)))?;
    }
    socket.connect(&SockAddr::from(to.at(0)))?;
    socket.set_nonblocking(true)?;
    // A ping socket's identifier is its local "port", which the kernel writes
    // over ours and uses to hand it the replies; a raw socket sends ours.
    let ident = match socket.local_addr()?.as_socket() {
        Some(local) if !raw => local.port(),
        _ => {
            let mut bytes = [0u8; 2];
            getrandom::fill(&mut bytes).map_err(io::Error::other)?;
            u16::from_ne_bytes(bytes)
        }
    };
    let request = echo_request(ip.is_ipv6(), ident, size);
    // tokio has no ICMP socket; its UdpSocket only calls send and recv on the
    // descriptor, which ping and raw sockets answer as datagram sockets do.
    let socket = UdpSocket::from_std(std::net::UdpSocket::from(socket))?;
    socket.send(&request).await?;
    let reply = async {
        let mut buf = vec![0u8; usize::from(size) + 128];
        loop {
            let read = socket.recv(&mut buf).await?;
            if is_echo_reply(&buf[..read], ip.is_ipv6(), raw, ident) {
                return io::Result::Ok(Answer::Open);
            }
        }
    };
    match timeout(watch, reply).await {
        Err(_) => Ok(Answer::Silent),
        Ok(answer) => answer,
    }
}

/// A ping socket if the system lets this user have one, else a raw socket;
/// the flag says which. Neither: an error saying what would allow it.
fn icmp_socket(ip: IpAddr) -> io::Result<(socket2::Socket, bool)> {
    use socket2::{Domain, Protocol, Socket, Type};
    let (domain, protocol) = if ip.is_ipv4() {
        (Domain::IPV4, Protocol::ICMPV4)
    } else {
        (Domain::IPV6, Protocol::ICMPV6)
    };
    match Socket::new(domain, Type::DGRAM, Some(protocol)) {
        Ok(socket) => return Ok((socket, false)),
        Err(err) if is_denied(&err) => {}
        Err(err) => return Err(err),
    }
    match Socket::new(domain, Type::RAW, Some(protocol)) {
        Ok(socket) => Ok((socket, true)),
        Err(err) if is_denied(&err) => Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "sending ICMP knocks needs a ping socket (allow your group in sysctl net.ipv4.ping_group_range) or root/CAP_NET_RAW for a raw socket",
        )),
        Err(err) => Err(err),
    }
}

fn is_denied(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::PermissionDenied || err.raw_os_error() == Some(1)
}

/// An ICMP (type 8) or ICMPv6 (type 128) echo request, code 0, sequence 1,
/// with `size` payload bytes counting up from 0 like ping's pattern. The
/// ICMPv6 checksum covers a pseudo-header only the kernel knows (it fills
/// it in); the ICMP one is ours to compute (a ping socket recomputes it).
pub(crate) fn echo_request(ipv6: bool, ident: u16, size: u16) -> Vec<u8> {
    let mut packet = vec![if ipv6 { 128 } else { 8 }, 0, 0, 0];
    packet.extend_from_slice(&ident.to_be_bytes());
    packet.extend_from_slice(&1u16.to_be_bytes());
    packet.extend((0..size).map(|i| i as u8));
    if !ipv6 {
        let checksum = internet_checksum(&packet);
        packet[2..4].copy_from_slice(&checksum.to_be_bytes());
    }
    packet
}

/// RFC 1071: the one's complement of the one's complement sum of 16-bit words.
fn internet_checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Whether `packet`, read from an ICMP socket, is the reply to our request.
/// A raw IPv4 socket reads the IP header too, and every ICMP packet the host
/// gets: the type and identifier pick ours. A ping socket only gets its own.
fn is_echo_reply(packet: &[u8], ipv6: bool, raw: bool, ident: u16) -> bool {
    let icmp = if raw && !ipv6 {
        let header = usize::from(packet.first().map_or(0, |b| b & 0x0f)) * 4;
        packet.get(header..).unwrap_or_default()
    } else {
        packet
    };
    let reply_type = if ipv6 { 129 } else { 0 };
    icmp.len() >= 8
        && icmp[0] == reply_type
        && (!raw || u16::from_be_bytes([icmp[4], icmp[5]]) == ident)
}

/// The outcome of the destination check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CheckOutcome {
    /// The port accepted a connection.
    pub(crate) open: bool,
    /// From the first attempt to the connection (or to giving up).
    pub(crate) elapsed: Duration,
    /// Connection attempts made.
    pub(crate) attempts: u32,
    /// The last failure, when closed: "connection refused", "timed out", ...
    pub(crate) last_error: Option<String>,
}

/// Connects to `check.port` until it accepts, `check.timeout` has passed, or
/// the retries are spent. The connection is closed at once; nothing is sent on it.
pub(crate) async fn check(to: Destination, check: Check, bind: &Bind) -> CheckOutcome {
    let (ip, addr) = (to.ip, to.at(check.port));
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
            Ok(Err(err)) => last_error = Some(crate::core::text::describe(&err)),
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

/// A TCP connection to `port` at `to`, bound as `--source`/`--interface`
/// say, as the knocks and the check were: what `connect` relays over.
pub(crate) async fn connect(to: Destination, port: u16, bind: &Bind) -> io::Result<TcpStream> {
    tcp_socket(to.ip, bind)?.connect(to.at(port)).await
}

/// A TCP socket for reaching `ip`, bound as `--source`/`--interface` say.
fn tcp_socket(ip: IpAddr, bind: &Bind) -> io::Result<TcpSocket> {
    let socket = if ip.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(interface) = bind.interface() {
        socket.bind_device(Some(interface.as_bytes()))?;
    }
    if let Some(source) = bind.source() {
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
