//! A door's `[door.routeros]` table: which routers, which address list, the
//! entry's timeout, how long updates are retried, how certificates are
//! checked and where the password is kept. Validated with the span of the
//! value at fault; nothing here talks to a router.

use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::config::value::{DurationKey, DurationValue};
use crate::core::secret::SecretSource;
use crate::routeros::rest::{self, Router};
use crate::routeros::timeout;
use crate::routeros::tls::{self, Trust};

/// Retries of a router update stop this long after the knock, unless `retry` says otherwise.
pub const DEFAULT_RETRY: Duration = Duration::from_secs(20);
/// The longest `retry` accepted: well under the router's own 60 s request limit.
pub const MAX_RETRY: Duration = Duration::from_secs(50);
/// The entry's timeout when `timeout` is not written.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3600);

/// `timeout`: from 1s, as RouterOS makes an entry with a zero timeout
/// permanent, to the longest RouterOS accepts.
const TIMEOUT: DurationKey = DurationKey {
    name: "timeout",
    range: Duration::from_secs(1)..=timeout::MAX,
    whole_seconds: false,
    expected: "1s to 35w3d13h13m56s, e.g. \"1h\" (RouterOS accepts no more, and 0s would make \
               the entry permanent)",
};
/// `retry`: how long a failing update is retried.
const RETRY: DurationKey = DurationKey {
    name: "retry",
    range: Duration::ZERO..=MAX_RETRY,
    whole_seconds: false,
    expected: "at most 50s, e.g. \"20s\" (the router ends any request after 60 s)",
};

/// How often a router's uptime is asked while knockers are on its list,
/// unless `uptime_check` says otherwise.
pub const DEFAULT_UPTIME_CHECK: Duration = Duration::from_secs(60);
/// `uptime_check`: a reboot is noticed within this time.
const UPTIME_CHECK: DurationKey = DurationKey {
    name: "uptime_check",
    range: Duration::from_secs(1)..=DEFAULT_UPTIME_CHECK,
    whole_seconds: false,
    expected: "1s to 1m, e.g. \"1m\" (how soon a router reboot is noticed)",
};

/// A door's validated `[door.routeros]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterosAction {
    /// Every router the knocker goes on, concurrently.
    pub routers: Vec<Router>,
    /// The address list's name.
    pub list: String,
    /// The entry's timeout on the router (the router removes it itself).
    pub timeout: Duration,
    /// How long an update is retried after the knock before it is given up.
    pub retry: Duration,
    /// How often the routers' uptime is asked while knockers are on their
    /// lists: a reboot loses the entries, which are then put back.
    pub uptime_check: Duration,
}

/// `[door.routeros]` as written (keys as in the README); checked by
/// [`RouterosAction::from_raw`], the spans placing its errors.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRouteros {
    url: Option<Spanned<String>>,
    urls: Option<Spanned<Vec<Spanned<String>>>>,
    user: Spanned<String>,
    password_file: Option<Spanned<PathBuf>>,
    password_env: Option<Spanned<String>>,
    list: Spanned<String>,
    timeout: Option<Spanned<DurationValue>>,
    retry: Option<Spanned<DurationValue>>,
    uptime_check: Option<Spanned<DurationValue>>,
    ca_file: Option<Spanned<PathBuf>>,
    fingerprint: Option<Spanned<String>>,
    insecure: Option<Spanned<bool>>,
}

impl RouterosAction {
    /// Validates a door's table; an error carries the span of the value at
    /// fault (`table` when a key is missing).
    pub fn from_raw(
        raw: RawRouteros,
        table: Range<usize>,
    ) -> Result<RouterosAction, (Range<usize>, String)> {
        let urls: Vec<Spanned<String>> = match (raw.url, raw.urls) {
            (Some(url), None) => vec![url],
            (None, Some(urls)) if !urls.get_ref().is_empty() => urls.into_inner(),
            (None, Some(urls)) => {
                return Err((
                    urls.span(),
                    "urls is empty: expected at least one router URL".into(),
                ));
            }
            (Some(_), Some(urls)) => {
                return Err((
                    urls.span(),
                    "routeros sets both url and urls: expected one of them".into(),
                ));
            }
            (None, None) => {
                return Err((table, "[door.routeros] has no router: expected url = \"https://ROUTER\" or urls = [...]".into()));
            }
        };
        for url in &urls {
            rest::rest_base(url.get_ref()).map_err(|err| (url.span(), err))?;
        }
        let password = match (raw.password_file, raw.password_env) {
            (Some(file), None) => SecretSource::File(file.into_inner()),
            (None, Some(env)) => SecretSource::Env(env.into_inner()),
            (Some(_), Some(env)) => {
                return Err((
                    env.span(),
                    "routeros sets both password_file and password_env: expected one of them"
                        .into(),
                ));
            }
            (None, None) => {
                return Err((table, "[door.routeros] has no password: expected password_file = \"/etc/knockr/router.pass\" (mode 600) or password_env = \"VARIABLE\"".into()));
            }
        };
        let insecure = raw.insecure.as_ref().is_some_and(|i| *i.get_ref());
        let trust = match (raw.ca_file, raw.fingerprint, insecure) {
            (Some(ca), None, false) => Trust::CaFile(ca.into_inner()),
            (None, Some(pin), false) => Trust::Fingerprint(
                tls::parse_fingerprint(pin.get_ref()).map_err(|err| (pin.span(), err))?,
            ),
            (None, None, true) => Trust::Insecure,
            (None, None, false) => Trust::System,
            _ => {
                let span = raw.insecure.map_or(table, |i| i.span());
                return Err((span, "routeros sets more than one of ca_file, fingerprint and insecure: expected one of them".into()));
            }
        };
        let list = raw.list;
        if list.get_ref().trim().is_empty() {
            return Err((
                list.span(),
                "list is empty: expected the address list's name, e.g. \"knocked\"".into(),
            ));
        }
        let user = raw.user;
        if user.get_ref().is_empty() || user.get_ref().contains(':') {
            return Err((
                user.span(),
                format!(
                    "user {:?} is not usable: expected a RouterOS user name without ':'",
                    user.get_ref()
                ),
            ));
        }
        let timeout = raw.timeout.as_ref().map(|t| TIMEOUT.read(t)).transpose()?;
        let retry = raw.retry.as_ref().map(|r| RETRY.read(r)).transpose()?;
        let uptime_check = raw
            .uptime_check
            .as_ref()
            .map(|u| UPTIME_CHECK.read(u))
            .transpose()?;
        let routers = urls
            .into_iter()
            .map(|url| Router {
                url: url.into_inner(),
                user: user.get_ref().clone(),
                password: password.clone(),
                trust: trust.clone(),
            })
            .collect();
        Ok(RouterosAction {
            routers,
            list: list.into_inner(),
            timeout: timeout.unwrap_or(DEFAULT_TIMEOUT),
            retry: retry.unwrap_or(DEFAULT_RETRY),
            uptime_check: uptime_check.unwrap_or(DEFAULT_UPTIME_CHECK),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn load(table: &str) -> Result<RouterosAction, String> {
        let text = format!(
            "[[door]]\nname = \"winbox\"\nsequence = [\"7000:udp\", \"8000:udp\"]\n[door.routeros]\n{table}"
        );
        crate::config::server::parse(Path::new("knockd.toml"), &text)
            .map(|c| c.doors[0].routeros.clone().expect("a routeros action"))
            .map_err(|e| e.to_string())
    }

    const GOOD: &str = "url = \"https://192.168.88.1\"\nuser = \"knockr\"\npassword_file = \"/etc/knockr/router.pass\"\nlist = \"knocked\"\n";

    #[test]
    fn a_door_table_gives_routers_list_timeout_and_trust() {
        let pin = format!("fingerprint = \"sha256:{}\"\n", "ab".repeat(32));
        let action = load(&format!("{GOOD}timeout = \"1h30m\"\nretry = \"5s\"\n{pin}")).unwrap();
        let longest = load(&format!("{GOOD}timeout = \"35w3d13h13m56s\"\n")).unwrap();
        assert_eq!(longest.timeout, timeout::MAX);
        assert_eq!(action.list, "knocked");
        assert_eq!(action.timeout, Duration::from_secs(5400));
        assert_eq!(action.retry, Duration::from_secs(5));
        assert_eq!(
            action.routers,
            vec![Router {
                url: "https://192.168.88.1".into(),
                user: "knockr".into(),
                password: SecretSource::File("/etc/knockr/router.pass".into()),
                trust: Trust::Fingerprint([0xAB; 32]),
            }]
        );
        let two = "urls = [\"https://10.0.0.1\", \"https://10.0.0.2\"]\nuser = \"k\"\npassword_env = \"ROUTER_PASS\"\nlist = \"l\"\n";
        let action = load(two).unwrap();
        assert_eq!(action.routers.len(), 2);
        assert_eq!(
            action.routers[1].password,
            SecretSource::Env("ROUTER_PASS".into())
        );
        assert_eq!(
            action.timeout,
            Duration::from_secs(3600),
            "default timeout 1h"
        );
        assert_eq!(action.retry, DEFAULT_RETRY);
        assert_eq!(action.routers[0].trust, Trust::System);
    }

    #[test]
    fn mistakes_are_reported_at_their_line_with_what_is_accepted() {
        let cases = [
            (
                format!("{GOOD}timeout = \"36w\"\n"),
                "knockd.toml:9:11: timeout = \"36w\" is not usable: expected 1s to 35w3d13h13m56s",
            ),
            (
                format!("{GOOD}timeout = \"0s\"\n"),
                "knockd.toml:9:11: timeout = \"0s\" is not usable: expected 1s to 35w3d13h13m56s",
            ),
            (
                format!("{GOOD}timeout = \"1 fortnight\"\n"),
                "knockd.toml:9:11: timeout = \"1 fortnight\" is not a duration: expected a number with a unit",
            ),
            (
                format!("{GOOD}retry = \"90s\"\n"),
                "knockd.toml:9:9: retry = \"90s\" is not usable: expected at most 50s",
            ),
            (
                GOOD.replace("https://192.168.88.1", "192.168.88.1"),
                "knockd.toml:5:7: router url \"192.168.88.1\" is not a URL",
            ),
            (
                format!("{GOOD}insecure = true\nca_file = \"/ca.pem\"\n"),
                "knockd.toml:9:12: routeros sets more than one of ca_file, fingerprint and insecure",
            ),
            (
                format!("{GOOD}fingerprint = \"abc\"\n"),
                "knockd.toml:9:15: fingerprint \"abc\" is not understood",
            ),
            (
                format!("{GOOD}password_env = \"P\"\n"),
                "knockd.toml:9:16: routeros sets both password_file and password_env",
            ),
            (
                GOOD.replace("password_file = \"/etc/knockr/router.pass\"\n", ""),
                "knockd.toml:4:1: [door.routeros] has no password",
            ),
            (
                format!("{GOOD}pasword = \"x\"\n"),
                "knockd.toml:9:1: unknown field `pasword`",
            ),
        ];
        for (table, expected) in cases {
            let err = load(&table).unwrap_err();
            assert!(
                err.starts_with(expected),
                "{table}\ngot:      {err}\nexpected: {expected}"
            );
        }
    }
}
