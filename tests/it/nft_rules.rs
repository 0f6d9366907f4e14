//! `knockr nft rules`: every ruleset the binary prints is one `nft -c -f`
//! accepts, weak sequences are refused, and live in namespaces the test makes,
//! the kernel alone opens the protected port to a knocker and to nobody else;
//! with `--for-knockd`, to whom a `[door.nftables]` door with its defaults
//! puts in the sets, and to nobody else.

use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

use crate::support::netns::{Net, can_run_with};
use crate::support::{knockr, profiles};

/// The ruleset `knockr nft rules ARGS` prints (exit 0 asserted).
fn ruleset(args: &[&str]) -> String {
    let home = tempfile::tempdir().unwrap();
    let output = knockr(home.path())
        .args(["nft", "rules"])
        .args(args)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{args:?}: {output:?}");
    String::from_utf8(output.stdout).unwrap()
}

/// `nft -c -f FILE` on `text`: its exit status and stderr.
fn nft_check(text: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("knockr.nft");
    std::fs::write(&file, text).unwrap();
    let output = Command::new("nft")
        .arg("-c")
        .arg("-f")
        .arg(&file)
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn nft_check_accepts_every_ruleset() {
    if !can_run_with(&["nft"]) {
        return;
    }
    let profile = profiles(
        "[profiles.home]\nhost = \"127.0.0.1\"\nsequence = [\"7000\", \"8000:udp\", \"9000\"]\n",
    );
    let profile_path = profile.path.to_str().unwrap();
    let cases: &[&[&str]] = &[
        &["--sequence", "7000,8000:udp,9000", "--protect", "22"],
        &[
            "--sequence",
            "7000,56:icmp,9000,8000:udp",
            "--protect",
            "22,8291,51820:udp,60000-60010,5000-5001:udp",
        ],
        &[
            "--sequence",
            "9000,7000:udp",
            "--protect",
            "22",
            "--family",
            "ipv4",
            "--interface",
            "eth0",
        ],
        &[
            "--sequence",
            "9000,7000:udp",
            "--protect",
            "53:udp",
            "--family",
            "ipv6",
            "--table",
            "knock_home",
            "--set",
            "open",
        ],
        &[
            "--sequence",
            "7000",
            "--allow-weak",
            "--protect",
            "22",
            "--timeout",
            "2d3h",
            "--block-for",
            "5m",
        ],
        &[
            "--sequence",
            "7000,8000",
            "--allow-weak",
            "--protect",
            "22",
            "--for-knockd",
        ],
        &["-c", profile_path, "home", "--protect", "22"],
        &[
            "-c",
            profile_path,
            "home",
            "--protect",
            "22",
            "--for-knockd",
            "--family",
            "ipv4",
        ],
        // The sequence is knockd's: a weak one needs no --allow-weak here.
        &[
            "--sequence",
            "7000,8000,9000",
            "--protect",
            "22,51820:udp,60000-60010,5000-5001:udp",
            "--for-knockd",
            "--interface",
            "eth0",
            "--timeout",
            "2d",
        ],
        &[
            "--sequence",
            "9000,7000:udp",
            "--protect",
            "53:udp",
            "--for-knockd",
            "--family",
            "ipv6",
            "--table",
            "knock_home",
            "--set",
            "open",
        ],
    ];
    for args in cases {
        let text = ruleset(args);
        let (ok, stderr) = nft_check(&text);
        assert!(
            ok,
            "nft -c refused the ruleset of {args:?}: {stderr}\n{text}"
        );
    }
    // The check can fail: a ruleset nft cannot read is refused.
    let broken = ruleset(cases[0]).replace("update @stage1_v4", "update @stage9_v4");
    assert!(!nft_check(&broken).0, "nft -c accepted a broken ruleset");
    let broken = ruleset(cases[8]).replace("saddr @knocked_v4", "saddr @knocked_v9");
    assert!(
        !nft_check(&broken).0,
        "nft -c accepted a broken --for-knockd ruleset"
    );
}

#[test]
fn nft_rules_refuses_a_weak_sequence_unless_allowed() {
    let home = tempfile::tempdir().unwrap();
    let output = knockr(home.path())
        .args([
            "nft",
            "rules",
            "--sequence",
            "7000,8000,9000",
            "--protect",
            "22",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--allow-weak"));
    assert!(output.stdout.is_empty());
    let bad = knockr(home.path())
        .args([
            "nft",
            "rules",
            "--sequence",
            "9000,7000:udp",
            "--protect",
            "22:icmp",
        ])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn nft_rules_open_the_port_to_a_knocker_only() {
    if !can_run_with(&["nft"]) {
        return;
    }
    let net = Net::new();
    let text = ruleset(&[
        "--sequence",
        "7000,8000:udp,9000",
        "--protect",
        "2222",
        "--stage-timeout",
        "5s",
        "--timeout",
        "3s",
    ]);
    net.load_nft(&text);
    // Loading again replaces the table instead of failing.
    net.load_nft(&text);
    let listener = net.listen(2222);
    let v4: SocketAddr = format!("{}:2222", net.v4(1)).parse().unwrap();
    let v6: SocketAddr = format!("[{}]:2222", net.v6(1)).parse().unwrap();
    assert!(!net.connects(v4), "connected over IPv4 before any knock");
    assert!(!net.connects(v6), "connected over IPv6 before any knock");

    // A wrong knock mid-sequence (a scan's next port) blocks the source.
    assert_eq!(
        net.knock(&[&net.v4(1), "7000", "7001", "8000:udp", "9000"]),
        Some(0)
    );
    assert!(
        !net.connects(v4),
        "a wrong knock mid-sequence opened the port"
    );

    // The right sequence over IPv6 opens IPv6 only, from the kernel alone.
    assert_eq!(
        net.knock(&[&net.v6(1), "7000", "8000:udp", "9000"]),
        Some(0)
    );
    assert!(
        net.connects(v6),
        "the knock over IPv6 did not open the port"
    );
    assert!(
        !net.connects(v4),
        "IPv4 opened by an IPv6 knock (or the block was lifted)"
    );
    let listed = net
        .in_server("nft")
        .args(["list", "set", "inet", "knockr", "knocked_v6"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&listed.stdout).contains(&net.v6(2)),
        "{listed:?}"
    );
    // The kernel closes the door by itself when the entry expires.
    std::thread::sleep(Duration::from_millis(3500));
    let after = net
        .in_server("nft")
        .args(["list", "table", "inet", "knockr"])
        .output()
        .unwrap();
    assert!(
        !net.connects(v6),
        "still open after the set's timeout: {}",
        String::from_utf8_lossy(&after.stdout)
    );
    drop(listener);
}

#[test]
fn nft_rules_stay_shut_to_a_sequential_scan() {
    if !can_run_with(&["nft"]) {
        return;
    }
    let net = Net::new();
    let text = ruleset(&["--sequence", "7000,8000:udp,9000", "--protect", "2222"]);
    net.load_nft(&text);
    let listener = net.listen(2222);
    let server = net.v4(1);
    // Without the block on a wrong knock, these three sweeps would walk
    // 7000, 8000/udp and 9000 in order and open the port.
    net.in_client(move || {
        let udp = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
        for port in 6990..=7010 {
            let addr: SocketAddr = format!("{server}:{port}").parse().unwrap();
            let _ = TcpStream::connect_timeout(&addr, Duration::from_millis(200));
        }
        for port in 7990..=8010 {
            let _ = udp.send_to(b"x", format!("{server}:{port}"));
        }
        for port in 8990..=9010 {
            let addr: SocketAddr = format!("{server}:{port}").parse().unwrap();
            let _ = TcpStream::connect_timeout(&addr, Duration::from_millis(200));
        }
    });
    let v4: SocketAddr = format!("{}:2222", net.v4(1)).parse().unwrap();
    assert!(!net.connects(v4), "a sequential scan opened the port");
    drop(listener);
}

/// A bounded pseudo-random scan (fixed seed, so a failure repeats): 300
/// probes of random TCP and UDP ports, with the knocks 7000, 8000/udp, 9000
/// among them in order at random places, as a scan that happens to cross
/// the sequence would send them. `(udp, port)`.
fn random_scan() -> Vec<(bool, u16)> {
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        // xorshift64: enough to scatter ports, and the same every run.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut probes: Vec<(bool, u16)> = std::iter::repeat_with(&mut next)
        .map(|r| (r & 1 == 1, 1024 + ((r >> 1) % 64000) as u16))
        .filter(|(_, port)| ![2222, 7000, 8000, 9000].contains(port))
        .take(297)
        .collect();
    let mut places: Vec<usize> = (0..3).map(|_| (next() % 290) as usize).collect();
    places.sort_unstable();
    for (offset, (place, knock)) in places
        .into_iter()
        .zip([(false, 7000), (true, 8000), (false, 9000)])
        .enumerate()
    {
        // After the earlier knocks, and at least one probe between them.
        probes.insert(place + 2 * offset + 1, knock);
    }
    probes
}

/// Sends `probes` from the client namespace to `server`, one after another.
fn scan(net: &Net, server: std::net::IpAddr, probes: Vec<(bool, u16)>) {
    net.in_client(move || {
        let udp = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
        for (is_udp, port) in probes {
            let addr = SocketAddr::new(server, port);
            if is_udp {
                let _ = udp.send_to(b"x", addr);
            } else {
                let _ = TcpStream::connect_timeout(&addr, Duration::from_millis(200));
            }
        }
    });
}

#[test]
fn nft_rules_stay_shut_to_a_random_scan_that_crosses_the_sequence_in_order() {
    if !can_run_with(&["nft"]) {
        return;
    }
    let text = ruleset(&["--sequence", "7000,8000:udp,9000", "--protect", "2222"]);
    // The same ruleset without the block on a wrong knock: the control,
    // which the same scan opens, so the scan is one that could.
    let unblocked: String = text
        .lines()
        .filter(|line| !line.contains("update @blocked_"))
        .map(|line| format!("{line}\n"))
        .collect();
    for (rules, opens) in [(unblocked, true), (text, false)] {
        let net = Net::new();
        net.load_nft(&rules);
        let listener = net.listen(2222);
        let probes = random_scan();
        assert_eq!(probes.len(), 300);
        scan(&net, net.v4(1).parse().unwrap(), probes);
        let v4: SocketAddr = format!("{}:2222", net.v4(1)).parse().unwrap();
        assert_eq!(
            net.connects(v4),
            opens,
            "a random scan across the knocks, with the block on a wrong knock: {}",
            !opens
        );
        drop(listener);
    }
}

/// The address set `nft list set inet knockr SET` prints, in the server namespace.
fn list_set(net: &Net, set: &str) -> String {
    let listed = net
        .in_server("nft")
        .args(["list", "set", "inet", "knockr", set])
        .output()
        .unwrap();
    assert!(listed.status.success(), "{listed:?}");
    String::from_utf8_lossy(&listed.stdout).into_owned()
}

/// `knockr knockd -c CONFIG --check` in the server namespace: exit status and stderr.
fn knockd_check(net: &Net, config: &std::path::Path) -> (Option<i32>, String) {
    let output = net
        .in_server(assert_cmd::cargo::cargo_bin("knockr"))
        .args(["knockd", "--check", "-c"])
        .arg(config)
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn nft_rules_for_knockd_are_what_a_nftables_door_needs() {
    if !can_run_with(&["nft"]) {
        return;
    }
    let net = Net::new();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("knockd.toml");
    // An empty [door.nftables]: the defaults are --for-knockd's names.
    std::fs::write(
        &config,
        "[[door]]\nname = \"ssh\"\nsequence = [\"7000\", \"9000:udp\", \"8000\"]\n\
         seq_timeout = \"5s\"\ntcp_flags = \"syn\"\n[door.nftables]\ntimeout = \"3s\"\n",
    )
    .unwrap();
    let load = |args: &[&str]| net.load_nft(&ruleset(args));
    // No sequence: knockd detects the knock.
    let args = ["--protect", "2222", "--for-knockd"];
    // --family ipv4 narrows only the chain: both sets are there, so the
    // door (which takes knockers of both families) is accepted...
    load(&[&args[..], &["--family", "ipv4"]].concat());
    let (code, stderr) = knockd_check(&net, &config);
    assert_eq!(code, Some(0), "{stderr}");
    // ... as with both families. Loading again replaces the table.
    load(&args);
    load(&args);
    let (code, stderr) = knockd_check(&net, &config);
    assert_eq!(code, Some(0), "{stderr}");

    let listener = net.listen(2222);
    let v4: SocketAddr = format!("{}:2222", net.v4(1)).parse().unwrap();
    let v6: SocketAddr = format!("[{}]:2222", net.v6(1)).parse().unwrap();
    assert!(!net.connects(v4), "connected over IPv4 with empty sets");
    assert!(!net.connects(v6), "connected over IPv6 with empty sets");
    // No knockd yet: the kernel does not detect the knock by itself.
    assert_eq!(
        net.knock(&[&net.v4(1), "7000", "9000:udp", "8000"]),
        Some(0)
    );
    assert!(!net.connects(v4), "the kernel detected a knock by itself");

    let mut server = net.server(&config);
    assert_eq!(
        net.knock(&[&net.v4(1), "7000", "9000:udp", "8000"]),
        Some(0)
    );
    server.expect(&format!(
        "ssh: {} added to nftables set inet knockr knocked_v4 (timeout 3s)",
        net.v4(2)
    ));
    assert!(net.connects(v4), "the IPv4 knocker was not let in");
    assert!(!net.connects(v6), "IPv6 opened by an IPv4 knock");
    assert_eq!(
        net.knock(&[&net.v6(1), "7000", "9000:udp", "8000"]),
        Some(0)
    );
    server.expect(&format!(
        "ssh: {} added to nftables set inet knockr knocked_v6",
        net.v6(2)
    ));
    assert!(net.connects(v6), "the IPv6 knocker was not let in");
    // The kernel closes the door by itself, knockd gone or not.
    server.kill9();
    std::thread::sleep(Duration::from_millis(3500));
    assert!(
        !net.connects(v4),
        "still open over IPv4 after the element's timeout: {}",
        list_set(&net, "knocked_v4")
    );
    assert!(
        !net.connects(v6),
        "still open over IPv6 after the element's timeout: {}",
        list_set(&net, "knocked_v6")
    );
    drop(listener);
}
