//! A door's `[door.nftables]` table: which table and sets knockers go in,
//! and the elements' timeout. Validated with the span of the value at fault;
//! nothing here talks to the kernel (that is `server::nftables`, which also
//! checks at start that the sets exist as needed).

use std::ops::Range;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::config::value::{DurationKey, DurationValue};
use crate::nft::netlink::{self, Family, Key, SetRef};

/// The table when `table` is not written: the one `knockr nft rules` makes.
pub const DEFAULT_TABLE: &str = "knockr";
/// The IPv4 set when `set` is not written (`knockr nft rules --for-knockd`).
pub const DEFAULT_SET: &str = "knocked_v4";
/// The IPv6 set when `set6` is not written.
pub const DEFAULT_SET6: &str = "knocked_v6";
/// The element's timeout when neither `timeout` nor the door's `cmd_timeout` is written.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3600);

/// `timeout`: the kernel removes the knocker after it. Zero would make the
/// element permanent, so a door left open by a dead knockd would stay open.
const TIMEOUT: DurationKey = DurationKey {
    name: "timeout",
    range: Duration::from_secs(1)..=Duration::from_secs(365 * 24 * 3600),
    whole_seconds: false,
    expected: "1s to 365d, e.g. \"1h\" (0s would keep the knocker in the set for good)",
};

/// A door's validated `[door.nftables]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NftablesAction {
    /// Where IPv4 knockers go; `None` in an `ip6` table.
    pub set: Option<SetRef>,
    /// Where IPv6 knockers go; `None` in an `ip` table.
    pub set6: Option<SetRef>,
    /// The element's timeout: the kernel closes the door after it, knockd or not.
    pub timeout: Duration,
}

impl NftablesAction {
    /// The set a knocker from `addr` goes in, if the door has one for its family.
    pub fn set_for(&self, addr: std::net::IpAddr) -> Option<&SetRef> {
        match Key::of(addr) {
            Key::Ipv4 => self.set.as_ref(),
            Key::Ipv6 => self.set6.as_ref(),
        }
    }

    /// Both sets, those the door has.
    pub fn sets(&self) -> impl Iterator<Item = &SetRef> {
        self.set.iter().chain(self.set6.iter())
    }
}

/// `[door.nftables]` as written (keys as in the README); checked by
/// [`NftablesAction::from_raw`].
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNftables {
    family: Option<Spanned<String>>,
    table: Option<Spanned<String>>,
    set: Option<Spanned<String>>,
    set6: Option<Spanned<String>>,
    timeout: Option<Spanned<DurationValue>>,
}

impl NftablesAction {
    /// Validates a door's table; `cmd_timeout` is the door's, the timeout
    /// when none is written. An error carries the span of the value at fault.
    pub fn from_raw(
        raw: RawNftables,
        cmd_timeout: Option<Duration>,
        table: Range<usize>,
    ) -> Result<NftablesAction, (Range<usize>, String)> {
        let family = match &raw.family {
            None => Family::Inet,
            Some(f) => Family::parse(f.get_ref()).ok_or_else(|| {
                let message = format!(
                    "family = {:?} is not an nftables family: expected \"inet\", \"ip\" or \"ip6\"",
                    f.get_ref()
                );
                (f.span(), message)
            })?,
        };
        let name = |value: &Spanned<String>, key: &str| {
            if netlink::valid_name(value.get_ref()) {
                Ok(value.get_ref().clone())
            } else {
                let message = format!(
                    "{key} = {:?} is not an nftables name: expected a letter, then letters, \
                     digits, '_', '-' or '.'",
                    value.get_ref()
                );
                Err((value.span(), message))
            }
        };
        let table_name = match &raw.table {
            Some(t) => name(t, "table")?,
            None => DEFAULT_TABLE.to_string(),
        };
        let set_of = |written: &Option<Spanned<String>>,
                      key: &str,
                      default: &str,
                      k: Key,
                      holds: bool| {
            match (written, holds) {
                (Some(s), false) => Err((
                    s.span(),
                    format!(
                        "{key} is set in an {} table, which holds no {} addresses: remove it or use family = \"inet\"",
                        family.name(),
                        match k {
                            Key::Ipv4 => "IPv4",
                            Key::Ipv6 => "IPv6",
                        }
                    ),
                )),
                (_, false) => Ok(None),
                (Some(s), true) => Ok(Some(name(s, key)?)),
                (None, true) => Ok(Some(default.to_string())),
            }
            .map(|set: Option<String>| {
                set.map(|set| SetRef {
                    family,
                    table: table_name.clone(),
                    set,
                    key: k,
                })
            })
        };
        let set = set_of(
            &raw.set,
            "set",
            DEFAULT_SET,
            Key::Ipv4,
            family != Family::Ip6,
        )?;
        let set6 = set_of(
            &raw.set6,
            "set6",
            DEFAULT_SET6,
            Key::Ipv6,
            family != Family::Ip,
        )?;
        if let (Some(a), Some(b)) = (&set, &set6)
            && a.set == b.set
        {
            let span = raw.set6.as_ref().map_or(table, |s| s.span());
            return Err((
                span,
                format!(
                    "set and set6 are both {:?}: a set holds one family's addresses, so expected two names",
                    a.set
                ),
            ));
        }
        let timeout = raw.timeout.as_ref().map(|t| TIMEOUT.read(t)).transpose()?;
        Ok(NftablesAction {
            set,
            set6,
            timeout: timeout
                .or(cmd_timeout.filter(|t| TIMEOUT.range.contains(t)))
                .unwrap_or(DEFAULT_TIMEOUT),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn load(extra: &str, table: &str) -> Result<NftablesAction, String> {
        let text = format!(
            "[[door]]\nname = \"ssh\"\nsequence = [\"7000\", \"8000:udp\"]\n{extra}[door.nftables]\n{table}"
        );
        crate::config::server::parse(Path::new("knockd.toml"), &text)
            .map(|c| c.doors[0].nftables.clone().expect("an nftables action"))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn an_empty_table_means_the_sets_knockr_nft_rules_for_knockd_makes() {
        let action = load("", "").unwrap();
        assert_eq!(
            action.set.as_ref().unwrap().to_string(),
            "inet knockr knocked_v4"
        );
        assert_eq!(
            action.set6.as_ref().unwrap().to_string(),
            "inet knockr knocked_v6"
        );
        assert_eq!(action.timeout, Duration::from_secs(3600));
        let v6: std::net::IpAddr = "2001:db8::1".parse().unwrap();
        let mapped: std::net::IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(action.set_for(v6).unwrap().set, "knocked_v6");
        assert_eq!(action.set_for(mapped).unwrap().set, "knocked_v4");
    }

    #[test]
    fn the_timeout_is_the_doors_cmd_timeout_unless_written() {
        assert_eq!(
            load("cmd_timeout = \"30s\"\n", "").unwrap().timeout,
            Duration::from_secs(30)
        );
        let written = load("cmd_timeout = \"30s\"\n", "timeout = \"2m\"\n").unwrap();
        assert_eq!(written.timeout, Duration::from_secs(120));
    }

    #[test]
    fn a_one_family_table_has_one_set() {
        let ip = load(
            "",
            "family = \"ip\"\ntable = \"filter\"\nset = \"ssh_ok\"\n",
        )
        .unwrap();
        assert_eq!(ip.set.unwrap().to_string(), "ip filter ssh_ok");
        assert_eq!(ip.set6, None);
        let ip6 = load("", "family = \"ip6\"\n").unwrap();
        assert_eq!(
            (ip6.set, ip6.set6.unwrap().set),
            (None, "knocked_v6".to_string())
        );
    }

    #[test]
    fn mistakes_are_reported_at_their_line_with_what_is_accepted() {
        let cases = [
            (
                "family = \"bridge\"\n",
                "knockd.toml:5:10: family = \"bridge\" is not an nftables family",
            ),
            (
                "table = \"my table\"\n",
                "knockd.toml:5:9: table = \"my table\" is not an nftables name",
            ),
            (
                "set = \"x;y\"\n",
                "knockd.toml:5:7: set = \"x;y\" is not an nftables name",
            ),
            (
                "family = \"ip\"\nset6 = \"v6\"\n",
                "knockd.toml:6:8: set6 is set in an ip table, which holds no IPv6 addresses",
            ),
            (
                "set = \"k\"\nset6 = \"k\"\n",
                "knockd.toml:6:8: set and set6 are both \"k\"",
            ),
            (
                "timeout = \"0s\"\n",
                "knockd.toml:5:11: timeout = \"0s\" is not usable: expected 1s to 365d",
            ),
            (
                "timout = \"1h\"\n",
                "knockd.toml:5:1: unknown field `timout`",
            ),
        ];
        for (table, expected) in cases {
            let err = load("", table).unwrap_err();
            assert!(
                err.starts_with(expected),
                "{table}\ngot:      {err}\nexpected: {expected}"
            );
        }
    }
}
