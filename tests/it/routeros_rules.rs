//! `knockr routeros rules`, end to end: the binary's script imported into
//! the firewall simulator (`support::firewall`), then packet traces on a
//! simulated clock — what a router running the script would do.

use std::time::Duration;

use crate::support::firewall::{Packet, Router, Verdict};

const KNOCKER: &str = "198.51.100.20";
const SCANNER: &str = "203.0.113.66";
const KNOCKER6: &str = "2001:db8:20::1";
const SCANNER6: &str = "2001:db8:66::1";

/// The script the binary prints for `args` (after `routeros rules`).
fn generate(args: &[&str]) -> String {
    let home = tempfile::tempdir().unwrap();
    let output = crate::support::knockr(home.path())
        .args(["routeros", "rules"])
        .args(args)
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// A knock as the simulator's packet: `7000`, `8000:udp`, `56:icmp`.
fn knock(src: &str, spec: &str) -> Packet {
    match spec.split_once(':') {
        None => Packet::tcp(src, spec.parse().unwrap()),
        Some((port, "udp")) => Packet::udp(src, port.parse().unwrap()),
        Some((size, "icmp")) => Packet::ping(src, size.parse().unwrap()),
        Some(_) => panic!("knock {spec}"),
    }
}

/// Sends `sequence` from `src`, 200 ms apart; each knock itself is dropped
/// (the router shows nothing).
fn knock_all(router: &mut Router, src: &str, sequence: &str) {
    for spec in sequence.split(',') {
        let verdict = router.packet(&knock(src, spec));
        assert_ne!(verdict, Verdict::Reject, "a knock is not answered: {spec}");
        router.advance(Duration::from_millis(200));
    }
}

fn ssh(router: &mut Router, src: &str) -> Verdict {
    router.packet(&Packet::tcp(src, 22))
}

/// Every port of each protocol in `protos`, in order or shuffled, from
/// `src`, 1 ms apart ("both": tcp and udp of each port in turn).
fn scan(router: &mut Router, src: &str, protos: &[&str], shuffled: bool) {
    let mut probes: Vec<(u16, &str)> = (1..=65535u16)
        .flat_map(|port| protos.iter().map(move |proto| (port, *proto)))
        .collect();
    if shuffled {
        // A fixed xorshift, so a failure can be replayed.
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        for i in (1..probes.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            probes.swap(i, (state % (i as u64 + 1)) as usize);
        }
    }
    for (port, proto) in probes {
        let packet = match proto {
            "tcp" => Packet::tcp(src, port),
            "udp" => Packet::udp(src, port),
            _ => unreachable!(),
        };
        router.packet(&packet);
        router.advance(Duration::from_millis(1));
    }
}

#[test]
fn the_right_knock_opens_the_protected_ports_to_the_knocker_only_for_its_timeout() {
    for sequence in ["7000,8000:udp,9000", "7000,56:icmp,9000:udp"] {
        let script = generate(&[
            "--sequence",
            sequence,
            "--protect",
            "22,8291,51820:udp,60000-60010",
        ]);
        let mut router = Router::defconf();
        router.import(&script).unwrap();
        for (knocker, other) in [(KNOCKER, SCANNER), (KNOCKER6, SCANNER6)] {
            assert_eq!(ssh(&mut router, knocker), Verdict::Drop, "closed before");
            knock_all(&mut router, knocker, sequence);
            assert!(router.on_list("knocked", knocker), "{sequence}");
            for packet in [
                Packet::tcp(knocker, 22),
                Packet::tcp(knocker, 8291),
                Packet::udp(knocker, 51820),
                Packet::tcp(knocker, 60000),
                Packet::tcp(knocker, 60010),
            ] {
                assert_eq!(
                    router.packet(&packet),
                    Verdict::Accept,
                    "{sequence}: {packet:?}"
                );
            }
            for packet in [
                Packet::tcp(knocker, 23),
                Packet::udp(knocker, 22),
                Packet::tcp(knocker, 60011),
                Packet::tcp(other, 22),
            ] {
                assert_eq!(
                    router.packet(&packet),
                    Verdict::Drop,
                    "{sequence}: {packet:?}"
                );
            }
        }
        router.advance(Duration::from_secs(3600));
        assert_eq!(ssh(&mut router, KNOCKER), Verdict::Drop, "closed after 1h");
        assert_eq!(ssh(&mut router, KNOCKER6), Verdict::Drop, "closed after 1h");
    }
}

/// Each scan against a sequence that today's rules let that scan complete:
/// one protocol ascending (allowed only with --allow-weak) for the one-protocol
/// scans, and tcp, udp, tcp ascending for the scan of both.
#[test]
fn sequential_and_random_full_scans_open_nothing_and_block_the_scanner() {
    for (sequence, protos) in [
        ("7000,8000,9000", &["tcp"][..]),
        ("7000:udp,8000:udp,9000:udp", &["udp"][..]),
        ("7000,8000:udp,9000", &["tcp", "udp"][..]),
    ] {
        let script = generate(&[
            "--sequence",
            sequence,
            "--protect",
            "22",
            "--family",
            "ipv4",
            "--allow-weak",
            "--block-for",
            "1h",
        ]);
        for shuffled in [false, true] {
            let mut router = Router::defconf();
            router.import(&script).unwrap();
            scan(&mut router, SCANNER, protos, shuffled);
            assert!(
                !router.on_list("knocked", SCANNER),
                "{sequence} opened to a {protos:?} scan (shuffled: {shuffled})"
            );
            assert_eq!(ssh(&mut router, SCANNER), Verdict::Drop);
            assert!(
                router.on_list("knockr-blocked", SCANNER),
                "{sequence}: the scanner is blocked (shuffled: {shuffled})"
            );
        }
    }
}

#[test]
fn the_right_knock_after_a_scan_opens_once_the_block_expired() {
    let sequence = "7000,8000:udp,9000";
    let script = generate(&[
        "--sequence",
        sequence,
        "--protect",
        "22",
        "--block-for",
        "2m",
    ]);
    let mut router = Router::defconf();
    router.import(&script).unwrap();
    scan(&mut router, SCANNER, &["tcp", "udp"], false);
    knock_all(&mut router, SCANNER, sequence);
    assert_eq!(ssh(&mut router, SCANNER), Verdict::Drop, "still blocked");
    // Someone else is not affected by the scanner's block.
    knock_all(&mut router, KNOCKER, sequence);
    assert_eq!(ssh(&mut router, KNOCKER), Verdict::Accept);
    router.advance(Duration::from_secs(120));
    assert!(!router.on_list("knockr-blocked", SCANNER));
    knock_all(&mut router, SCANNER, sequence);
    assert_eq!(
        ssh(&mut router, SCANNER),
        Verdict::Accept,
        "the block expired"
    );
}

#[test]
fn a_knockers_own_connections_and_repeated_knocks_do_not_block_it() {
    let sequence = "7000,8000:udp,9000";
    let script = generate(&["--sequence", sequence, "--protect", "22,2222"]);
    let mut router = Router::defconf();
    router.import(&script).unwrap();
    for knocker in [KNOCKER, KNOCKER6] {
        knock_all(&mut router, knocker, sequence);
        // ssh right away, several connections, while the stage entries still live.
        for port in [22, 2222, 22] {
            assert_eq!(router.packet(&Packet::tcp(knocker, port)), Verdict::Accept);
        }
        // A knock sent twice (a retransmit, a second client) is no wrong knock.
        knock_all(&mut router, knocker, "7000,7000,8000:udp,8000:udp,9000");
        assert!(!router.on_list("knockr-blocked", knocker), "{knocker}");
        // Knocking again mid-session, with an ssh connection between the knocks,
        // refreshes the door: it stays open past the first knock's hour.
        router.advance(Duration::from_secs(1800));
        router.packet(&knock(knocker, "7000"));
        assert_eq!(ssh(&mut router, knocker), Verdict::Accept);
        knock_all(&mut router, knocker, "8000:udp,9000");
        assert!(!router.on_list("knockr-blocked", knocker), "{knocker}");
        router.advance(Duration::from_secs(1900));
        assert_eq!(ssh(&mut router, knocker), Verdict::Accept, "refreshed");
    }
}

#[test]
fn ipv6_scans_open_nothing_and_the_right_knock_opens() {
    let sequence = "7000,8000:udp,9000";
    let script = generate(&[
        "--sequence",
        sequence,
        "--protect",
        "22",
        "--family",
        "ipv6",
        "--block-for",
        "1h",
    ]);
    assert!(!script.contains("/ip firewall filter"), "{script}");
    let mut router = Router::defconf();
    router.import(&script).unwrap();
    scan(&mut router, SCANNER6, &["tcp", "udp"], false);
    assert_eq!(ssh(&mut router, SCANNER6), Verdict::Drop);
    assert!(router.on_list("knockr-blocked", SCANNER6));
    knock_all(&mut router, SCANNER6, sequence);
    assert_eq!(ssh(&mut router, SCANNER6), Verdict::Drop, "blocked");
    knock_all(&mut router, KNOCKER6, sequence);
    assert_eq!(ssh(&mut router, KNOCKER6), Verdict::Accept);
    // No IPv4 rules: an IPv4 knock opens nothing.
    knock_all(&mut router, KNOCKER, sequence);
    assert_eq!(ssh(&mut router, KNOCKER), Verdict::Drop);
}

/// A firewall of the admin's own, without the default configuration's comments.
const CUSTOM: &str = "/ip firewall filter\n\
    add chain=input action=accept connection-state=established,related comment=\"mine: established\"\n\
    add chain=input action=accept in-interface-list=LAN comment=\"mine: lan\"\n\
    add chain=input action=drop comment=\"mine: drop the rest\"\n";

#[test]
fn place_before_puts_the_accept_before_the_named_rule_or_stops_changing_nothing() {
    let sequence = "7000,8000:udp,9000";
    let mut router = Router::new();
    router.import(CUSTOM).unwrap();
    let script = generate(&[
        "--sequence",
        sequence,
        "--protect",
        "22",
        "--family",
        "ipv4",
        "--place-before",
        "mine: drop the rest",
    ]);
    router.import(&script).unwrap();
    let rules = router.rules(false);
    let at = |comment: &str| {
        rules
            .iter()
            .position(|r| r.ends_with(&format!("comment={comment}")))
            .unwrap_or_else(|| panic!("{comment}: {rules:#?}"))
    };
    assert_eq!(at("knockr: dispatch"), 0, "{rules:#?}");
    assert_eq!(
        at("knockr: accept knocked tcp"),
        at("mine: drop the rest") - 1
    );
    assert!(
        at("mine: lan") < at("knockr: accept knocked tcp"),
        "{rules:#?}"
    );
    knock_all(&mut router, KNOCKER, sequence);
    assert_eq!(ssh(&mut router, KNOCKER), Verdict::Accept);
    assert_eq!(ssh(&mut router, SCANNER), Verdict::Drop);

    // A rule that is not there: the import stops before it changes anything.
    let mut router = Router::defconf();
    let before = router.rules(false);
    let script = generate(&[
        "--sequence",
        sequence,
        "--protect",
        "22",
        "--place-before",
        "no such rule",
    ]);
    let err = router.import(&script).unwrap_err();
    assert!(
        err.contains("no input rule is commented \"no such rule\""),
        "{err}"
    );
    assert_eq!(router.rules(false), before);
}

#[test]
fn without_place_before_a_custom_firewall_gets_the_accept_on_top_and_an_empty_one_works() {
    let sequence = "7000,8000:udp,9000";
    let script = generate(&["--sequence", sequence, "--protect", "22"]);
    let mut custom = Router::new();
    custom.import(CUSTOM).unwrap();
    let mut empty = Router::new();
    for router in [&mut custom, &mut empty] {
        router.import(&script).unwrap();
        let rules = router.rules(false);
        assert!(rules[0].ends_with("comment=knockr: dispatch"), "{rules:#?}");
        assert!(
            rules[1].ends_with("comment=knockr: accept knocked tcp"),
            "{rules:#?}"
        );
        for (knocker, ipv6) in [(KNOCKER, false), (KNOCKER6, true)] {
            knock_all(router, knocker, sequence);
            assert!(
                router.on_list("knocked", knocker),
                "{:#?}",
                router.rules(ipv6)
            );
        }
    }
    knock_all(&mut custom, KNOCKER, sequence);
    assert_eq!(ssh(&mut custom, KNOCKER), Verdict::Accept);
    assert_eq!(ssh(&mut custom, SCANNER), Verdict::Drop);
}

#[test]
fn importing_twice_leaves_one_copy_tags_keep_doors_apart_and_undo_restores_the_table() {
    let mut router = Router::defconf();
    let original = (router.rules(false), router.rules(true));
    let home = generate(&[
        "--sequence",
        "7000,8000:udp,9000",
        "--protect",
        "22",
        "--tag",
        "home",
    ]);
    router.import(&home).unwrap();
    let once = (router.rules(false), router.rules(true));
    router.import(&home).unwrap();
    assert_eq!(
        (router.rules(false), router.rules(true)),
        once,
        "imported twice"
    );

    // A changed sequence replaces the old one, a second tag sits beside it.
    let shorter = generate(&[
        "--sequence",
        "7100,8100:udp",
        "--protect",
        "22",
        "--tag",
        "home",
    ]);
    router.import(&shorter).unwrap();
    let office = generate(&[
        "--sequence",
        "9100:udp,9000",
        "--protect",
        "8291",
        "--tag",
        "office",
    ]);
    router.import(&office).unwrap();
    knock_all(&mut router, KNOCKER, "7000,8000:udp,9000");
    assert_eq!(
        ssh(&mut router, KNOCKER),
        Verdict::Drop,
        "the old sequence is gone"
    );
    knock_all(&mut router, KNOCKER, "7100,8100:udp");
    assert_eq!(ssh(&mut router, KNOCKER), Verdict::Accept);
    knock_all(&mut router, KNOCKER6, "9100:udp,9000");
    assert_eq!(router.packet(&Packet::tcp(KNOCKER6, 8291)), Verdict::Accept);
    // Mid-sequence and blocked sources leave entries on the stage and blocked lists.
    router.packet(&knock(SCANNER, "7100"));
    router.packet(&knock(SCANNER, "1"));
    router.packet(&knock(SCANNER6, "9100:udp"));
    assert!(router.on_list("home-blocked", SCANNER));

    router
        .import(&generate(&["--undo", "--tag", "home"]))
        .unwrap();
    assert!(!router.on_list("home-blocked", SCANNER));
    assert!(
        router.on_list("office-s1", SCANNER6),
        "the other tag's lists stay"
    );
    assert_eq!(
        router.packet(&Packet::tcp(KNOCKER6, 8291)),
        Verdict::Accept,
        "office stays open"
    );
    router
        .import(&generate(&["--undo", "--tag", "office"]))
        .unwrap();
    assert_eq!((router.rules(false), router.rules(true)), original);
    let left: Vec<_> = router
        .entries(false)
        .into_iter()
        .chain(router.entries(true))
        .map(|(list, _)| list)
        .collect();
    assert!(left.iter().all(|list| list == "knocked"), "{left:?}");
}

#[test]
fn scannable_sequences_are_refused_unless_allowed_and_the_flags_are_checked() {
    let home = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        crate::support::knockr(home.path())
            .args(["routeros", "rules"])
            .args(args)
            .output()
            .unwrap()
    };
    for (args, message) in [
        (
            &["--sequence", "7000", "--protect", "22"][..],
            "a single knock is completed by any port scan",
        ),
        (
            &["--sequence", "7000,8000,9000", "--protect", "22"][..],
            "knocks on ascending tcp ports, so a sequential port scan can open it",
        ),
        (
            &["--sequence", "7000,8000:udp", "--protect", "22:icmp"][..],
            "--protect \"22:icmp\" is not usable: expected PORT[-PORT][:tcp|udp]",
        ),
    ] {
        let output = run(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert!(output.stdout.is_empty());
    }
    let output = run(&["--sequence", "7000", "--protect", "22", "--allow-weak"]);
    assert_eq!(output.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("knockr: warning: a single knock"),
        "{stderr}"
    );
}
