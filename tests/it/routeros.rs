//! The RouterOS door action end to end: `knockr knockd --read` replays a
//! capture with a valid knock, and the emulator (tests/support/routeros.rs)
//! shows what a router would hold; `knockr routeros check` against good and
//! bad set-ups; HTTPS trust by CA file and by fingerprint pin.
#![cfg(feature = "server")]

use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;
use std::time::Duration;

use crate::support::routeros::{Emulator, Faults};
use crate::support::{frame, knockr, pcap_file};
use serde_json::Value;

const HOST: &str = "192.0.2.1";
const HOST6: &str = "2001:db8::1";
const PASSWORD: &str = "s3cret-Pass";

/// A door config, its password file and captures in one temporary directory.
struct Case {
    dir: tempfile::TempDir,
}

impl Case {
    /// A door `winbox` (7000:udp, 8000:udp) whose `[door.routeros]` is
    /// `table` plus the password file; `extra` goes into the door itself;
    /// `DIR` in them is the case's directory.
    fn new(table: &str, extra: &str) -> Case {
        let dir = tempfile::tempdir().unwrap();
        let pass = dir.path().join("router.pass");
        std::fs::write(&pass, format!("{PASSWORD}\n")).unwrap();
        std::fs::set_permissions(&pass, std::fs::Permissions::from_mode(0o600)).unwrap();
        let config = format!(
            "[[door]]\nname = \"winbox\"\nsequence = [\"7000:udp\", \"8000:udp\"]\n{extra}\n\
             [door.routeros]\nuser = \"knockr\"\npassword_file = \"{}\"\nlist = \"knocked\"\n{table}\n",
            pass.display()
        );
        let config = config.replace("DIR", &dir.path().display().to_string());
        std::fs::write(dir.path().join("knockd.toml"), config).unwrap();
        Case { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn set_password(&self, password: &str) {
        std::fs::write(self.path("router.pass"), format!("{password}\n")).unwrap();
    }

    /// A capture of one full knock from each of `sources`, 2 s apart.
    fn knocks(&self, sources: &[&str]) {
        let mut packets = Vec::new();
        for (i, src) in sources.iter().enumerate() {
            let dst = if src.contains(':') && !src.contains('.') {
                HOST6
            } else {
                HOST
            };
            let dst = if src.starts_with("::ffff:") {
                HOST6
            } else {
                dst
            };
            let at = i as u64 * 2000;
            packets.push((at, frame(src, dst, "7000:udp")));
            packets.push((at + 100, frame(src, dst, "8000:udp")));
        }
        pcap_file(&self.path("knocks.pcap"), &packets);
    }

    /// `knockr knockd --read knocks.pcap --json` and `extra`: (status, JSON lines, all output).
    fn replay(&self, extra: &[&str]) -> (Option<i32>, Vec<Value>, String) {
        let output = knockr(self.dir.path())
            .arg("knockd")
            .arg("-c")
            .arg(self.path("knockd.toml"))
            .arg("--read")
            .arg(self.path("knocks.pcap"))
            .arg("--json")
            .args(extra)
            .output()
            .unwrap();
        let stdout = String::from_utf8(output.stdout).unwrap();
        let all = format!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
        let lines = stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        (output.status.code(), lines, all)
    }

    /// `knockr routeros check -c knockd.toml`: (status, stdout).
    fn check(&self) -> (Option<i32>, String) {
        let output = knockr(self.dir.path())
            .args(["routeros", "check", "-c"])
            .arg(self.path("knockd.toml"))
            .output()
            .unwrap();
        let text =
            String::from_utf8(output.stdout).unwrap() + &String::from_utf8_lossy(&output.stderr);
        (output.status.code(), text)
    }
}

/// The router events of a replay: (event, src).
fn router_events(lines: &[Value]) -> Vec<(String, String)> {
    lines
        .iter()
        .filter(|l| l.get("router").is_some())
        .map(|l| {
            (
                l["event"].as_str().unwrap().into(),
                l["src"].as_str().unwrap().into(),
            )
        })
        .collect()
}

fn url_line(emu: &Emulator) -> String {
    format!("url = \"{}\"", emu.url())
}

#[test]
fn a_replayed_knock_puts_the_knocker_on_the_list_with_timeout_and_comment() {
    let emu = Emulator::http();
    let case = Case::new(&format!("{}\ntimeout = \"1h30m\"", url_line(&emu)), "");
    case.knocks(&["203.0.113.45"]);
    let (status, lines, all) = case.replay(&[]);
    assert_eq!(status, Some(0), "{all}");
    let entries = emu.entries(false);
    assert_eq!(entries.len(), 1, "{all}");
    let entry = &entries[0];
    assert_eq!(entry.address, "203.0.113.45");
    assert_eq!(entry.list, "knocked");
    assert_eq!(entry.comment.as_deref(), Some("knockr: winbox"));
    assert_eq!(
        entry.expires,
        Some(Duration::from_secs(5400)),
        "timeout 1h30m on the router"
    );
    assert_eq!(
        router_events(&lines),
        [("granted".to_string(), "203.0.113.45".to_string())]
    );
    assert!(
        all.contains("travels in clear over http://"),
        "http warns: {all}"
    );
    assert!(!all.contains(PASSWORD), "the password never appears: {all}");
}

#[test]
fn the_password_can_come_from_an_environment_variable() {
    let emu = Emulator::http();
    let case = Case::new(&url_line(&emu), "");
    let config = std::fs::read_to_string(case.path("knockd.toml")).unwrap();
    let pass_line = config
        .lines()
        .find(|l| l.starts_with("password_file"))
        .unwrap();
    let config = config.replace(pass_line, "password_env = \"KNOCKR_ROUTER_PASS\"");
    std::fs::write(case.path("knockd.toml"), config).unwrap();
    case.knocks(&["203.0.113.45"]);
    let output = knockr(case.dir.path())
        .env("KNOCKR_ROUTER_PASS", PASSWORD)
        .args(["knockd", "--json", "-c"])
        .arg(case.path("knockd.toml"))
        .arg("--read")
        .arg(case.path("knocks.pcap"))
        .output()
        .unwrap();
    let all = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(output.status.code(), Some(0), "{all}");
    assert_eq!(emu.entries(false).len(), 1, "{all}");
    assert!(!all.contains(PASSWORD), "{all}");
}

#[test]
fn a_second_knock_refreshes_the_entry_instead_of_adding_another() {
    let emu = Emulator::http();
    let case = Case::new(&format!("{}\ntimeout = \"1h\"", url_line(&emu)), "");
    case.knocks(&["203.0.113.45"]);
    case.replay(&[]);
    emu.advance(Duration::from_secs(1800));
    let (_, lines, all) = case.replay(&[]);
    let entries = emu.entries(false);
    assert_eq!(entries.len(), 1, "no duplicate: {entries:?}");
    // Refreshed at clock 30m: it now expires at 1h30m, not at 1h.
    assert_eq!(entries[0].expires, Some(Duration::from_secs(5400)), "{all}");
    assert_eq!(router_events(&lines)[0].0, "refreshed", "{all}");
    let methods: Vec<(String, u16)> = emu
        .requests()
        .into_iter()
        .map(|r| (r.method, r.status))
        .collect();
    assert_eq!(
        methods,
        [("PUT", 201), ("PUT", 400), ("GET", 200), ("PATCH", 200)].map(|(m, s)| (m.to_string(), s))
    );
    // The refresh finds the entry by address and list, then patches its timeout only.
    let requests = emu.requests();
    assert!(
        requests[2].target.contains("address=203.0.113.45")
            && requests[2].target.contains("list=knocked"),
        "{:?}",
        requests[2].target
    );
    assert_eq!(requests[3].body, r#"{"timeout":"1h"}"#);
    assert!(
        requests.windows(2).all(|w| w[0].at <= w[1].at),
        "logged in order"
    );
}

#[test]
fn an_ipv6_knocker_goes_on_the_ipv6_list_and_a_mapped_one_on_the_ipv4_list() {
    let emu = Emulator::http();
    let case = Case::new(&url_line(&emu), "");
    case.knocks(&["2001:db8::7", "::ffff:203.0.113.9"]);
    let (status, lines, all) = case.replay(&[]);
    assert_eq!(status, Some(0), "{all}");
    let v6: Vec<String> = emu.entries(true).into_iter().map(|r| r.address).collect();
    let v4: Vec<String> = emu.entries(false).into_iter().map(|r| r.address).collect();
    assert_eq!(v6, ["2001:db8::7/128"], "{all}");
    assert_eq!(v4, ["203.0.113.9"], "{all}");
    let events = router_events(&lines);
    assert!(
        events.contains(&("granted".into(), "203.0.113.9".into())),
        "{events:?}"
    );
}

#[test]
fn a_wrong_password_is_reported_once_clearly_and_never_shown() {
    let emu = Emulator::http();
    let case = Case::new(&url_line(&emu), "");
    case.set_password("not-the-Password");
    case.knocks(&["203.0.113.1", "203.0.113.2", "203.0.113.3"]);
    let (status, lines, all) = case.replay(&[]);
    assert_eq!(status, Some(0), "{all}");
    assert!(emu.entries(false).is_empty());
    let failed: Vec<&Value> = lines.iter().filter(|l| l["event"] == "failed").collect();
    assert_eq!(failed.len(), 1, "said once for three knockers: {all}");
    let detail = failed[0]["detail"].as_str().unwrap();
    assert!(
        detail.contains(&format!("router {} refused user `knockr` (401", emu.url()))
            && detail.contains("wrong user name or password"),
        "{detail}"
    );
    assert!(!all.contains("not-the-Password"), "{all}");
    assert_eq!(
        emu.requests().len(),
        3,
        "not retried: one request per knocker"
    );
}

#[test]
fn a_user_without_the_write_policy_is_told_which_policy_is_missing() {
    let emu = Emulator::http();
    emu.add_user("knockr", PASSWORD, &["read", "api", "rest-api"]);
    let case = Case::new(&url_line(&emu), "");
    case.knocks(&["203.0.113.1"]);
    let (_, lines, all) = case.replay(&[]);
    let failed: Vec<&Value> = lines.iter().filter(|l| l["event"] == "failed").collect();
    assert_eq!(failed.len(), 1, "{all}");
    let detail = failed[0]["detail"].as_str().unwrap();
    assert!(detail.contains("not enough permissions (9)"), "{detail}");
    assert!(
        detail.contains("probably missing the `write` policy"),
        "{detail}"
    );
    assert!(detail.contains("read,write,api,rest-api"), "{detail}");
}

#[test]
fn server_errors_are_retried_until_the_entry_is_delivered() {
    let emu = Emulator::http();
    emu.faults(Faults {
        fail_next: 3,
        fail_status: 503,
        ..Faults::default()
    });
    let case = Case::new(&url_line(&emu), "");
    case.knocks(&["203.0.113.45"]);
    let (_, lines, all) = case.replay(&[]);
    assert_eq!(emu.entries(false).len(), 1, "{all}");
    let statuses: Vec<u16> = emu.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [503, 503, 503, 201]);
    assert_eq!(router_events(&lines)[0].0, "granted");
}

#[test]
fn a_dropped_connection_is_retried() {
    let emu = Emulator::http();
    emu.faults(Faults {
        drop_next: 1,
        ..Faults::default()
    });
    let case = Case::new(&url_line(&emu), "");
    case.knocks(&["203.0.113.45"]);
    let (_, _, all) = case.replay(&[]);
    assert_eq!(emu.entries(false).len(), 1, "{all}");
}

#[test]
fn a_router_slower_than_the_retry_bound_times_out_instead_of_hanging_the_replay() {
    let emu = Emulator::http();
    emu.faults(Faults {
        delay: Duration::from_secs(20),
        ..Faults::default()
    });
    let case = Case::new(&format!("{}\nretry = \"1s\"", url_line(&emu)), "");
    case.knocks(&["203.0.113.45"]);
    let started = std::time::Instant::now();
    let (status, lines, all) = case.replay(&[]);
    assert_eq!(status, Some(0), "{all}");
    let failed: Vec<&Value> = lines.iter().filter(|l| l["event"] == "failed").collect();
    assert_eq!(failed.len(), 1, "{all}");
    let detail = failed[0]["detail"].as_str().unwrap();
    assert!(detail.contains("gave up after 1 attempt(s)"), "{detail}");
    assert!(
        detail.contains("timed out") || detail.contains("operation timed out"),
        "the cause: {detail}"
    );
    // Behaviour, not speed: the replay gave up instead of waiting for the 20 s reply.
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_full_queue_drops_updates_and_says_so_while_matching_goes_on() {
    let emu = Emulator::http();
    emu.faults(Faults {
        delay: Duration::from_secs(20),
        ..Faults::default()
    });
    let case = Case::new(&format!("{}\nretry = \"1s\"", url_line(&emu)), "");
    // 300 knockers, more than the router's queue (256) holds.
    let sources: Vec<String> = (0..300)
        .map(|i| format!("203.0.{}.{}", i / 200, i % 200 + 1))
        .collect();
    case.knocks(&sources.iter().map(String::as_str).collect::<Vec<_>>());
    let (status, lines, all) = case.replay(&[]);
    assert_eq!(status, Some(0), "{all}");
    let opened = lines.iter().filter(|l| l["event"] == "open").count();
    assert_eq!(opened, 300, "every knock matched although the router hung");
    let details = |event: &str| -> Vec<String> {
        lines
            .iter()
            .filter(|l| l["event"] == event)
            .map(|l| l["detail"].as_str().unwrap().to_string())
            .collect()
    };
    let dropped = details("dropped");
    assert!(
        dropped
            .iter()
            .any(|d| d.contains("queue full (256 updates pending)")),
        "{dropped:?}"
    );
    assert!(
        dropped
            .iter()
            .any(|d| d.contains("waited in the queue past")),
        "{dropped:?}"
    );
    let failed = details("failed");
    assert_eq!(
        dropped.len() + failed.len(),
        300,
        "each update is accounted for"
    );
    assert!(emu.entries(false).is_empty());
}

#[test]
fn every_router_of_a_door_gets_the_knocker_and_a_dead_one_does_not_hold_up_the_others() {
    let (up, other, down) = (Emulator::http(), Emulator::http(), Emulator::http());
    down.set_down(true);
    let urls = format!(
        "urls = [\"{}\", \"{}\", \"{}\"]\nretry = \"3s\"",
        down.url(),
        up.url(),
        other.url()
    );
    let case = Case::new(&urls, "");
    case.knocks(&["203.0.113.45", "203.0.113.46"]);
    let (status, lines, all) = case.replay(&[]);
    assert_eq!(status, Some(0), "{all}");
    for emu in [&up, &other] {
        let addresses: Vec<String> = emu.entries(false).into_iter().map(|r| r.address).collect();
        assert_eq!(addresses, ["203.0.113.45", "203.0.113.46"], "{all}");
    }
    let failed: Vec<&Value> = lines.iter().filter(|l| l["event"] == "failed").collect();
    assert!(
        !failed.is_empty() && failed.iter().all(|l| l["router"] == down.url().as_str()),
        "{all}"
    );
    let granted = lines.iter().filter(|l| l["event"] == "granted").count();
    assert_eq!(granted, 4, "{all}");
    // The live routers were done while the dead one was still being retried.
    let position = |event: &str| lines.iter().rposition(|l| l["event"] == event);
    let first_failure = lines.iter().position(|l| l["event"] == "failed");
    assert!(position("granted") < first_failure, "{all}");
}

/// Issue 6's fault: the router is down for a while. Within the retry bound
/// the pending grant is delivered once it is back.
#[test]
fn a_router_down_for_a_while_gets_the_grant_when_it_is_back() {
    let emu = Emulator::http();
    emu.set_down(true);
    let case = Case::new(&format!("{}\nretry = \"15s\"", url_line(&emu)), "");
    case.knocks(&["203.0.113.45"]);
    let (status, lines, all) = std::thread::scope(|scope| {
        let replay = scope.spawn(|| case.replay(&[]));
        // Down while the replay starts; back well within the 15 s bound.
        std::thread::sleep(Duration::from_secs(2));
        emu.set_down(false);
        replay.join().unwrap()
    });
    assert_eq!(status, Some(0), "{all}");
    assert_eq!(emu.entries(false).len(), 1, "{all}");
    assert_eq!(
        router_events(&lines),
        [("granted".to_string(), "203.0.113.45".to_string())]
    );
}

/// ... and past the bound it is reported as dropped, and the replay ends.
#[test]
fn a_router_down_past_the_retry_bound_is_reported_and_the_update_dropped() {
    let emu = Emulator::http();
    emu.set_down(true);
    let case = Case::new(&format!("{}\nretry = \"2s\"", url_line(&emu)), "");
    case.knocks(&["203.0.113.45"]);
    let (status, lines, all) = case.replay(&[]);
    assert_eq!(status, Some(0), "{all}");
    let failed: Vec<&Value> = lines.iter().filter(|l| l["event"] == "failed").collect();
    assert_eq!(failed.len(), 1, "{all}");
    let detail = failed[0]["detail"].as_str().unwrap();
    assert!(detail.contains("gave up after"), "{detail}");
    assert!(detail.contains("the update is dropped"), "{detail}");
    assert!(
        detail.contains("Connection refused")
            || detail.contains("connection refused")
            || detail.contains("error sending request"),
        "the cause is shown: {detail}"
    );
    emu.set_down(false);
    assert!(emu.entries(false).is_empty());
}

#[test]
fn a_door_with_cmd_timeout_deletes_the_entry_when_it_closes() {
    let emu = Emulator::http();
    let case = Case::new(&url_line(&emu), "cmd_timeout = \"5s\"");
    // The knock, then an unrelated packet 10 s later: the door closes in between.
    pcap_file(
        &case.path("knocks.pcap"),
        &[
            (0, frame("203.0.113.45", HOST, "7000:udp")),
            (100, frame("203.0.113.45", HOST, "8000:udp")),
            (10_000, frame("198.51.100.1", HOST, "1234:udp")),
        ],
    );
    let (_, lines, all) = case.replay(&[]);
    let events: Vec<String> = router_events(&lines).into_iter().map(|(e, _)| e).collect();
    assert_eq!(events, ["granted", "removed"], "{all}");
    assert!(emu.entries(false).is_empty(), "{all}");
    assert!(
        emu.requests()
            .iter()
            .any(|r| r.method == "DELETE" && r.status == 204)
    );
}

#[test]
fn a_dry_run_prints_the_request_and_sends_nothing() {
    let emu = Emulator::http();
    let case = Case::new(&url_line(&emu), "");
    case.knocks(&["203.0.113.45"]);
    let (status, _, all) = case.replay(&["--dry-run"]);
    assert_eq!(status, Some(0));
    assert!(all.contains("would send to router"), "{all}");
    assert!(all.contains("/rest/ip/firewall/address-list"), "{all}");
    assert!(emu.requests().is_empty());
}

#[test]
fn check_passes_a_good_router_and_fails_a_bad_one() {
    let emu = Emulator::http();
    let case = Case::new(&url_line(&emu), "");
    let (status, text) = case.check();
    assert_eq!(status, Some(0), "{text}");
    for line in [
        "ok   reachable",
        "ok   credentials",
        "ok   read list",
        "ok   write list",
        "all 1 router(s) ready",
    ] {
        assert!(text.contains(line), "{line}: {text}");
    }
    assert!(emu.entries(false).is_empty(), "the probe is deleted");
    assert!(
        emu.requests()
            .iter()
            .any(|r| r.method == "PUT" && r.status == 201)
    );

    emu.add_user("knockr", PASSWORD, &["read", "api", "rest-api"]);
    let (status, text) = case.check();
    assert_eq!(status, Some(1), "{text}");
    assert!(text.contains("FAIL write list"), "{text}");
    assert!(text.contains("not enough permissions"), "{text}");

    case.set_password("wrong");
    let (status, text) = case.check();
    assert_eq!(status, Some(1), "{text}");
    assert!(text.contains("FAIL credentials"), "{text}");
    assert!(
        !text.contains("wrong\n") && !text.contains(PASSWORD),
        "{text}"
    );

    emu.set_down(true);
    let (status, text) = case.check();
    assert_eq!(status, Some(1), "{text}");
    assert!(text.contains("FAIL reachable"), "{text}");
}

/// A case trusting `emu`'s CA, written to DIR/router-ca.pem.
fn with_ca(emu: &Emulator) -> Case {
    let case = Case::new(
        &format!("{}\nca_file = \"DIR/router-ca.pem\"", url_line(emu)),
        "",
    );
    std::fs::write(case.path("router-ca.pem"), emu.ca_pem.as_ref().unwrap()).unwrap();
    case
}

#[test]
fn https_with_the_routers_ca_file_works_and_shows_the_certificate() {
    let emu = Emulator::https();
    let case = with_ca(&emu);
    let (status, text) = case.check();
    assert_eq!(status, Some(0), "{text}");
    assert!(text.contains("CA file"), "{text}");
    assert!(
        text.contains(emu.fingerprint.as_ref().unwrap()),
        "the leaf's fingerprint: {text}"
    );
    case.knocks(&["203.0.113.45"]);
    let (_, _, all) = case.replay(&[]);
    assert_eq!(emu.entries(false).len(), 1, "{all}");
    assert!(!all.contains("travels in clear"), "{all}");
}

#[test]
fn https_pinned_by_fingerprint_works_without_a_matching_name_and_a_wrong_pin_is_refused() {
    // The certificate names another host: only the pin can vouch for it.
    let emu = Emulator::https_for_name("router.invalid");
    let pin = emu.fingerprint.clone().unwrap();
    let case = Case::new(&format!("{}\nfingerprint = \"{pin}\"", url_line(&emu)), "");
    let (status, text) = case.check();
    assert_eq!(status, Some(0), "{text}");
    assert!(text.contains("pinned fingerprint"), "{text}");

    let sent_before = emu.requests().len();
    let wrong = format!("sha256:{}", "00".repeat(32));
    let bad = Case::new(
        &format!("{}\nfingerprint = \"{wrong}\"", url_line(&emu)),
        "",
    );
    let (status, text) = bad.check();
    assert_eq!(status, Some(1), "{text}");
    assert!(text.contains("FAIL identity"), "{text}");
    assert!(
        text.contains(&format!(
            "not the pinned {}",
            knockr::routeros::tls::fingerprint_text(&[0; 32])
        )),
        "the cause is shown: {text}"
    );
    bad.knocks(&["203.0.113.45"]);
    let (_, lines, all) = bad.replay(&[]);
    let failed: Vec<&Value> = lines.iter().filter(|l| l["event"] == "failed").collect();
    assert_eq!(failed.len(), 1, "{all}");
    let detail = failed[0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("its TLS certificate is refused"),
        "not retried as a network fault: {detail}"
    );
    assert_eq!(
        emu.requests().len(),
        sent_before,
        "nothing sent past a wrong pin"
    );

    // The same certificate with the CA file fails on the name.
    let (status, text) = with_ca(&emu).check();
    assert_eq!(status, Some(1), "{text}");
    assert!(text.contains("FAIL identity"), "{text}");
    assert!(
        text.contains("NotValidForName") || text.contains("not valid for name"),
        "{text}"
    );
}

#[test]
fn insecure_warns_loudly() {
    let emu = Emulator::https();
    let case = Case::new(&format!("{}\ninsecure = true", url_line(&emu)), "");
    case.knocks(&["203.0.113.45"]);
    let (_, _, all) = case.replay(&[]);
    assert!(
        all.contains("WARNING") && all.contains("NOT checked"),
        "{all}"
    );
    assert_eq!(emu.entries(false).len(), 1);
}

#[test]
fn a_password_file_others_can_read_is_refused_before_anything_is_sent() {
    let emu = Emulator::http();
    let case = Case::new(&url_line(&emu), "");
    std::fs::set_permissions(
        case.path("router.pass"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    case.knocks(&["203.0.113.45"]);
    let (status, _, all) = case.replay(&[]);
    assert_eq!(status, Some(1), "{all}");
    assert!(
        all.contains("can be read by others (mode 644): refused"),
        "{all}"
    );
    assert!(!all.contains(PASSWORD));
    assert!(emu.requests().is_empty());
}

/// Live capture on loopback needs root (CAP_NET_RAW): under CI=true it must
/// run; elsewhere without root it skips, saying why.
fn can_capture() -> bool {
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "live test cannot run under CI: it needs root to capture on lo"
    );
    eprintln!("skipping live test: it needs root to capture on lo");
    false
}

/// `knockr knockd` capturing on lo, killed when dropped.
struct LiveServer(std::process::Child);

impl Drop for LiveServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `knockr knockd -i lo --json` with one door `live` (47311/udp,
/// 47312/udp) whose `[door.routeros]` points at `emu`, plus `extra`; its
/// stderr lines come through a channel.
struct Live {
    _server: LiveServer,
    lines: std::sync::mpsc::Receiver<String>,
    _dir: tempfile::TempDir,
}

impl Live {
    fn start(emu: &Emulator, extra: &str) -> Live {
        use std::io::BufRead as _;
        let dir = tempfile::tempdir().unwrap();
        let pass = dir.path().join("router.pass");
        std::fs::write(&pass, PASSWORD).unwrap();
        std::fs::set_permissions(&pass, std::fs::Permissions::from_mode(0o600)).unwrap();
        let config = dir.path().join("knockd.toml");
        std::fs::write(
            &config,
            format!(
                "[[door]]\nname = \"live\"\nsequence = [\"47311:udp\", \"47312:udp\"]\n\
                 [door.routeros]\nurl = \"{}\"\nuser = \"knockr\"\npassword_file = \"{}\"\nlist = \"knocked\"\n{extra}\n",
                emu.url(),
                pass.display()
            ),
        )
        .unwrap();
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_knockr"))
            .args(["knockd", "-i", "lo", "--json", "-c"])
            .arg(&config)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (lines_tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                let _ = lines_tx.send(line);
            }
        });
        let live = Live {
            _server: LiveServer(child),
            lines,
            _dir: dir,
        };
        live.wait_for("listening");
        live
    }

    /// The next line with `needle`, within the tests' patience.
    fn wait_for(&self, needle: &str) -> String {
        let deadline = std::time::Instant::now() + crate::support::PATIENCE;
        let mut seen = String::new();
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(line) => seen += &(line + "\n"),
                Err(_) => break,
            }
        }
        panic!("no line with {needle:?} from knockd; it said:\n{seen}");
    }

    /// A full knock on lo from `source` (an address of 127/8).
    fn knock(&self, source: &str) {
        let socket = std::net::UdpSocket::bind((source, 0)).unwrap();
        for port in [47311, 47312] {
            socket.send_to(&[0], ("127.0.0.1", port)).unwrap();
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn a_live_knock_on_loopback_lands_on_the_router_and_the_capture_keeps_going() {
    if !can_capture() {
        return;
    }
    let emu = Emulator::http();
    let live = Live::start(&emu, "");
    // Two knockers, one after the other: the second shows the loop kept capturing.
    for (i, source) in ["127.77.0.2", "127.77.0.3"].into_iter().enumerate() {
        live.knock(source);
        let line = live.wait_for("\"granted\"");
        assert!(line.contains(source), "{line}");
        assert_eq!(emu.entries(false).len(), i + 1);
    }
    let addresses: Vec<String> = emu.entries(false).into_iter().map(|r| r.address).collect();
    assert_eq!(addresses, ["127.77.0.2", "127.77.0.3"]);
}

/// Before, a router reboot dropped the entries (dynamic: RAM only) while
/// their knockers still expected an open door, and knockd never knew.
#[test]
fn after_a_router_reboot_each_knocker_still_open_is_put_back_with_its_time_left() {
    if !can_capture() {
        return;
    }
    let emu = Emulator::http();
    let live = Live::start(&emu, "timeout = \"1h\"\nuptime_check = \"1s\"");
    live.knock("127.77.0.4");
    live.wait_for("\"granted\"");
    // The router rebooted: no entry, uptime from zero.
    emu.reboot();
    assert!(emu.entries(false).is_empty());
    let line = live.wait_for("\"restored\"");
    assert!(line.contains("127.77.0.4"), "{line}");
    assert!(line.contains("the router rebooted (up "), "{line}");
    let entries = emu.entries(false);
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].address, "127.77.0.4");
    assert_eq!(entries[0].comment.as_deref(), Some("knockr: live"));
    // The time it had left: under the hour, and not much under.
    let left = entries[0].expires.unwrap() - emu.state.lock().unwrap().clock;
    assert!(
        left <= Duration::from_secs(3600) && left > Duration::from_secs(3600 - 60),
        "{left:?}"
    );
    // A check that finds the uptime going on restores nothing more.
    emu.advance(Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(2500));
    let restored = emu.requests().iter().filter(|r| r.method == "PUT").count();
    assert_eq!(restored, 2, "one grant, one restore: {:?}", emu.requests());
}

/// The failed router events of a replay, each one's detail.
fn failures(lines: &[Value]) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l["event"] == "failed")
        .map(|l| l["detail"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Before, the whole body was read: a 3 GB reply took knockd to 1.2 GB of
/// memory. Now reading stops at 4 MiB; what the emulator got out before the
/// connection closed is counted.
#[test]
fn a_reply_longer_than_the_bound_is_refused_without_reading_it_all() {
    let emu = Emulator::http();
    emu.faults(Faults {
        junk_next: 3 << 30,
        ..Faults::default()
    });
    let case = Case::new(&url_line(&emu), "");
    case.knocks(&["203.0.113.45"]);
    let (status, lines, all) = case.replay(&[]);
    assert_eq!(status, Some(0), "{all}");
    let failed = failures(&lines);
    assert_eq!(failed.len(), 1, "{all}");
    assert!(
        failed[0].contains("the reply is longer than 4 MiB; refused"),
        "{}",
        failed[0]
    );
    let sent = emu
        .state
        .lock()
        .unwrap()
        .junk_sent
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        sent < 64 << 20,
        "the router got {sent} bytes out: the client kept reading"
    );
    // Refused, not retried: one request.
    assert_eq!(emu.requests().len(), 1, "{all}");
}

/// Before, an `.id` was put into the next request's path as it came: a
/// crafted one made knockd send `PATCH .../*7?evil=1`.
#[test]
fn an_id_not_of_the_form_star_hex_is_refused_and_never_sent_back() {
    for fake in [
        "*7?evil=1",
        "../../system/script/*7",
        "*",
        "*12345678901234567",
        "7",
    ] {
        let emu = Emulator::http();
        let case = Case::new(&url_line(&emu), "");
        // The knocker is on the list already: the add is refused as a
        // duplicate, the entry is looked up, and its id would go in the PATCH.
        case.knocks(&["203.0.113.45"]);
        case.replay(&[]);
        emu.faults(Faults {
            id_next: Some(fake.to_string()),
            ..Faults::default()
        });
        let before = emu.requests().len();
        let (status, lines, all) = case.replay(&[]);
        assert_eq!(status, Some(0), "{all}");
        let failed = failures(&lines);
        assert_eq!(failed.len(), 1, "{fake}: {all}");
        assert!(
            failed[0].contains("is not of the form *HEX; refused"),
            "{fake}: {}",
            failed[0]
        );
        let requests = emu.requests();
        let after: Vec<String> = requests[before..]
            .iter()
            .map(|r| format!("{} {}", r.method, r.target))
            .collect();
        assert!(
            after
                .iter()
                .all(|r| r.starts_with("PUT ") || r.starts_with("GET ")),
            "{fake}: nothing is sent with the id: {after:?}"
        );
    }
}
