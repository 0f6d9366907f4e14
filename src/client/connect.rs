//! `knockr connect PROFILE [PORT]`: knock, wait until the port answers, then
//! relay stdin and stdout to it — what ssh's `ProxyCommand` wants. Nothing
//! but the relayed bytes may reach stdout; everything else goes to stderr.

use std::net::SocketAddr;

use anyhow::Context;
use tokio::io::{AsyncWriteExt, copy};
use tokio::net::TcpStream;

use crate::client::plan::{self, Conduct, Output, Plan, PlanError, Run};
use crate::config::profiles::{Overrides, Profiles};
use crate::core::text::sanitize;
use crate::exit_codes::ExitCode;

/// What `knockr connect PROFILE [PORT]` does: knock the profile's first host,
/// its check waiting for `port`, then relay to that port.
#[derive(Debug)]
pub(crate) struct Connection {
    /// The profile as the user named it (a group names its first member's host).
    profile: String,
    /// One target, knocked quietly: stdout carries only the relayed bytes.
    plan: Plan,
    /// The port relayed to once the check finds it open.
    port: u16,
}

impl Connection {
    /// Plans the connection with the planner every knock of a profile uses.
    pub(crate) fn new(
        profiles: &Profiles,
        profile: &str,
        port: Option<u16>,
    ) -> Result<Connection, PlanError> {
        // The check waits until the port answers: a port given is a flag over
        // the profile's `check`, as `knockr --check PORT PROFILE` is, so the
        // profile's check timings apply to it as well.
        let flags = Overrides {
            check: port,
            ..Overrides::default()
        };
        let target = plan::profile_targets(profiles, &[profile.to_string()], &flags)?
            .into_iter()
            .next()
            .ok_or_else(|| {
                PlanError::Usage(format!(
                    "profile `{}` has no host to connect to",
                    sanitize(profile)
                ))
            })?;
        let port = target.settings.check.map(|c| c.port).ok_or_else(|| {
            PlanError::Usage(format!(
                "no port to connect to: give one (knockr connect {} PORT) or set `check` in the profile",
                sanitize(profile)
            ))
        })?;
        Ok(Connection {
            profile: profile.to_string(),
            plan: Plan {
                targets: vec![target],
                output: Output::Quiet,
                conduct: Conduct::default(),
            },
            port,
        })
    }

    /// The knock to read the sequences of ([`Plan::read_sequences`]) before connecting.
    pub(crate) fn plan(&self) -> &Plan {
        &self.plan
    }
}

/// Knocks as `run` (this connection's plan, read) says, and relays until
/// both directions end.
pub(crate) async fn connect(connection: &Connection, run: &Run<'_>) -> anyhow::Result<ExitCode> {
    let report = crate::client::run(run).await;
    for problem in plan::spend_one_time_lines(run, |t| report.sent_in_full(t)) {
        eprintln!("knockr: {}", sanitize(&problem.to_string()));
    }
    let target = &report.targets[0];
    let code = report.exit_code();
    if code != ExitCode::Success {
        eprintln!(
            "knockr: {} {}: {}",
            sanitize(&connection.profile),
            sanitize(&target.host),
            sanitize(target.error.as_deref().unwrap_or("failed"))
        );
        return Ok(code);
    }
    // A target that is ok was knocked, so it has an address.
    let ip = target.address.context("the knocked address")?;
    relay(SocketAddr::new(ip, connection.port)).await?;
    Ok(ExitCode::Success)
}

/// Connects to `addr` and copies stdin to it and it to stdout until the
/// server closes; the end of stdin is passed on as a half-close.
async fn relay(addr: SocketAddr) -> anyhow::Result<()> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("cannot connect to {addr}"))?;
    stream.set_nodelay(true)?;
    let (mut from_server, mut to_server) = stream.into_split();
    let upstream = async {
        let mut stdin = tokio::io::stdin();
        copy(&mut stdin, &mut to_server).await?;
        to_server.shutdown().await
    };
    let downstream = async {
        let mut stdout = tokio::io::stdout();
        copy(&mut from_server, &mut stdout).await?;
        stdout.flush().await
    };
    tokio::pin!(upstream);
    // The session is over when the server closes; stdin may stay open forever.
    tokio::select! {
        result = downstream => result.context("relaying from the server")?,
        result = &mut upstream => {
            result.context("relaying to the server")?;
            // Client done sending: keep passing the server's answer on.
            let mut stdout = tokio::io::stdout();
            copy(&mut from_server, &mut stdout).await.context("relaying from the server")?;
            stdout.flush().await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profiles(text: &str) -> Profiles {
        Profiles::parse(std::path::Path::new("profiles.toml"), text).unwrap()
    }

    const FILE: &str = r#"
        [profiles.box]
        hosts = ["b1", "b2"]
        sequence = ["7000"]
        check = 22
        check_retries = 3
        [profiles.bare]
        host = "b3"
        sequence = ["7000"]
        [profiles.group]
        include = ["bare", "box"]
    "#;

    #[test]
    fn connect_knocks_the_first_host_quietly_and_waits_for_the_port_it_relays_to() {
        let file = profiles(FILE);
        let connection = Connection::new(&file, "box", None).unwrap();
        assert_eq!(connection.port, 22, "the profile's check port");
        let [target] = connection.plan.targets.as_slice() else {
            panic!("one target: {:?}", connection.plan.targets)
        };
        assert_eq!(target.host, "b1");
        assert_eq!(
            target.settings.check,
            Some(plan::Check {
                port: 22,
                timeout: plan::DEFAULT_CHECK_TIMEOUT,
                retries: 3
            })
        );
        assert_eq!(
            connection.plan.output,
            Output::Quiet,
            "stdout is the relay's"
        );
        // A port given beats the profile's check port, keeping its timings.
        let connection = Connection::new(&file, "box", Some(2222)).unwrap();
        assert_eq!(connection.port, 2222);
        let check = connection.plan.targets[0].settings.check.unwrap();
        assert_eq!((check.port, check.retries), (2222, 3));
        // A group connects to its first member's first host.
        let connection = Connection::new(&file, "group", Some(80)).unwrap();
        assert_eq!(connection.plan.targets[0].host, "b3");
        assert_eq!(connection.profile, "group", "messages name it as asked");
    }

    #[test]
    fn connect_without_a_port_or_a_check_in_the_profile_is_refused() {
        let err = Connection::new(&profiles(FILE), "bare", None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no port to connect to: give one (knockr connect bare PORT) or set `check` in the profile"
        );
    }

    /// The profile's check timings held only when it also set `check`:
    /// `connect PROFILE PORT` waited 3 s where the profile said 300 ms.
    #[test]
    fn regression_a_port_given_to_connect_ignored_the_profiles_check_timings() {
        let file = profiles(
            "[defaults]\ncheck_retries = 1\n[profiles.p]\nhost = \"h\"\nsequence = [\"7000\"]\ncheck_timeout = \"300ms\"\n",
        );
        let connection = Connection::new(&file, "p", Some(22)).unwrap();
        assert_eq!(
            connection.plan.targets[0].settings.check,
            Some(plan::Check {
                port: 22,
                timeout: std::time::Duration::from_millis(300),
                retries: 1
            })
        );
    }
}
