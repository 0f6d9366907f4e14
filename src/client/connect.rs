//! `knockr connect TARGET [PORT]`: knock, wait until the port answers, then
//! relay stdin and stdout to it — what ssh's `ProxyCommand` wants. Nothing
//! but the relayed bytes may reach stdout; everything else goes to stderr.
//! TARGET is planned as knocking plans it: a profile, or with `-p` a host,
//! and the same flags (`--source`, `-4`, `--dry-run`, ...) apply.

use anyhow::Context;
use tokio::io::{AsyncWriteExt, copy};

use crate::client::plan::{Bind, Destination, Output, Plan, PlanError, Request, Run};
use crate::client::send;
use crate::config::profiles::Profiles;
use crate::core::text::sanitize;
use crate::exit_codes::ExitCode;

/// What `knockr connect TARGET [PORT]` does: knock the target's first host,
/// its check waiting for `port`, then relay to that port.
#[derive(Debug)]
pub(crate) struct Connection {
    /// The target as the user named it (a group names its first member's host).
    target: String,
    /// One target; its output is quiet (or `-v` lines on stderr): stdout
    /// carries only the relayed bytes.
    plan: Plan,
    /// The port relayed to once the check finds it open.
    port: u16,
}

impl Connection {
    /// Plans the connection with the planner every knock uses. `request`
    /// names one target; `port` is a flag over the profile's `check`, as
    /// `knockr --check PORT PROFILE` is, so the profile's check timings apply
    /// to it as well.
    pub(crate) fn new(
        request: &Request,
        port: Option<u16>,
        profiles: impl FnOnce() -> Result<Profiles, PlanError>,
    ) -> Result<Connection, PlanError> {
        let request = Request {
            check: port.or(request.check),
            ..request.clone()
        };
        let mut plan = Plan::new(&request, profiles)?;
        let target = request.targets.first().cloned().unwrap_or_default();
        plan.targets.truncate(1);
        let Some(first) = plan.targets.first() else {
            return Err(PlanError::Usage(format!(
                "`{}` has no host to connect to",
                sanitize(&target)
            )));
        };
        let port = first.settings.check.map(|c| c.port).ok_or_else(|| {
            PlanError::Usage(format!(
                "no port to connect to: give one (knockr connect {} PORT) or set `check` in the profile",
                sanitize(&target)
            ))
        })?;
        plan.output = match request.verbose {
            true => Output::Human {
                verbose: true,
                color: false,
            },
            false => Output::Quiet,
        };
        Ok(Connection { target, plan, port })
    }

    /// The knock to read the sequences of ([`Plan::read_sequences`]) before connecting.
    pub(crate) fn plan(&self) -> &Plan {
        &self.plan
    }
}

/// Knocks as `run` (this connection's plan, read) says, and relays until
/// both directions end; a dry run says what it would do, on stderr, and
/// neither sends nor connects.
pub(crate) async fn connect(connection: &Connection, run: &Run<'_>) -> anyhow::Result<ExitCode> {
    let report = crate::client::run(run).await;
    for problem in crate::client::plan::spend_one_time_lines(run, |t| report.sent_in_full(t)) {
        eprintln!("knockr: {}", sanitize(&problem.to_string()));
    }
    let target = &report.targets[0];
    let code = report.exit_code();
    if code != ExitCode::Success {
        eprintln!(
            "knockr: {} {}: {}",
            sanitize(&connection.target),
            sanitize(&target.host),
            sanitize(target.error.as_deref().unwrap_or("failed"))
        );
        return Ok(code);
    }
    // A target that is ok was resolved, so it has an address.
    let ip = target.address.context("the knocked address")?;
    let planned = &connection.plan.targets[0];
    // An address written with a zone keeps it; a name's address has none.
    let to = planned.literal.unwrap_or(Destination::from(ip));
    if connection.plan.conduct.dry_run {
        let knocks: Vec<String> = target
            .knocks
            .iter()
            .map(|k| format!("{}:{}", k.port, k.proto))
            .collect();
        eprintln!(
            "knockr: dry run: would knock {} on {ip}, wait for port {port}, then connect to it",
            knocks.join(" "),
            port = connection.port
        );
        return Ok(ExitCode::Success);
    }
    relay(to, connection.port, &connection.plan.conduct.bind).await?;
    Ok(ExitCode::Success)
}

/// Connects to `port` at `to` (bound as the knocks were) and copies stdin
/// to it and it to stdout until the server closes; the end of stdin is
/// passed on as a half-close.
async fn relay(to: Destination, port: u16, bind: &Bind) -> anyhow::Result<()> {
    let addr = to.at(port);
    let stream = send::connect(to, port, bind)
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

    /// `knockr connect TARGET [PORT]` with no other flag, planned against `file`.
    fn plan(file: &Profiles, target: &str, port: Option<u16>) -> Result<Connection, PlanError> {
        let request = Request {
            targets: vec![target.to_string()],
            ..Request::default()
        };
        Connection::new(&request, port, || Ok(file.clone()))
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
        let connection = plan(&file, "box", None).unwrap();
        assert_eq!(connection.port, 22, "the profile's check port");
        let [target] = connection.plan.targets.as_slice() else {
            panic!("one target: {:?}", connection.plan.targets)
        };
        assert_eq!(target.host, "b1");
        assert_eq!(
            target.settings.check,
            Some(crate::client::plan::Check {
                port: 22,
                timeout: crate::client::plan::DEFAULT_CHECK_TIMEOUT,
                retries: 3
            })
        );
        assert_eq!(
            connection.plan.output,
            Output::Quiet,
            "stdout is the relay's"
        );
        // A port given beats the profile's check port, keeping its timings.
        let connection = plan(&file, "box", Some(2222)).unwrap();
        assert_eq!(connection.port, 2222);
        let check = connection.plan.targets[0].settings.check.unwrap();
        assert_eq!((check.port, check.retries), (2222, 3));
        // A group connects to its first member's first host.
        let connection = plan(&file, "group", Some(80)).unwrap();
        assert_eq!(connection.plan.targets[0].host, "b3");
        assert_eq!(connection.target, "group", "messages name it as asked");
    }

    #[test]
    fn connect_without_a_port_or_a_check_in_the_profile_is_refused() {
        let err = plan(&profiles(FILE), "bare", None).unwrap_err();
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
        let connection = plan(&file, "p", Some(22)).unwrap();
        assert_eq!(
            connection.plan.targets[0].settings.check,
            Some(crate::client::plan::Check {
                port: 22,
                timeout: std::time::Duration::from_millis(300),
                retries: 1
            })
        );
    }
}
