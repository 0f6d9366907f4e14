//! `knockr routeros check -c knockd.toml`: for each router of each door with
//! `[door.routeros]`, whether knockd will be able to use it — reachable, whose
//! certificate it showed and how it was checked, credentials accepted, and the
//! list readable and writable (a probe entry for 192.0.2.1, an address of
//! the documentation range, is added with a 10 s timeout and deleted again).
//!
//! It prints one block per router and never the password.

use std::io::Write;
use std::net::IpAddr;
use std::time::Duration;

use tokio::time::Instant;

use crate::routeros::rest::{self, AddressList, Entry, RestError, Router};
use crate::routeros::tls;

/// The probe entry's address: TEST-NET-1, never a real knocker.
pub const PROBE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
/// How long each step may retry a failing router.
const PATIENCE: Duration = Duration::from_secs(3);

/// One router's answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterCheck {
    /// The door and router the block is about, and the door's list.
    pub door: String,
    pub router: Router,
    pub list: String,
    /// (aspect, passed, what was found), in the order checked.
    pub lines: Vec<(&'static str, bool, String)>,
}

impl RouterCheck {
    pub fn ok(&self) -> bool {
        self.lines.iter().all(|(_, ok, _)| *ok)
    }
}

/// One router to check: the door naming it, its list, and its password as
/// read from the file or variable (or why it could not be read).
#[derive(Debug, Clone)]
pub struct Door {
    pub door: String,
    pub router: Router,
    pub list: String,
    pub password: Result<String, String>,
}

/// Checks every router, concurrently; in the order given.
pub async fn check(doors: Vec<Door>) -> Vec<RouterCheck> {
    let work: Vec<_> = doors
        .into_iter()
        .map(|door| tokio::spawn(check_router(door)))
        .collect();
    let mut checks = Vec::new();
    for task in work {
        if let Ok(check) = task.await {
            checks.push(check);
        }
    }
    checks
}

async fn check_router(door: Door) -> RouterCheck {
    let Door {
        door,
        router,
        list,
        password,
    } = door;
    let mut lines = Vec::new();
    let report = |lines: &mut Vec<_>| RouterCheck {
        door: door.clone(),
        router: router.clone(),
        list: list.clone(),
        lines: std::mem::take(lines),
    };
    let client = match password.and_then(|password| AddressList::new(&router, password)) {
        Ok(client) => client,
        Err(err) => {
            lines.push(("set-up", false, err));
            return report(&mut lines);
        }
    };
    let started = Instant::now();
    let read = client
        .entries(PROBE, &list, Instant::now() + PATIENCE)
        .await;
    let elapsed = started.elapsed();
    let https = router.url.to_ascii_lowercase().starts_with("https://");
    let identity = |client: &AddressList| -> (bool, String) {
        if !https {
            return (
                true,
                "none: WARNING, http:// sends the password in clear".into(),
            );
        }
        let seen = *client.seen.lock().unwrap_or_else(|p| p.into_inner());
        let leaf = seen.map_or("no certificate seen".into(), |d| {
            format!("certificate {}", tls::fingerprint_text(&d))
        });
        (true, format!("{}; {leaf}", router.trust.describe()))
    };
    match read {
        Ok(entries) => {
            lines.push((
                "reachable",
                true,
                format!("yes ({} ms)", elapsed.as_millis()),
            ));
            let (ok, text) = identity(&client);
            lines.push(("identity", ok, text));
            lines.push((
                "credentials",
                true,
                format!("user {} accepted", router.user),
            ));
            lines.push((
                "read list",
                true,
                format!("yes ({} entries on {list})", entries.len()),
            ));
        }
        Err(RestError::Denied(sentence)) => {
            lines.push(("reachable", true, "yes".into()));
            let (ok, text) = identity(&client);
            lines.push(("identity", ok, text));
            lines.push(("credentials", false, sentence));
            return report(&mut lines);
        }
        Err(RestError::Certificate(sentence)) => {
            lines.push(("reachable", true, "yes".into()));
            lines.push(("identity", false, sentence));
            return report(&mut lines);
        }
        Err(err) => {
            let (_, text) = identity(&client);
            lines.push(("reachable", false, format!("NO: {err}")));
            lines.push(("identity", false, text));
            return report(&mut lines);
        }
    }
    let probe = Entry {
        list: list.clone(),
        address: PROBE,
        timeout: Duration::from_secs(10),
        comment: "knockr: routeros check probe".into(),
    };
    let write = match client.add(&probe, Instant::now() + PATIENCE).await {
        Ok(id) => match client.delete(PROBE, &id, Instant::now() + PATIENCE).await {
            Ok(()) => (
                true,
                format!("yes (added and deleted {PROBE}, timeout 10s)"),
            ),
            Err(err) => (
                false,
                format!("added {PROBE} but could not delete it (it expires in 10 s): {err}"),
            ),
        },
        Err(err) if rest::is_duplicate(&err) => (
            false,
            format!("not tested: {PROBE} is already on {list}; remove it and check again"),
        ),
        Err(err) => (false, format!("NO: {err}")),
    };
    lines.push(("write list", write.0, write.1));
    report(&mut lines)
}

/// Prints the blocks and a summary; returns whether every router passed.
pub fn print(checks: &[RouterCheck], out: &mut dyn Write) -> std::io::Result<bool> {
    use crate::core::text::sanitize;
    for check in checks {
        writeln!(
            out,
            "door {}: router {} (user {}, list {})",
            sanitize(&check.door),
            sanitize(&check.router.url),
            sanitize(&check.router.user),
            sanitize(&check.list)
        )?;
        for (aspect, ok, text) in &check.lines {
            let mark = if *ok { "ok  " } else { "FAIL" };
            writeln!(out, "  {mark} {aspect:<12} {}", sanitize(text))?;
        }
    }
    let failing = checks.iter().filter(|c| !c.ok()).count();
    if checks.is_empty() {
        writeln!(out, "no door has a [door.routeros] table: nothing to check")?;
    } else if failing == 0 {
        writeln!(out, "all {} router(s) ready", checks.len())?;
    } else {
        writeln!(out, "{failing} of {} router(s) not ready", checks.len())?;
    }
    Ok(failing == 0 && !checks.is_empty())
}
