//! `knockr routeros apply` end to end against the RouterOS emulator
//! (tests/it/support/routeros.rs) over real HTTP: where the rules land in a
//! default configuration's filter table, that a second run writes nothing,
//! that a new sequence replaces them and `--remove` gives the table back
//! exactly, an empty input chain, a missing `--place-before` rule, a dry
//! run, a wrong password and a router that is down.
#![cfg(feature = "server")]

use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;

use crate::support::knockr;
use crate::support::routeros::{Emulator, Faults, FilterRecord, Record};

const PASSWORD: &str = "s3cret-Pass";

/// A directory with the password file and a knockd.toml whose door
/// `winbox` names `urls`.
struct Case {
    dir: tempfile::TempDir,
}

impl Case {
    fn new(urls: &[String]) -> Case {
        let dir = tempfile::tempdir().unwrap();
        let case = Case { dir };
        case.set_password(PASSWORD);
        let urls: Vec<String> = urls.iter().map(|u| format!("{u:?}")).collect();
        let config = format!(
            "[[door]]\nname = \"winbox\"\nsequence = [\"7000:udp\", \"8000:udp\"]\n\
             [door.routeros]\nurls = [{}]\nuser = \"knockr\"\npassword_file = \"{}\"\nlist = \"knocked\"\n",
            urls.join(", "),
            case.pass().display()
        );
        std::fs::write(case.dir.path().join("knockd.toml"), config).unwrap();
        case
    }

    fn pass(&self) -> PathBuf {
        self.dir.path().join("router.pass")
    }

    fn set_password(&self, password: &str) {
        std::fs::write(self.pass(), format!("{password}\n")).unwrap();
        std::fs::set_permissions(self.pass(), std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    /// `knockr routeros apply` with credentials as flags for `urls`, then `args`.
    fn apply(&self, urls: &[String], args: &[&str]) -> (Option<i32>, String, String) {
        let mut cmd = knockr(self.dir.path());
        cmd.args(["routeros", "apply", "--user", "knockr", "--password-file"])
            .arg(self.pass())
            .args(["--retry", "1s"]);
        for url in urls {
            cmd.args(["--url", url]);
        }
        run(cmd.args(args))
    }

    /// `knockr routeros apply -c knockd.toml --door winbox`, then `args`.
    fn apply_door(&self, args: &[&str]) -> (Option<i32>, String, String) {
        let mut cmd = knockr(self.dir.path());
        cmd.args(["routeros", "apply", "-c"])
            .arg(self.dir.path().join("knockd.toml"))
            .args(["--door", "winbox"]);
        run(cmd.args(args))
    }
}

fn run(cmd: &mut assert_cmd::Command) -> (Option<i32>, String, String) {
    let output = cmd.output().unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

const RULES: &[&str] = &[
    "--sequence",
    "7000,8000:udp,9000",
    "--protect",
    "22,51820:udp",
];

fn comments(table: &[FilterRecord]) -> Vec<String> {
    table
        .iter()
        .map(|r| r.get("comment").unwrap_or("").to_string())
        .collect()
}

fn position(table: &[FilterRecord], comment: &str) -> usize {
    comments(table)
        .iter()
        .position(|c| c == comment)
        .unwrap_or_else(|| panic!("no rule {comment:?} in {:#?}", comments(table)))
}

/// The requests that change something on the router.
fn writes(emulator: &Emulator) -> Vec<String> {
    emulator
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET")
        .map(|r| format!("{} {}", r.method, r.target))
        .collect()
}

fn urls(emulators: &[&Emulator]) -> Vec<String> {
    emulators.iter().map(|e| e.url()).collect()
}

/// The dispatch is the first input rule, the accepts sit right before
/// `anchor` (or right after the dispatch without one), and the knock chain
/// holds its rules in the script's order.
fn assert_in_place(table: &[FilterRecord], anchor: Option<&str>) {
    let first_input = table
        .iter()
        .position(|r| r.get("chain") == Some("input"))
        .unwrap();
    let dispatch = position(table, "knockr: dispatch");
    assert_eq!(dispatch, first_input, "{:#?}", comments(table));
    assert_eq!(table[dispatch].get("jump-target"), Some("knockr"));
    let tcp = position(table, "knockr: accept knocked tcp");
    let udp = position(table, "knockr: accept knocked udp");
    assert_eq!(udp, tcp + 1, "{:#?}", comments(table));
    match anchor {
        Some(anchor) => assert_eq!(position(table, anchor), udp + 1, "{:#?}", comments(table)),
        None => assert_eq!(tcp, dispatch + 1, "{:#?}", comments(table)),
    }
    assert_eq!(table[tcp].get("dst-port"), Some("22"));
    assert_eq!(table[udp].get("dst-port"), Some("51820"));
    let chain: Vec<String> = table
        .iter()
        .filter(|r| r.get("chain") == Some("knockr"))
        .map(|r| r.get("comment").unwrap().to_string())
        .collect();
    assert_eq!(
        chain.first().map(String::as_str),
        Some("knockr: knocked, to tcp 22")
    );
    assert_eq!(chain.last().map(String::as_str), Some("knockr: end"));
    assert!(
        position(table, "knockr: knock 3/3") < position(table, "knockr: knock 1/3"),
        "stages last first"
    );
}

const V4_DROP: &str = "defconf: drop all not coming from LAN";
const V6_DROP: &str = "defconf: drop everything else not coming from LAN";

#[test]
fn the_first_run_adds_the_rules_in_place_and_a_second_run_through_the_door_changes_nothing() {
    let router = Emulator::http();
    let case = Case::new(&urls(&[&router]));
    let (status, stdout, stderr) = case.apply(&urls(&[&router]), RULES);
    assert_eq!(status, Some(0), "{stdout}{stderr}");
    let v4 = router.filter(false);
    let v6 = router.filter(true);
    assert_in_place(&v4, Some(V4_DROP));
    assert_in_place(&v6, Some(V6_DROP));
    // Before the drop, after the defconf accepts: the accept is reached.
    assert!(position(&v4, "defconf: accept ICMP") < position(&v4, "knockr: accept knocked tcp"));
    let added = v4
        .iter()
        .filter(|r| r.get("comment").unwrap_or("").starts_with("knockr: "))
        .count();
    assert!(
        stdout.contains(&format!("/ip firewall filter: added {added} rules")),
        "{stdout}"
    );
    assert!(stdout.contains("/ipv6 firewall filter: added"), "{stdout}");

    let before = router.requests().len();
    let (status, stdout, stderr) = case.apply_door(RULES);
    assert_eq!(status, Some(0), "{stdout}{stderr}");
    let again: Vec<_> = router.requests()[before..].to_vec();
    assert!(!again.is_empty(), "the door's router was asked");
    assert!(
        again.iter().all(|r| r.method == "GET"),
        "a second run writes nothing: {:?}",
        again
            .iter()
            .map(|r| format!("{} {}", r.method, r.target))
            .collect::<Vec<_>>()
    );
    assert_eq!(stdout.matches("already as wanted").count(), 2, "{stdout}");
    assert_eq!(router.filter(false), v4);
}

#[test]
fn a_new_sequence_replaces_the_rules_and_remove_restores_the_table_exactly() {
    let router = Emulator::http();
    let url = urls(&[&router]);
    let case = Case::new(&url);
    let (v4, v6) = (router.filter(false), router.filter(true));
    assert_eq!(case.apply(&url, RULES).0, Some(0));
    let (status, stdout, stderr) = case.apply(
        &url,
        &[
            "--sequence",
            "7100,8100:udp,9100",
            "--protect",
            "22,51820:udp",
        ],
    );
    assert_eq!(status, Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("removed 16 rules, added 16 rules"),
        "{stdout}"
    );
    let table = router.filter(false);
    assert_in_place(&table, Some(V4_DROP));
    assert_eq!(
        table[position(&table, "knockr: knock 1/3")].get("dst-port"),
        Some("7100")
    );
    assert!(!table.iter().any(|r| r.get("dst-port") == Some("7000")));

    // A knocker mid-sequence and one who knocked: the stage entry goes, the other stays.
    let entry = |list: &str, address: &str| Record {
        id: 0,
        list: list.into(),
        address: address.into(),
        comment: None,
        expires: None,
        disabled: false,
    };
    {
        let mut state = router.state.lock().unwrap();
        state.v4.push(entry("knockr-s1", "198.51.100.7"));
        state.v4.push(entry("knockr-blocked", "198.51.100.8"));
        state.v4.push(entry("knocked", "198.51.100.9"));
        state.v4.push(entry("other-s1", "198.51.100.10"));
    }
    let (status, stdout, stderr) = case.apply(&url, &["--remove"]);
    assert_eq!(status, Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("/ip firewall filter: removed 16 rules"),
        "{stdout}"
    );
    assert_eq!(router.filter(false), v4, "ids, order and fields as before");
    assert_eq!(router.filter(true), v6);
    let lists: Vec<String> = router.entries(false).into_iter().map(|r| r.list).collect();
    assert_eq!(lists, ["knocked", "other-s1"]);
    // Nothing left to remove: nothing written.
    let before = router.requests().len();
    let (status, stdout, _) = case.apply(&url, &["--remove"]);
    assert_eq!(status, Some(0));
    assert!(stdout.contains("already as wanted"), "{stdout}");
    assert!(
        router.requests()[before..]
            .iter()
            .all(|r| r.method == "GET")
    );
}

#[test]
fn an_empty_input_chain_works_and_a_missing_place_before_rule_changes_nothing() {
    let router = Emulator::http();
    let url = urls(&[&router]);
    let case = Case::new(&url);
    router.set_filter(false, Vec::new());
    router.set_filter(true, vec![vec![("chain", "forward"), ("action", "accept")]]);
    let (status, stdout, stderr) = case.apply(&url, RULES);
    assert_eq!(status, Some(0), "{stdout}{stderr}");
    assert_in_place(&router.filter(false), None);
    assert_in_place(&router.filter(true), None);
    assert_eq!(
        case.apply(&url, RULES)
            .1
            .matches("already as wanted")
            .count(),
        2
    );

    let fresh = Emulator::http();
    let url = urls(&[&fresh]);
    let (v4, v6) = (fresh.filter(false), fresh.filter(true));
    let mut args = RULES.to_vec();
    args.extend(["--place-before", "my: drop"]);
    let (status, stdout, stderr) = case.apply(&url, &args);
    assert_eq!(status, Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains(&format!(
            "router {}: no input rule is commented \"my: drop\"",
            fresh.url()
        )),
        "{stderr}"
    );
    assert!(writes(&fresh).is_empty(), "{:?}", writes(&fresh));
    assert_eq!((fresh.filter(false), fresh.filter(true)), (v4, v6));

    // With the rule there, the accepts go right before it.
    let mut custom: Vec<Vec<(&str, &str)>> = crate::support::routeros::defconf_filter(false);
    custom.insert(
        1,
        vec![
            ("chain", "input"),
            ("action", "drop"),
            ("comment", "my: drop"),
        ],
    );
    fresh.set_filter(false, custom);
    let (status, stdout, stderr) = case.apply(&url, &[&args[..], &["--family", "ipv4"]].concat());
    assert_eq!(status, Some(0), "{stdout}{stderr}");
    assert_in_place(&fresh.filter(false), Some("my: drop"));
}

#[test]
fn a_dry_run_says_what_it_would_change_and_sends_no_write() {
    let router = Emulator::http();
    let url = urls(&[&router]);
    let case = Case::new(&url);
    let table = router.filter(false);
    let (status, stdout, stderr) = case.apply(&url, &[RULES, &["--dry-run"]].concat());
    assert_eq!(status, Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("/ip firewall filter: would add 16 rules"),
        "{stdout}"
    );
    assert!(writes(&router).is_empty(), "{:?}", writes(&router));
    assert_eq!(router.filter(false), table);
}

#[test]
fn a_wrong_password_is_one_clear_sentence_without_the_password() {
    let router = Emulator::http();
    let url = urls(&[&router]);
    let case = Case::new(&url);
    case.set_password("Wr0ng-Guess");
    let (status, stdout, stderr) = case.apply(&url, RULES);
    assert_eq!(status, Some(1), "{stdout}{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| !l.contains("in clear")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].contains("refused user `knockr`")
            && errors[0].contains("wrong user name or password"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("Wr0ng-Guess") && !stdout.contains("Wr0ng-Guess"),
        "{stderr}"
    );
    assert!(writes(&router).is_empty());
}

#[test]
fn with_two_routers_and_one_down_the_other_ends_as_wanted_and_the_exit_is_1() {
    let up = Emulator::http();
    let down = Emulator::http();
    down.set_down(true);
    let all = urls(&[&down, &up]);
    let case = Case::new(&all);
    let (status, stdout, stderr) = case.apply(&all, RULES);
    assert_eq!(status, Some(1), "{stdout}{stderr}");
    assert!(stderr.contains(&down.url()), "{stderr}");
    assert_in_place(&up.filter(false), Some(V4_DROP));
    assert!(
        stdout.contains(&format!("router {}: /ip firewall filter: added", up.url())),
        "{stdout}"
    );
}

#[test]
fn over_https_the_ca_file_and_the_fingerprint_are_honoured_and_a_wrong_pin_writes_nothing() {
    let router = Emulator::https();
    let url = urls(&[&router]);
    let case = Case::new(&url);
    let ca = case.dir.path().join("ca.pem");
    std::fs::write(&ca, router.ca_pem.as_ref().unwrap()).unwrap();
    let wrong = format!("sha256:{}", ["00"; 32].join(":"));
    let (status, stdout, stderr) = case.apply(&url, &[RULES, &["--fingerprint", &wrong]].concat());
    assert_eq!(status, Some(1), "{stdout}{stderr}");
    assert!(stderr.contains("certificate"), "{stderr}");
    assert!(router.requests().is_empty(), "no request got through");
    let ca = ca.display().to_string();
    let (status, stdout, stderr) = case.apply(&url, &[RULES, &["--ca-file", &ca]].concat());
    assert_eq!(status, Some(0), "{stdout}{stderr}");
    assert_in_place(&router.filter(false), Some(V4_DROP));
    let pin = router.fingerprint.clone().unwrap();
    let (status, stdout, stderr) = case.apply(&url, &[RULES, &["--fingerprint", &pin]].concat());
    assert_eq!(status, Some(0), "{stdout}{stderr}");
    assert_eq!(stdout.matches("already as wanted").count(), 2, "{stdout}");
}

#[test]
fn two_tags_on_one_router_keep_apart_and_removing_one_leaves_the_other() {
    let router = Emulator::http();
    let url = urls(&[&router]);
    let case = Case::new(&url);
    let table = router.filter(false);
    let family = ["--family", "ipv4"];
    assert_eq!(case.apply(&url, &[RULES, &family].concat()).0, Some(0));
    let other = [
        "--sequence",
        "7300,7200:udp",
        "--protect",
        "8291",
        "--tag",
        "knockr-winbox",
        "--family",
        "ipv4",
    ];
    let (status, stdout, stderr) = case.apply(&url, &other);
    assert_eq!(status, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("added 10 rules"), "{stdout}");
    let both = router.filter(false);
    // The first tag's rules are still as wanted: a run of it writes nothing.
    let before = router.requests().len();
    let (_, stdout, _) = case.apply(&url, &[RULES, &family].concat());
    assert!(stdout.contains("already as wanted"), "{stdout}");
    assert!(
        router.requests()[before..]
            .iter()
            .all(|r| r.method == "GET")
    );
    let (status, stdout, _) = case.apply(&url, &["--remove", "--family", "ipv4"]);
    assert_eq!(status, Some(0));
    assert!(stdout.contains("removed 16 rules"), "{stdout}");
    let left = router.filter(false);
    let winbox: Vec<&FilterRecord> = both
        .iter()
        .filter(|r| {
            r.get("comment")
                .unwrap_or("")
                .starts_with("knockr-winbox: ")
        })
        .collect();
    assert_eq!(winbox.len(), 10);
    assert!(
        winbox.iter().all(|r| left.contains(r)),
        "the other tag is untouched"
    );
    assert_eq!(left.len(), table.len() + 10);
}

#[test]
fn a_crafted_rule_id_is_refused_before_anything_is_written() {
    let router = Emulator::http();
    let url = urls(&[&router]);
    let case = Case::new(&url);
    let table = router.filter(false);
    router.faults(Faults {
        id_next: Some("*7?evil=1".into()),
        ..Faults::default()
    });
    let (status, stdout, stderr) = case.apply(&url, RULES);
    assert_eq!(status, Some(1), "{stdout}{stderr}");
    assert!(stderr.contains("is not of the form *HEX"), "{stderr}");
    assert!(writes(&router).is_empty(), "{:?}", writes(&router));
    assert_eq!(router.filter(false), table);
}
