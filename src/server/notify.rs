//! systemd's readiness protocol (`sd_notify`), for `Type=notify` units:
//! one datagram per state change (`READY=1`, `RELOADING=1`, `STOPPING=1`,
//! with a `STATUS=` line) to the unix socket named by `$NOTIFY_SOCKET`, a
//! path or an abstract `@name`. Without the variable (not run by systemd)
//! nothing is sent.
//!
//! No libsystemd: the protocol is one `sendto`. The socket is close-on-exec
//! (as every std socket), and door commands get a fixed environment, so no
//! command can pose as knockd to systemd. This module never logs: it reports
//! why a message could not be sent, and the server says so.

use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// The variable systemd sets for a `Type=notify` service.
const VARIABLE: &str = "NOTIFY_SOCKET";

/// What the server tells systemd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State<'a> {
    /// Serving: the captures are open, privileges dropped; the status line says how.
    Ready(&'a str),
    /// SIGHUP: the configuration is being loaded again.
    Reloading,
    /// SIGTERM or SIGINT: the pending stop commands are being run.
    Stopping,
}

/// The datagram for `state`, in sd_notify's `KEY=value` lines, at
/// `monotonic` on `CLOCK_MONOTONIC`: systemd wants it with `RELOADING=1`
/// (to tell this reload from an earlier one; `Type=notify-reload` requires it).
fn message(state: State<'_>, monotonic: std::time::Duration) -> String {
    match state {
        State::Ready(status) => format!("READY=1\nSTATUS={}", one_line(status)),
        State::Reloading => format!(
            "RELOADING=1\nMONOTONIC_USEC={}\nSTATUS=reloading the configuration",
            monotonic.as_micros()
        ),
        State::Stopping => "STOPPING=1\nSTATUS=stopping: running the pending stop commands".into(),
    }
}

/// `text` without newlines: a newline would start a key of its own.
fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

/// A `$NOTIFY_SOCKET` value that names no socket.
#[derive(Debug, thiserror::Error)]
pub(crate) enum NotifyError {
    /// Neither an absolute path nor `@name`.
    #[error(
        "{VARIABLE}={0:?} is neither an absolute path nor an abstract @name: systemd is not told when knockd is ready"
    )]
    Address(String),
    /// The address or the socket could not be made.
    #[error("cannot reach {VARIABLE} {0}: {1}: systemd is not told when knockd is ready")]
    Socket(String, io::Error),
}

/// The socket systemd listens on for this service.
pub(crate) struct Notifier {
    /// Unbound, close-on-exec; sends to `to`.
    socket: UnixDatagram,
    /// `$NOTIFY_SOCKET`'s address.
    to: SocketAddr,
    /// `$NOTIFY_SOCKET` as given, for error messages.
    name: String,
}

impl Notifier {
    /// From `$NOTIFY_SOCKET`; `Ok(None)` when it is unset or empty (not a
    /// `Type=notify` service).
    pub(crate) fn from_env() -> Result<Option<Notifier>, NotifyError> {
        match std::env::var(VARIABLE) {
            Ok(name) if !name.is_empty() => Notifier::to(&name).map(Some),
            _ => Ok(None),
        }
    }

    /// Sends to the socket named `name`: `/path` or `@abstract`.
    fn to(name: &str) -> Result<Notifier, NotifyError> {
        let to = address(name)?;
        let socket =
            UnixDatagram::unbound().map_err(|err| NotifyError::Socket(name.to_string(), err))?;
        Ok(Notifier {
            socket,
            to,
            name: name.to_string(),
        })
    }

    /// Tells systemd `state`; the error says why it could not be told.
    pub(crate) fn tell(&self, state: State<'_>) -> Result<(), NotifyError> {
        self.socket
            .send_to_addr(message(state, monotonic_now()).as_bytes(), &self.to)
            .map(drop)
            .map_err(|err| NotifyError::Socket(self.name.clone(), err))
    }
}

/// `CLOCK_MONOTONIC` now, systemd's clock for `MONOTONIC_USEC` (std's
/// `Instant` does not say its value).
fn monotonic_now() -> std::time::Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a pointer to a live timespec; it cannot
    // fail with these (0 stays, read as the clock's start, if it did).
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    let secs = u64::try_from(now.tv_sec).unwrap_or(0);
    let nanos = u32::try_from(now.tv_nsec).unwrap_or(0);
    std::time::Duration::new(secs, nanos)
}

/// The socket address of a `$NOTIFY_SOCKET` value.
fn address(name: &str) -> Result<SocketAddr, NotifyError> {
    use std::os::linux::net::SocketAddrExt as _;
    let made = if let Some(abstract_name) = name.strip_prefix('@') {
        SocketAddr::from_abstract_name(abstract_name.as_bytes())
    } else if name.starts_with('/') {
        SocketAddr::from_pathname(name)
    } else {
        return Err(NotifyError::Address(name.to_string()));
    };
    made.map_err(|err| NotifyError::Socket(name.to_string(), err))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn received(socket: &UnixDatagram) -> String {
        let mut buffer = [0u8; 512];
        let n = socket.recv(&mut buffer).unwrap();
        String::from_utf8(buffer[..n].to_vec()).unwrap()
    }

    #[test]
    fn each_state_is_one_datagram_of_key_value_lines_to_a_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let systemd = UnixDatagram::bind(&path).unwrap();
        let notifier = Notifier::to(path.to_str().unwrap()).unwrap();
        notifier.tell(State::Ready("listening:\n2 doors")).unwrap();
        notifier.tell(State::Reloading).unwrap();
        notifier.tell(State::Stopping).unwrap();
        assert_eq!(received(&systemd), "READY=1\nSTATUS=listening: 2 doors");
        let reloading = received(&systemd);
        let lines: Vec<&str> = reloading.lines().collect();
        assert_eq!(lines[0], "RELOADING=1");
        let usec: u128 = lines[1]
            .strip_prefix("MONOTONIC_USEC=")
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            usec > 0 && usec <= monotonic_now().as_micros(),
            "{reloading}"
        );
        assert_eq!(lines[2], "STATUS=reloading the configuration");
        assert!(received(&systemd).starts_with("STOPPING=1\n"));
    }

    #[test]
    fn an_abstract_name_is_reached_too() {
        use std::os::linux::net::SocketAddrExt as _;
        let name = format!("knockr-notify-test-{}", std::process::id());
        let systemd =
            UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap())
                .unwrap();
        Notifier::to(&format!("@{name}"))
            .unwrap()
            .tell(State::Ready("ok"))
            .unwrap();
        assert_eq!(received(&systemd), "READY=1\nSTATUS=ok");
    }

    #[test]
    fn a_relative_name_is_refused_and_a_missing_socket_said() {
        assert!(matches!(
            Notifier::to("notify"),
            Err(NotifyError::Address(_))
        ));
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("gone");
        let err = Notifier::to(gone.to_str().unwrap())
            .unwrap()
            .tell(State::Stopping)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&format!("cannot reach NOTIFY_SOCKET {}: ", gone.display())),
            "{err}"
        );
    }
}
