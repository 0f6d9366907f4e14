//! `[door.nftables]` live, as root (issue 16): knockd puts a knocker's
//! address into an nftables set of the server's namespace, which an input
//! chain the test loads lets through to a protected port. Every test reads
//! the kernel's state back (`nft -j list set`) and connects for real from
//! the client namespace; the log is only waited on. Under CI=true these
//! tests must run; elsewhere without root or nft they skip, saying why.
#![cfg(feature = "server")]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::netns::{Net, Server, can_run_with, state_file_for, which};
use crate::support::{PATIENCE, knockr};

/// The port the input chain keeps shut to all but the sets' members.
const PROTECTED: u16 = 2222;

/// The door's sequence, as the client sends it.
const SEQUENCE: &str = "7000,8000:udp,9000";

/// The sets `knockr nft rules --for-knockd` makes (the door's defaults),
/// and an input chain that opens [`PROTECTED`] to their members only.
/// Written out here, so the test does not depend on whether that output
/// has an input chain of its own.
fn ruleset() -> String {
    format!(
        "table inet knockr {{\n\
         \tset knocked_v4 {{ type ipv4_addr; flags timeout; }}\n\
         \tset knocked_v6 {{ type ipv6_addr; flags timeout; }}\n\
         {}}}\n",
        input_chain()
    )
}

/// The input chain of [`ruleset`], to go inside `table inet knockr { }`.
fn input_chain() -> String {
    format!(
        "\tchain knockr_test_input {{\n\
         \t\ttype filter hook input priority filter - 10; policy accept;\n\
         \t\ttcp dport {PROTECTED} ip saddr @knocked_v4 accept\n\
         \t\ttcp dport {PROTECTED} ip6 saddr @knocked_v6 accept\n\
         \t\ttcp dport {PROTECTED} ct state new drop\n\
         \t}}\n"
    )
}

/// The server's address `addr` (v4 or v6) on [`PROTECTED`].
fn protected(addr: &str) -> SocketAddr {
    SocketAddr::new(addr.parse().unwrap(), PROTECTED)
}

/// A door `ssh` with the door keys `keys` and the `[door.nftables]` keys
/// `nftables`, in `dir/knockd.toml`.
fn config(dir: &Path, keys: &str, nftables: &str) -> PathBuf {
    write_config(
        dir,
        &format!(
            "[[door]]\nname = \"ssh\"\nsequence = [\"7000\", \"8000:udp\", \"9000\"]\n\
             tcp_flags = \"syn\"\n{keys}\n[door.nftables]\n{nftables}\n"
        ),
    )
}

/// `text` in `dir/knockd.toml`; its path.
fn write_config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("knockd.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The client knocks the door's sequence at `to` from the client namespace.
fn knock(net: &Net, to: &str) {
    let family = if to.contains(':') { "-6" } else { "-4" };
    assert_eq!(
        net.knock(&[family, "-d", "50ms", "-p", SEQUENCE, to]),
        Some(0),
        "the client failed to knock {to}"
    );
}

/// One element of a set, as `nft -j` shows it.
#[derive(Debug, Clone, PartialEq)]
struct Element {
    addr: String,
    /// Its timeout in seconds, its own or else the set's (none: neither has one).
    timeout: Option<f64>,
    /// The seconds left until the kernel removes it.
    expires: Option<f64>,
}

/// The elements of set `inet knockr NAME` in the server's namespace, read
/// from the kernel (`nft -j list set`).
fn elements(net: &Net, name: &str) -> Vec<Element> {
    elements_in(net, "inet", "knockr", name)
}

/// The elements of set `FAMILY TABLE NAME`, as [`elements`].
fn elements_in(net: &Net, family: &str, table: &str, name: &str) -> Vec<Element> {
    let output = net
        .in_server("nft")
        .args(["-j", "list", "set", family, table, name])
        .output()
        .unwrap();
    assert!(output.status.success(), "nft list set {name}: {output:?}");
    let doc: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let set = doc["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|item| item.get("set"))
        .unwrap_or_else(|| panic!("no set in {doc}"));
    let Some(elems) = set.get("elem") else {
        return Vec::new();
    };
    elems
        .as_array()
        .unwrap()
        .iter()
        .map(|elem| match elem {
            serde_json::Value::String(addr) => Element {
                addr: addr.clone(),
                timeout: set["timeout"].as_f64(),
                expires: None,
            },
            other => {
                let inner = &other["elem"];
                Element {
                    addr: inner["val"]
                        .as_str()
                        .unwrap_or_else(|| panic!("an element without an address: {other}"))
                        .to_string(),
                    // nft shows no timeout of an element's own when it is the set's.
                    timeout: inner["timeout"].as_f64().or(set["timeout"].as_f64()),
                    expires: inner["expires"].as_f64(),
                }
            }
        })
        .collect()
}

/// Polls `check` every 100 ms until it gives `Some`, for at most `within`.
fn poll<T>(within: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits (up to `PATIENCE`) for `addr` to be in set `name`; its element.
fn wait_added(net: &Net, name: &str, addr: &str) -> Element {
    poll(PATIENCE, || {
        elements(net, name).into_iter().find(|e| e.addr == addr)
    })
    .unwrap_or_else(|| {
        panic!(
            "{addr} never appeared in set {name}: {:?}",
            elements(net, name)
        )
    })
}

/// Waits up to `within` for set `name` to be empty; panics if it never is.
fn wait_empty(net: &Net, name: &str, within: Duration) {
    let left = poll(within, || elements(net, name).is_empty().then_some(()));
    assert!(
        left.is_some(),
        "set {name} still holds {:?} after {within:?}",
        elements(net, name)
    );
}

#[test]
fn a_knock_puts_the_address_in_the_set_over_ipv4_and_ipv6_and_the_kernel_closes_it() {
    if !can_run_with(&["nft"]) {
        return;
    }
    let net = Net::new();
    net.load_nft(&ruleset());
    let _listener = net.listen(PROTECTED);
    let dir = tempfile::tempdir().unwrap();
    let mut server = net.server(&config(dir.path(), "", "timeout = \"3s\""));
    let (v4, v6) = (protected(&net.v4(1)), protected(&net.v6(1)));
    assert!(!net.connects(v4), "connected over IPv4 before any knock");
    assert!(!net.connects(v6), "connected over IPv6 before any knock");

    knock(&net, &net.v4(1));
    let element = wait_added(&net, "knocked_v4", &net.v4(2));
    assert_eq!(element.timeout, Some(3.0), "{element:?}");
    server.expect(&format!(
        "ssh: {} added to nftables set inet knockr knocked_v4 (timeout 3s)",
        net.v4(2)
    ));
    assert!(net.connects(v4), "the IPv4 knock did not open the port");
    assert!(!net.connects(v6), "an IPv4 knock opened IPv6");
    assert!(elements(&net, "knocked_v6").is_empty());

    knock(&net, &net.v6(1));
    let element = wait_added(&net, "knocked_v6", &net.v6(2));
    assert_eq!(element.timeout, Some(3.0), "{element:?}");
    assert!(net.connects(v6), "the IPv6 knock did not open the port");

    // The kernel removes both by itself after 3 s.
    wait_empty(&net, "knocked_v4", Duration::from_secs(3) + PATIENCE);
    wait_empty(&net, "knocked_v6", Duration::from_secs(3) + PATIENCE);
    assert!(!net.connects(v4), "still open over IPv4 after the timeout");
    assert!(!net.connects(v6), "still open over IPv6 after the timeout");
    let (status, log) = server.terminate();
    assert_eq!(status, Some(0), "{}", log.join("\n"));
}

#[test]
fn the_defaults_work_with_the_sets_of_nft_rules_for_knockd() {
    if !can_run_with(&["nft"]) {
        return;
    }
    let net = Net::new();
    let home = tempfile::tempdir().unwrap();
    let output = knockr(home.path())
        .args(["nft", "rules", "--for-knockd", "--protect"])
        .arg(PROTECTED.to_string())
        .args(["--sequence", SEQUENCE])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    net.load_nft(&String::from_utf8(output.stdout).unwrap());
    // Our chain beside whatever that output has: it accepts the members too.
    net.load_nft(&format!("table inet knockr {{\n{}}}\n", input_chain()));
    let _listener = net.listen(PROTECTED);
    let dir = tempfile::tempdir().unwrap();
    // An empty [door.nftables]: table inet knockr, knocked_v4, knocked_v6, 1h.
    let server = net.server(&config(dir.path(), "", ""));
    let v4 = protected(&net.v4(1));
    assert!(!net.connects(v4), "connected before any knock");
    knock(&net, &net.v4(1));
    let element = wait_added(&net, "knocked_v4", &net.v4(2));
    assert_eq!(element.timeout, Some(3600.0), "the default is 1h");
    assert!(net.connects(v4), "the knock did not open the port");
    knock(&net, &net.v6(1));
    let element = wait_added(&net, "knocked_v6", &net.v6(2));
    assert_eq!(element.timeout, Some(3600.0), "the default is 1h");
    assert!(net.connects(protected(&net.v6(1))));
    let (status, log) = server.terminate();
    assert_eq!(status, Some(0), "{}", log.join("\n"));
}

#[test]
fn without_a_timeout_the_element_gets_the_doors_cmd_timeout() {
    if !can_run_with(&["nft"]) {
        return;
    }
    let net = Net::new();
    // Sets with no timeout of their own: the element's is the one knockd sends.
    net.load_nft(&ruleset());
    let dir = tempfile::tempdir().unwrap();
    let server = net.server(&config(dir.path(), "cmd_timeout = \"5m\"", ""));
    knock(&net, &net.v4(1));
    let element = wait_added(&net, "knocked_v4", &net.v4(2));
    assert_eq!(element.timeout, Some(300.0), "{element:?}");
    let (status, log) = server.terminate();
    assert_eq!(status, Some(0), "{}", log.join("\n"));
}

#[test]
fn a_knock_again_resets_the_elements_timeout_and_adds_no_second_element() {
    if !can_run_with(&["nft"]) {
        return;
    }
    let net = Net::new();
    net.load_nft(&ruleset());
    let dir = tempfile::tempdir().unwrap();
    let server = net.server(&config(dir.path(), "", "timeout = \"30s\""));
    knock(&net, &net.v4(1));
    wait_added(&net, "knocked_v4", &net.v4(2));
    // Long enough that the element's expiry (whole seconds) visibly drops.
    std::thread::sleep(Duration::from_secs(4));
    let before = elements(&net, "knocked_v4");
    assert_eq!(before.len(), 1, "{before:?}");
    let before = before[0]
        .expires
        .expect("an element with a timeout expires");
    assert!(before < 30.0, "the expiry did not drop: {before}");

    knock(&net, &net.v4(1));
    // Reset, it expires later than it did before the second knock; left
    // alone, it could only expire sooner.
    let after = poll(PATIENCE, || {
        let now = elements(&net, "knocked_v4");
        now.iter()
            .any(|e| e.expires.is_some_and(|x| x > before))
            .then_some(now)
    })
    .unwrap_or_else(|| {
        panic!(
            "the second knock did not reset the timeout (it expired in {before} s before): {:?}",
            elements(&net, "knocked_v4")
        )
    });
    assert_eq!(
        after,
        [Element {
            addr: net.v4(2),
            timeout: Some(30.0),
            expires: after[0].expires,
        }],
        "one element, with the door's timeout"
    );
    let (status, log) = server.terminate();
    assert_eq!(status, Some(0), "{}", log.join("\n"));
}

#[test]
fn with_cmd_timeout_knockd_deletes_the_element_when_the_door_closes() {
    if !can_run_with(&["nft"]) {
        return;
    }
    let net = Net::new();
    net.load_nft(&ruleset());
    let _listener = net.listen(PROTECTED);
    let dir = tempfile::tempdir().unwrap();
    let mut server = net.server(&config(
        dir.path(),
        "cmd_timeout = \"2s\"",
        "timeout = \"1h\"",
    ));
    knock(&net, &net.v4(1));
    let element = wait_added(&net, "knocked_v4", &net.v4(2));
    assert_eq!(element.timeout, Some(3600.0), "{element:?}");
    assert!(net.connects(protected(&net.v4(1))));
    // Long before the kernel's hour, knockd deletes it 2 s after the knock.
    wait_empty(&net, "knocked_v4", PATIENCE);
    server.expect(&format!(
        "ssh: {} removed from nftables set inet knockr knocked_v4",
        net.v4(2)
    ));
    assert!(
        !net.connects(protected(&net.v4(1))),
        "open after the delete"
    );
    let (status, log) = server.terminate();
    assert_eq!(status, Some(0), "{}", log.join("\n"));
}

#[test]
fn after_kill_9_the_kernel_still_removes_the_element_at_its_timeout() {
    if !can_run_with(&["nft"]) {
        return;
    }
    let net = Net::new();
    net.load_nft(&ruleset());
    let dir = tempfile::tempdir().unwrap();
    let server = net.server(&config(dir.path(), "", "timeout = \"3s\""));
    // `ip netns exec` and `knockr knockd` exec: the child is knockr-knockd.
    let comm = std::fs::read_to_string(format!("/proc/{}/comm", server.child.id())).unwrap();
    assert_eq!(comm.trim(), "knockr-knockd");
    knock(&net, &net.v4(1));
    let element = wait_added(&net, "knocked_v4", &net.v4(2));
    assert_eq!(element.timeout, Some(3.0), "{element:?}");
    server.kill9();
    wait_empty(&net, "knocked_v4", Duration::from_secs(3) + PATIENCE);
}

/// `knockr knockd --check` with `config` in the server's namespace: its
/// exit status and everything it printed.
fn check(net: &Net, config: &Path) -> (Option<i32>, String) {
    let output = net
        .in_server(assert_cmd::cargo::cargo_bin("knockr"))
        .args(["knockd", "--check", "-i", &net.srv_if, "-c"])
        .arg(config)
        .arg("--state-file")
        .arg(state_file_for(config))
        .env_remove("KNOCKR_CONFIG")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.code(), text)
}

/// A missing table or set, a set without `flags timeout`, of the wrong
/// type, an interval set, a map: each is refused by `--check` (exit 2) and
/// by a start (exit 1, before listening) with one sentence.
#[test]
fn a_missing_or_unfit_set_is_refused_by_check_and_start_with_the_command_that_fixes_it() {
    if !can_run_with(&["nft"]) {
        return;
    }
    let good_v6 = "set knocked_v6 { type ipv6_addr; flags timeout; };";
    let add_v4 = "nft add set inet knockr knocked_v4 '{ type ipv4_addr; flags timeout; }'";
    let unfit = vec![
        "door ssh: nftables set inet knockr knocked_v4".to_string(),
        "nft delete set inet knockr knocked_v4".to_string(),
        add_v4.to_string(),
    ];
    // (the ruleset, what the sentence must say: the spec's words are examples,
    // its parts are not)
    let cases: Vec<(Option<String>, Vec<String>)> = vec![
        (
            None,
            vec![
                "door ssh: nftables table inet knockr does not exist".to_string(),
                "nft add table inet knockr".to_string(),
            ],
        ),
        (
            Some(format!("table inet knockr {{ {good_v6} }}")),
            vec![
                "door ssh: nftables set inet knockr knocked_v4 does not exist".to_string(),
                add_v4.to_string(),
            ],
        ),
        (
            Some(format!(
                "table inet knockr {{ set knocked_v4 {{ type ipv4_addr; }}; {good_v6} }}"
            )),
            unfit.clone(),
        ),
        (
            Some(format!(
                "table inet knockr {{ set knocked_v4 {{ type ipv6_addr; flags timeout; }}; {good_v6} }}"
            )),
            unfit.clone(),
        ),
        (
            Some(format!(
                "table inet knockr {{ set knocked_v4 {{ type ipv4_addr; flags timeout, interval; }}; {good_v6} }}"
            )),
            unfit.clone(),
        ),
        (
            Some(format!(
                "table inet knockr {{ map knocked_v4 {{ type ipv4_addr : verdict; flags timeout; }}; {good_v6} }}"
            )),
            unfit,
        ),
    ];
    for (ruleset, says) in &cases {
        let net = Net::new();
        if let Some(text) = ruleset {
            net.load_nft(text);
        }
        let dir = tempfile::tempdir().unwrap();
        let path = config(dir.path(), "", "");
        let (status, checked) = check(&net, &path);
        assert_eq!(status, Some(2), "--check with {ruleset:?}:\n{checked}");
        // The sentence: the line that names the door.
        let sentence = checked
            .lines()
            .find(|l| l.contains("door ssh: nftables"))
            .unwrap_or_else(|| panic!("--check with {ruleset:?} named no door:\n{checked}"));
        for part in says {
            assert!(
                sentence.contains(part),
                "--check with {ruleset:?}: {part:?} not in\n{checked}"
            );
        }
        let sentence = &sentence[sentence.find("door ssh: nftables").unwrap()..];
        let (status, log) = net.start_server(&path).wait_exit(PATIENCE);
        let log = log.join("\n");
        assert_eq!(status, Some(1), "a start with {ruleset:?}:\n{log}");
        assert!(
            log.contains(sentence),
            "{sentence:?} not in the start's:\n{log}"
        );
        assert!(!log.contains("listening:"), "{log}");
    }
    // The check can pass: with the right sets it only names them.
    let net = Net::new();
    net.load_nft(&ruleset());
    let dir = tempfile::tempdir().unwrap();
    let (status, checked) = check(&net, &config(dir.path(), "", ""));
    assert_eq!(status, Some(0), "{checked}");
    let named: Vec<&str> = checked.lines().filter(|l| l.contains("nftables")).collect();
    assert_eq!(named.len(), 1, "{checked}");
    assert!(
        named[0].starts_with(
            "    nftables: inet knockr knocked_v4 and inet knockr knocked_v6, timeout "
        ),
        "{checked}"
    );
}

#[test]
fn start_and_stop_commands_still_run_beside_the_set() {
    if !can_run_with(&["nft", "touch"]) {
        return;
    }
    let net = Net::new();
    net.load_nft(&ruleset());
    let dir = tempfile::tempdir().unwrap();
    let touch = which("touch").unwrap();
    let (started, stopped) = (dir.path().join("started-"), dir.path().join("stopped-"));
    let keys = format!(
        "cmd_timeout = \"2s\"\nstart = [{touch:?}, \"{}%IP%\"]\nstop = [{touch:?}, \"{}%IP%\"]",
        started.display(),
        stopped.display()
    );
    let mut server = net.server(&config(dir.path(), &keys, "timeout = \"1h\""));
    knock(&net, &net.v4(1));
    wait_added(&net, "knocked_v4", &net.v4(2));
    let ran = |path: &Path| {
        let mut file = path.as_os_str().to_owned();
        file.push(net.v4(2));
        PathBuf::from(file)
    };
    server.expect(&format!("start command for {} finished", net.v4(2)));
    assert!(ran(&started).exists(), "the start command did not run");
    wait_empty(&net, "knocked_v4", PATIENCE);
    server.expect(&format!("stop command for {} finished", net.v4(2)));
    assert!(ran(&stopped).exists(), "the stop command did not run");
    let (status, log) = server.terminate();
    assert_eq!(status, Some(0), "{}", log.join("\n"));
}

#[test]
fn dry_run_says_what_it_would_add_and_adds_nothing() {
    if !can_run_with(&["nft"]) {
        return;
    }
    let net = Net::new();
    net.load_nft(&ruleset());
    let dir = tempfile::tempdir().unwrap();
    let path = config(dir.path(), "", "timeout = \"3s\"");
    // --dry-run keeps no state file.
    let mut command = net.in_server(assert_cmd::cargo::cargo_bin("knockr"));
    command
        .args(["knockd", "-v", "--dry-run", "-i", &net.srv_if, "-c"])
        .arg(&path)
        .env_remove("KNOCKR_CONFIG");
    let mut server = Server::start(command, "listening:");
    knock(&net, &net.v4(1));
    server.expect(&format!(
        "ssh: would add {} to nftables set inet knockr knocked_v4 (timeout 3s)",
        net.v4(2)
    ));
    assert!(elements(&net, "knocked_v4").is_empty(), "a dry run added");
    let (status, log) = server.terminate();
    assert_eq!(status, Some(0), "{}", log.join("\n"));
}

#[test]
fn after_dropping_root_the_door_still_adds_and_its_commands_have_no_capabilities() {
    if !can_run_with(&["nft"]) {
        return;
    }
    use std::os::unix::fs::PermissionsExt as _;
    let net = Net::new();
    net.load_nft(&ruleset());
    let _listener = net.listen(PROTECTED);
    let dir = tempfile::tempdir().unwrap();
    // After the drop the server runs as nobody; its command writes here.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    let record = dir.path().join("caps");
    let keys = format!(
        "start = [\"/bin/sh\", \"-c\", \"grep ^Cap /proc/self/status > {}\"]",
        record.display()
    );
    let path = config(dir.path(), &keys, "timeout = \"1h\"");
    let text = format!(
        "[knockd]\nuser = \"nobody\"\n{}",
        std::fs::read_to_string(&path).unwrap()
    );
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut server = net.server(&path);
    server.expect("now running as nobody");
    let uid = Command::new("id").args(["-u", "nobody"]).output().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.child.id())).unwrap();
    let uid = String::from_utf8(uid.stdout).unwrap();
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some(uid.trim())),
        "knockd does not run as nobody:\n{status}"
    );
    // knockd itself keeps CAP_NET_ADMIN (bit 12) and only it.
    let cap = |set: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(set))
            .map(|hex| u64::from_str_radix(hex.trim(), 16).unwrap())
            .unwrap_or_else(|| panic!("no {set} in {status}"))
    };
    assert_eq!(cap("CapPrm:"), 1 << 12, "{status}");
    assert_eq!(cap("CapEff:") & !(1 << 12), 0, "{status}");
    knock(&net, &net.v4(1));
    wait_added(&net, "knocked_v4", &net.v4(2));
    assert!(net.connects(protected(&net.v4(1))));
    server.expect(&format!("start command for {} finished", net.v4(2)));
    let caps = std::fs::read_to_string(&record).unwrap();
    for set in ["CapPrm", "CapEff", "CapAmb", "CapInh"] {
        let line = caps
            .lines()
            .find(|l| l.starts_with(set))
            .unwrap_or_else(|| panic!("no {set} in {caps}"));
        assert!(
            line.ends_with("0000000000000000"),
            "the start command has capabilities: {caps}"
        );
    }
    let (status, log) = server.terminate();
    assert_eq!(status, Some(0), "{}", log.join("\n"));
}

#[test]
fn family_table_and_set_names_are_the_doors_own() {
    if !can_run_with(&["nft"]) {
        return;
    }
    let net = Net::new();
    net.load_nft(
        "table ip knockr_ip { set open4 { type ipv4_addr; flags timeout; }; }\n\
         table ip6 knockr_ip6 { set open6 { type ipv6_addr; flags timeout; }; }\n",
    );
    let dir = tempfile::tempdir().unwrap();
    let ip = "family = \"ip\"\ntable = \"knockr_ip\"\nset = \"open4\"\ntimeout = \"1m\"";
    let ip6 = "family = \"ip6\"\ntable = \"knockr_ip6\"\nset6 = \"open6\"\ntimeout = \"2m\"";
    let door = |name: &str, sequence: &str, nftables: &str| {
        format!("[[door]]\nname = \"{name}\"\nsequence = {sequence}\n[door.nftables]\n{nftables}\n")
    };
    let text = door("four", "[\"7000:udp\", \"8000:udp\"]", ip)
        + &door("six", "[\"7100:udp\", \"8100:udp\"]", ip6);
    let server = net.server(&write_config(dir.path(), &text));
    assert_eq!(
        net.knock(&["-4", "-d", "50ms", "-p", "7000:udp,8000:udp", &net.v4(1)]),
        Some(0)
    );
    assert_eq!(
        net.knock(&["-6", "-d", "50ms", "-p", "7100:udp,8100:udp", &net.v6(1)]),
        Some(0)
    );
    let four = poll(PATIENCE, || {
        let now = elements_in(&net, "ip", "knockr_ip", "open4");
        (!now.is_empty()).then_some(now)
    });
    let six = poll(PATIENCE, || {
        let now = elements_in(&net, "ip6", "knockr_ip6", "open6");
        (!now.is_empty()).then_some(now)
    });
    let (status, log) = server.terminate();
    let log = log.join("\n");
    let four = four.unwrap_or_else(|| panic!("nothing in ip knockr_ip open4:\n{log}"));
    let six = six.unwrap_or_else(|| panic!("nothing in ip6 knockr_ip6 open6:\n{log}"));
    assert_eq!(
        (four[0].addr.as_str(), four[0].timeout, four.len()),
        (net.v4(2).as_str(), Some(60.0), 1),
        "{four:?}"
    );
    assert_eq!(
        (six[0].addr.as_str(), six[0].timeout, six.len()),
        (net.v6(2).as_str(), Some(120.0), 1),
        "{six:?}"
    );
    assert_eq!(status, Some(0), "{log}");
}

#[test]
fn twenty_knockers_at_once_are_all_in_the_set() {
    if !can_run_with(&["nft"]) {
        return;
    }
    let net = Net::new();
    net.load_nft(&ruleset());
    let sources = net.client_addresses(20);
    let dir = tempfile::tempdir().unwrap();
    let text = "[[door]]\nname = \"udp\"\nsequence = [\"7000:udp\", \"8000:udp\", \"9000:udp\"]\n\
                [door.nftables]\ntimeout = \"1m\"\n";
    let server = net.server(&write_config(dir.path(), text));
    let target = net.v4(1);
    let knockers = sources.clone();
    net.in_client(move || {
        let sockets: Vec<std::net::UdpSocket> = knockers
            .iter()
            .map(|src| std::net::UdpSocket::bind((src.as_str(), 0)).unwrap())
            .collect();
        // Interleaved: every source's first knock, then every second, then
        // every third; the last ones arrive together.
        for port in [7000, 8000, 9000] {
            for socket in &sockets {
                socket.send_to(&[0], (target.as_str(), port)).unwrap();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let mut expected = sources.clone();
    expected.sort();
    let seen = poll(PATIENCE, || {
        let mut now: Vec<String> = elements(&net, "knocked_v4")
            .into_iter()
            .map(|e| e.addr)
            .collect();
        now.sort();
        (now == expected).then_some(now)
    });
    assert!(
        seen.is_some(),
        "the set holds {:?}, not the 20 knockers",
        elements(&net, "knocked_v4")
    );
    let (status, log) = server.terminate();
    assert_eq!(status, Some(0), "{}", log.join("\n"));
}

#[test]
fn an_element_the_kernel_removed_first_is_no_error_when_the_door_closes() {
    if !can_run_with(&["nft", "touch"]) {
        return;
    }
    let net = Net::new();
    net.load_nft(&ruleset());
    let dir = tempfile::tempdir().unwrap();
    let touch = which("touch").unwrap();
    let stopped = dir.path().join("stopped");
    // The kernel removes it after 1 s; the door closes (and knockd deletes) at 3 s.
    let keys = format!("cmd_timeout = \"3s\"\nstop = [{touch:?}, {stopped:?}]");
    let mut server = net.server(&config(dir.path(), &keys, "timeout = \"1s\""));
    knock(&net, &net.v4(1));
    wait_added(&net, "knocked_v4", &net.v4(2));
    wait_empty(&net, "knocked_v4", PATIENCE);
    server.expect(&format!("stop command for {} finished", net.v4(2)));
    assert!(stopped.exists(), "the stop command did not run");
    // knockd goes on: the next knock is in the set again.
    knock(&net, &net.v4(1));
    wait_added(&net, "knocked_v4", &net.v4(2));
    let (status, log) = server.terminate();
    assert_eq!(status, Some(0), "{}", log.join("\n"));
    let complaints: Vec<&String> = log
        .iter()
        .filter(|l| l.contains("nftables"))
        .filter(|l| {
            ["fail", "error", "could not", "cannot"]
                .iter()
                .any(|w| l.contains(w))
        })
        .collect();
    assert!(complaints.is_empty(), "{}", log.join("\n"));
}
