//! Which address knockr knocks for a name, against glibc's getaddrinfo as
//! `getent ahosts` shows it, in a client namespace the test makes with its
//! own /etc/hosts, host.conf, gai.conf and resolv.conf (/etc/netns/NAME) and
//! a DNS stub the test runs there. As root; under CI=true these tests must
//! run, elsewhere without root they skip saying why.
#![cfg(feature = "server")]

use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::support::dns::{self, Dns};
use crate::support::netns::{Net, NetnsEtc, can_run_with, sh};

/// The client namespace of a `Net`, with routes beyond its link, a global
/// IPv6 address besides the unique-local one, and /etc files of its own.
struct Lab {
    /// Dropped last: the namespaces.
    net: Net,
    /// What the client namespace sees at /etc/hosts, /etc/resolv.conf, ...
    etc: NetnsEtc,
    /// The private HOME knockr runs with.
    home: tempfile::TempDir,
}

impl Lab {
    fn new() -> Lab {
        let net = Net::new();
        let (cli, cli_if) = (net.cli.clone(), net.cli_if());
        // Default routes towards the server side: 198.51.100.0/24 and
        // 2001:db8::/32 are routable, so the sort's later rules decide.
        sh(&[
            "ip",
            "-n",
            &cli,
            "route",
            "add",
            "default",
            "via",
            &net.v4(1),
        ]);
        sh(&[
            "ip",
            "-n",
            &cli,
            "-6",
            "route",
            "add",
            "default",
            "via",
            &net.v6(1),
        ]);
        let global = format!("{}/64", global_v6(&net, 2));
        sh(&[
            "ip", "-n", &cli, "-6", "addr", "add", &global, "dev", &cli_if, "nodad",
        ]);
        let etc = NetnsEtc::new(&cli);
        etc.set(
            "resolv.conf",
            Some(&format!("nameserver {}\n", dns::ADDRESS)),
        );
        etc.set("hosts", Some("127.0.0.1 localhost\n"));
        Lab {
            net,
            etc,
            home: tempfile::tempdir().unwrap(),
        }
    }

    /// `knockr --dry-run --json ARGS` in the client namespace: the first
    /// target's address (or error), and how long the run took.
    fn knockr(&self, args: &[&str]) -> (Result<IpAddr, String>, Duration) {
        let start = Instant::now();
        let output = self
            .net
            .in_client_ns(assert_cmd::cargo::cargo_bin("knockr"))
            .env_remove("KNOCKR_CONFIG")
            .env_remove("RESOLV_MULTI")
            .env_remove("RESOLV_HOST_CONF")
            .env("HOME", self.home.path())
            .env("XDG_CONFIG_HOME", self.home.path().join(".config"))
            .args(["--dry-run", "--json"])
            .args(args)
            .output()
            .unwrap();
        let took = start.elapsed();
        let report: serde_json::Value =
            serde_json::from_slice(&output.stdout).unwrap_or_else(|err| {
                panic!(
                    "knockr {args:?} printed no JSON ({err}): {}",
                    String::from_utf8_lossy(&output.stderr)
                )
            });
        let target = &report["targets"][0];
        let found = match target["address"].as_str() {
            Some(address) => Ok(address.parse().unwrap()),
            None => Err(target["error"].as_str().unwrap_or_default().to_string()),
        };
        (found, took)
    }

    /// Every target's address or error of a `knockr --dry-run --json` run.
    fn knockr_all(&self, args: &[&str]) -> (Vec<Result<IpAddr, String>>, Duration) {
        let start = Instant::now();
        let output = self
            .net
            .in_client_ns(assert_cmd::cargo::cargo_bin("knockr"))
            .env_remove("KNOCKR_CONFIG")
            .env("HOME", self.home.path())
            .args(["--dry-run", "--json"])
            .args(args)
            .output()
            .unwrap();
        let took = start.elapsed();
        let report: serde_json::Value =
            serde_json::from_slice(&output.stdout).unwrap_or_else(|err| {
                panic!(
                    "no JSON ({err}): {}",
                    String::from_utf8_lossy(&output.stderr)
                )
            });
        let targets = report["targets"].as_array().unwrap().iter();
        let found = targets
            .map(|t| match t["address"].as_str() {
                Some(address) => Ok(address.parse().unwrap()),
                None => Err(t["error"].as_str().unwrap_or_default().to_string()),
            })
            .collect();
        (found, took)
    }

    /// The first address `getent ahosts` (`ahostsv4` for -4, `ahostsv6` for
    /// -6) gives `name` in the client namespace; `None` when it finds none.
    /// getent asks getaddrinfo with AI_ADDRCONFIG, which changes nothing
    /// here (both families are configured), and for ahostsv6 with
    /// AI_V4MAPPED, whose mapped addresses ssh never gets: they are skipped.
    fn getent(&self, flag: Option<&str>, name: &str) -> Option<IpAddr> {
        let database = match flag {
            None => "ahosts",
            Some("-4") => "ahostsv4",
            Some("-6") => "ahostsv6",
            Some(other) => panic!("no getent database for {other}"),
        };
        let output = self
            .net
            .in_client_ns("getent")
            .args([database, name])
            .output()
            .unwrap();
        String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .filter_map(|line| line.split_whitespace().next()?.parse::<IpAddr>().ok())
            .find(|ip| !matches!(ip, IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some()))
    }

    fn v4(&self, host: u8) -> IpAddr {
        self.net.v4(host).parse().unwrap()
    }

    fn v6(&self, host: u8) -> IpAddr {
        self.net.v6(host).parse().unwrap()
    }
}

/// An address in the client's global IPv6 /64.
fn global_v6(net: &Net, host: u16) -> String {
    format!("2001:db8:200:{}::{host:x}", net.n)
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// One row of the matrix: a name looked up with a flag, under a host.conf and
/// a gai.conf; `ssh` is what getaddrinfo gives ssh where getent cannot show it.
struct Case {
    what: &'static str,
    name: &'static str,
    flag: Option<&'static str>,
    host_conf: &'static str,
    gai_conf: &'static str,
    ssh: Option<IpAddr>,
}

fn case(what: &'static str, name: &'static str, flag: Option<&'static str>) -> Case {
    Case {
        what,
        name,
        flag,
        // Debian's host.conf; an empty gai.conf is glibc's built-in tables.
        host_conf: "multi on\n",
        gai_conf: "",
        ssh: None,
    }
}

#[test]
fn resolution_matches_getent_ahosts() {
    if !can_run_with_getent() {
        return;
    }
    let lab = Lab::new();
    let n = lab.net.n;
    lab.etc.set(
        "hosts",
        Some(&format!(
            "127.0.0.1 localhost\n\
             10.200.{n}.1 gw0\n\
             10.200.{n}.1 gw1 gw2 gw10\n\
             10.200.{n}.77 gw5\n\
             fd00:200:{n}::1 gw5\n\
             10.200.{n}.1 gw5\n\
             ::1 gw6\n\
             10.200.{n}.5 canonical.knockr.test Alias5 # a comment\n"
        )),
    );
    let _dns = Dns::answering(
        &lab.net.cli,
        &[
            ("gw1", vec![lab.v4(99), ip("::1")]),
            ("gw2", vec![lab.v4(99), ip("::1")]),
            ("gw3", vec![lab.v4(1), lab.v6(1)]),
            ("gw4", vec![ip("198.51.100.7"), lab.v4(77), lab.v4(1)]),
            ("gw8", vec![ip("198.51.100.8"), ip(&global_v6(&lab.net, 8))]),
            ("gw10", vec![lab.v6(1)]),
        ],
    );
    let prefer_ipv4 = "precedence ::ffff:0:0/96 100\n";
    let cases = [
        case("hosts file only", "gw0", None),
        case("hosts file only, -4", "gw0", Some("-4")),
        case(
            "hosts file only, -6: DNS knows no IPv6 either",
            "gw0",
            Some("-6"),
        ),
        case("hosts file over DNS's other family", "gw2", None),
        case("hosts file over DNS, -4", "gw2", Some("-4")),
        Case {
            // ssh's getaddrinfo(AF_INET6) finds no IPv6 line and asks DNS;
            // getent's AI_V4MAPPED would stop at the IPv4 line instead.
            ssh: Some(ip("::1")),
            ..case("hosts file has no IPv6, -6 asks DNS", "gw2", Some("-6"))
        },
        Case {
            ssh: Some(lab.v6(1)),
            ..case(
                "hosts file has no IPv6, -6 asks DNS (AAAA only)",
                "gw10",
                Some("-6"),
            )
        },
        case("DNS only: unique-local IPv6 over IPv4", "gw3", None),
        case("DNS only, -4", "gw3", Some("-4")),
        case("DNS only, -6", "gw3", Some("-6")),
        case(
            "DNS only: the IPv4 in the subnet, nearest first",
            "gw4",
            None,
        ),
        case("DNS only: global IPv6 over IPv4", "gw8", None),
        Case {
            gai_conf: prefer_ipv4,
            ..case("gai.conf prefers IPv4", "gw8", None)
        },
        Case {
            gai_conf: prefer_ipv4,
            ..case("gai.conf prefers IPv4, hosts file", "gw5", None)
        },
        case("hosts file, both families on several lines", "gw5", None),
        case("hosts file, several lines, -4", "gw5", Some("-4")),
        case("hosts file, several lines, -6", "gw5", Some("-6")),
        Case {
            host_conf: "multi off\n",
            ..case("host.conf multi off: the first line only", "gw5", None)
        },
        Case {
            host_conf: "multi off\n",
            ..case("host.conf multi off, -6", "gw5", Some("-6"))
        },
        Case {
            host_conf: "",
            ..case(
                "host.conf without multi: glibc's default, off",
                "gw5",
                Some("-4"),
            )
        },
        case("a ::1 line", "gw6", None),
        case("a ::1 line is 127.0.0.1 under -4", "gw6", Some("-4")),
        case("an alias, another case", "ALIAS5", None),
        case("the canonical name", "canonical.knockr.test", None),
        case("an inet_aton literal", "127.1", None),
        case("a hex literal", "0x7f.1", Some("-4")),
        case("a name nobody knows", "nowhere", None),
    ];
    let mut wrong = Vec::new();
    for case in &cases {
        lab.etc.set("host.conf", Some(case.host_conf));
        lab.etc.set("gai.conf", Some(case.gai_conf));
        let expected = case.ssh.or_else(|| lab.getent(case.flag, case.name));
        let mut args: Vec<&str> = case.flag.into_iter().collect();
        args.extend(["-p", "7000", case.name]);
        let (got, _) = lab.knockr(&args);
        if got.as_ref().ok() != expected.as_ref() {
            wrong.push(format!(
                "{}: knockr {} gave {got:?}, getaddrinfo {expected:?}",
                case.what,
                args.join(" ")
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "knockr and getaddrinfo disagree:\n{}",
        wrong.join("\n")
    );
}

/// Reported: `127.0.1.1 gw1` in /etc/hosts and a DNS server answering AAAA
/// `::1`: knockr knocked ::1 while ssh, getent and the C knock use 127.0.1.1.
#[test]
fn regression_a_hosts_file_ipv4_lost_to_a_dns_ipv6_address() {
    if !can_run_with_getent() {
        return;
    }
    let lab = Lab::new();
    lab.etc
        .set("hosts", Some("127.0.0.1 localhost\n127.0.1.1 gw1\n"));
    let dns = Dns::answering(&lab.net.cli, &[("gw1", vec![ip("::1")])]);
    assert_eq!(lab.getent(None, "gw1"), Some(ip("127.0.1.1")));
    let (got, _) = lab.knockr(&["-p", "7000", "gw1"]);
    assert_eq!(got, Ok(ip("127.0.1.1")));
    assert_eq!(dns.asked(), [], "a hosts-file name is never asked of DNS");
}

/// Reported: a name only in /etc/hosts waited 15 s for an unreachable DNS on
/// every run, even with -4 (the C knock: 0.01 s).
#[test]
fn regression_a_hosts_file_name_waited_15s_for_a_silent_dns() {
    if !can_run_with_getent() {
        return;
    }
    let lab = Lab::new();
    let gw = lab.net.v4(1);
    lab.etc
        .set("hosts", Some(&format!("127.0.0.1 localhost\n{gw} gw1\n")));
    let dns = Dns::silent(&lab.net.cli);
    for flag in [None, Some("-4")] {
        let mut args: Vec<&str> = flag.into_iter().collect();
        args.extend(["-p", "7000", "gw1"]);
        let (got, took) = lab.knockr(&args);
        assert_eq!(got, Ok(ip(&gw)), "{args:?}");
        assert_eq!(lab.getent(flag, "gw1"), Some(ip(&gw)));
        // Generous: the fix takes milliseconds, the bug took 15 s.
        assert!(took < Duration::from_secs(1), "{args:?} took {took:?}");
    }
    assert_eq!(dns.asked(), []);
}

#[test]
fn a_silent_dns_costs_a_run_at_most_its_resolve_timeout_for_all_names_at_once() {
    if !can_run_with_getent() {
        return;
    }
    let lab = Lab::new();
    let gw = lab.net.v4(1);
    lab.etc
        .set("hosts", Some(&format!("127.0.0.1 localhost\n{gw} gw1\n")));
    let dns = Dns::silent(&lab.net.cli);
    let profiles = lab.home.path().join("profiles.toml");
    std::fs::write(
        &profiles,
        "[defaults]\nresolve_timeout = \"2s\"\n\
         [profiles.lab]\nhosts = [\"gw1\", \"far1\", \"far2\", \"far3\"]\nsequence = [\"7000\"]\n",
    )
    .unwrap();
    let (found, took) = lab.knockr_all(&["-c", profiles.to_str().unwrap(), "lab"]);
    assert_eq!(found[0], Ok(ip(&gw)), "the hosts-file name does not wait");
    for (name, result) in ["far1", "far2", "far3"].iter().zip(&found[1..]) {
        assert_eq!(
            result,
            &Err(format!(
                "cannot resolve {name}: DNS gave no answer within 2s (resolve_timeout)"
            ))
        );
    }
    // Generous: three names one after another would take 6 s, the bug 15 s.
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(
        dns.asked().iter().any(|(name, _)| name == "far1"),
        "DNS was asked"
    );
}

#[test]
fn a_silent_dns_costs_an_ad_hoc_knock_the_default_5s() {
    if !can_run_with_getent() {
        return;
    }
    let lab = Lab::new();
    let _dns = Dns::silent(&lab.net.cli);
    let (got, took) = lab.knockr(&["-4", "-p", "7000", "far1"]);
    assert_eq!(
        got,
        Err("cannot resolve far1: DNS gave no answer within 5s (resolve_timeout)".into())
    );
    // Generous: 5 s and the start-up, against the bug's 15 s.
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

/// `--resolve-timeout` bounds a silent DNS over a profile's longer
/// `resolve_timeout` (50 s here): knocking and `connect` give up at the
/// flag's 1 s, and say so.
#[test]
fn the_resolve_timeout_flag_overrides_the_profiles_for_a_silent_dns() {
    if !can_run_with_getent() {
        return;
    }
    let lab = Lab::new();
    let dns = Dns::silent(&lab.net.cli);
    let profiles = lab.home.path().join("profiles.toml");
    std::fs::write(
        &profiles,
        "[defaults]\nresolve_timeout = \"40s\"\n\
         [profiles.far]\nhost = \"far1\"\nsequence = [\"7000\"]\nresolve_timeout = \"50s\"\n",
    )
    .unwrap();
    let config = profiles.to_str().unwrap();
    let (got, took) = lab.knockr(&["-c", config, "--resolve-timeout", "1s", "far"]);
    assert_eq!(
        got,
        Err("cannot resolve far1: DNS gave no answer within 1s (resolve_timeout)".into())
    );
    // Very generous: the flag's 1 s and the start-up, against the profile's 50 s.
    assert!(took < Duration::from_secs(20), "took {took:?}");
    assert!(
        dns.asked().iter().any(|(name, _)| name == "far1"),
        "DNS was asked"
    );
    // `connect` takes the flag too: the knock fails, nothing is relayed.
    let start = Instant::now();
    let output = lab
        .net
        .in_client_ns(assert_cmd::cargo::cargo_bin("knockr"))
        .env_remove("KNOCKR_CONFIG")
        .env("HOME", lab.home.path())
        .args([
            "connect",
            "-c",
            config,
            "--resolve-timeout",
            "1s",
            "far",
            "22",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let took = start.elapsed();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot resolve far1: DNS gave no answer within 1s (resolve_timeout)"),
        "{stderr}"
    );
    assert!(output.stdout.is_empty(), "nothing relayed");
    assert!(took < Duration::from_secs(20), "took {took:?}");
}

fn can_run_with_getent() -> bool {
    can_run_with(&["getent"])
}
