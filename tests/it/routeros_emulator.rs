//! The RouterOS emulator itself, spoken to over raw HTTP: if it were not
//! faithful to reference/routeros.md, the tests that use it would prove nothing.
#![cfg(feature = "server")]

use std::time::Duration;

use crate::support::routeros::{Emulator, Faults, raw};
use serde_json::Value;

const AUTH: Option<(&str, &str)> = Some(("knockr", "s3cret-Pass"));
const JSON: Option<&str> = Some("application/json");
const LIST: &str = "/rest/ip/firewall/address-list";

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

#[test]
fn credentials_are_checked_with_a_basic_challenge() {
    let emu = Emulator::http();
    let (status, headers, body) = raw::request(emu.addr, "GET", LIST, None, None, "");
    assert_eq!(status, 401);
    assert!(
        headers.contains("WWW-Authenticate: Basic")
            || headers
                .to_ascii_lowercase()
                .contains("www-authenticate: basic"),
        "{headers}"
    );
    assert_eq!(json(&body)["error"], 401);
    let wrong = Some(("knockr", "guess"));
    assert_eq!(raw::request(emu.addr, "GET", LIST, wrong, None, "").0, 401);
    let (status, _, body) = raw::request(emu.addr, "GET", LIST, AUTH, None, "");
    assert_eq!((status, body.as_str()), (200, "[]"));
}

#[test]
fn missing_policies_give_the_routers_permission_errors() {
    let emu = Emulator::http();
    emu.add_user("noapi", "pw", &["read", "write", "rest-api"]);
    emu.add_user("readonly", "pw", &["read", "api", "rest-api"]);
    let (status, _, body) = raw::request(emu.addr, "GET", LIST, Some(("noapi", "pw")), None, "");
    assert_eq!(status, 500);
    assert_eq!(json(&body)["detail"], "std failure: not allowed (9)");
    let add = r#"{"list":"k","address":"192.0.2.1"}"#;
    let (status, _, body) =
        raw::request(emu.addr, "PUT", LIST, Some(("readonly", "pw")), JSON, add);
    assert_eq!(status, 500);
    assert_eq!(json(&body)["detail"], "not enough permissions (9)");
    assert_eq!(
        raw::request(emu.addr, "GET", LIST, Some(("readonly", "pw")), None, "").0,
        200
    );
    assert!(emu.entries(false).is_empty());
}

#[test]
fn add_find_patch_delete_follow_the_reference() {
    let emu = Emulator::http();
    let add = r#"{"list":"knocked","address":"203.0.113.45/32","timeout":"1h","comment":"knockr: openSSH"}"#;
    let (status, headers, body) = raw::request(emu.addr, "PUT", LIST, AUTH, JSON, add);
    assert_eq!(status, 201, "{body}");
    let record = json(&body);
    assert_eq!(
        record["address"], "203.0.113.45",
        "/32 is stored as the bare address"
    );
    assert_eq!(record["dynamic"], "true", "values are strings");
    assert_eq!(record["disabled"], "false");
    assert_eq!(record["timeout"], "1h");
    let id = record[".id"].as_str().unwrap().to_string();
    assert!(id.starts_with('*'), "{id}");
    assert!(
        headers.contains(&format!("{LIST}/{id}")),
        "Location header: {headers}"
    );

    // The same address, written differently, is a duplicate.
    let again = r#"{"list":"knocked","address":"203.0.113.45","timeout":"1h"}"#;
    let (status, _, body) = raw::request(emu.addr, "PUT", LIST, AUTH, JSON, again);
    assert_eq!(status, 400);
    assert_eq!(json(&body)["detail"], "failure: already have such entry");
    // Another list is not a duplicate.
    let other = r#"{"list":"other","address":"203.0.113.45"}"#;
    assert_eq!(
        raw::request(emu.addr, "PUT", LIST, AUTH, JSON, other).0,
        201
    );

    let query = format!("{LIST}?list=knocked&address=203.0.113.45");
    let (status, _, body) = raw::request(emu.addr, "GET", &query, AUTH, None, "");
    assert_eq!(status, 200);
    let found = json(&body);
    assert_eq!(found.as_array().unwrap().len(), 1, "{body}");

    emu.advance(Duration::from_secs(2));
    let (status, _, body) = raw::request(emu.addr, "GET", &format!("{LIST}/{id}"), AUTH, None, "");
    assert_eq!(status, 200);
    assert_eq!(json(&body)["timeout"], "59m58s", "GET shows the time left");

    let patch = r#"{"timeout":"2h"}"#;
    let (status, _, body) = raw::request(
        emu.addr,
        "PATCH",
        &format!("{LIST}/{id}"),
        AUTH,
        JSON,
        patch,
    );
    assert_eq!(
        (status, json(&body)["timeout"].clone()),
        (200, Value::from("2h"))
    );
    let (status, _, body) = raw::request(
        emu.addr,
        "PATCH",
        &format!("{LIST}/{id}"),
        AUTH,
        None,
        patch,
    );
    assert_eq!(status, 415, "{body}");

    let escaped = format!("{LIST}/%2A{}", &id[1..]);
    let (status, _, body) = raw::request(emu.addr, "DELETE", &escaped, AUTH, None, "");
    assert_eq!(
        (status, json(&body)["detail"].clone()),
        (400, Value::from("no such command prefix"))
    );
    let (status, _, body) =
        raw::request(emu.addr, "DELETE", &format!("{LIST}/{id}"), AUTH, None, "");
    assert_eq!((status, body.as_str()), (204, ""));
    let (status, _, body) =
        raw::request(emu.addr, "DELETE", &format!("{LIST}/{id}"), AUTH, None, "");
    assert_eq!(status, 404);
    assert_eq!(
        json(&body),
        serde_json::json!({"error":404,"message":"Not Found"})
    );
}

#[test]
fn bad_requests_are_refused_like_the_router() {
    let emu = Emulator::http();
    let cases = [
        (
            r#"{"list":"k","address":"192.0.2.1","colour":"red"}"#,
            JSON,
            400,
            "unknown parameter colour",
        ),
        (r#"{"list":"k","#, JSON, 400, "Failed to parse json"),
        (
            r#"{"list":"k","address":"192.0.2.1","timeout":"35w3d13h13m57s"}"#,
            JSON,
            400,
            "value of timeout is out of range",
        ),
    ];
    for (body, content_type, status, detail) in cases {
        let (got, _, reply) = raw::request(emu.addr, "PUT", LIST, AUTH, content_type, body);
        assert_eq!(got, status, "{body}: {reply}");
        assert!(
            json(&reply)["detail"].as_str().unwrap().contains(detail),
            "{reply}"
        );
        assert_eq!(json(&reply)["message"], "Bad Request");
    }
    assert_eq!(
        raw::request(
            emu.addr,
            "PUT",
            LIST,
            AUTH,
            None,
            r#"{"list":"k","address":"192.0.2.1"}"#
        )
        .0,
        415
    );
    // Numbers are accepted where strings are expected, and text that is no address is a DNS name.
    let (status, _, reply) = raw::request(
        emu.addr,
        "PUT",
        LIST,
        AUTH,
        JSON,
        r#"{"list":"k","address":"router.invalid","timeout":90}"#,
    );
    assert_eq!(status, 201, "{reply}");
    assert_eq!(json(&reply)["timeout"], "1m30s");
    assert!(emu.entries(false).iter().all(|r| r.address != "192.0.2.1"));
}

#[test]
fn timeouts_expire_on_the_injected_clock_and_ipv6_has_its_own_list() {
    let emu = Emulator::http();
    let v6 = "/rest/ipv6/firewall/address-list";
    let add = r#"{"list":"knocked","address":"2001:db8::7","timeout":"30s"}"#;
    let (status, _, body) = raw::request(emu.addr, "PUT", v6, AUTH, JSON, add);
    assert_eq!(status, 201);
    assert_eq!(json(&body)["address"], "2001:db8::7/128");
    assert_eq!(
        raw::request(emu.addr, "GET", LIST, AUTH, None, "").2,
        "[]",
        "the IPv4 list is separate"
    );
    let filtered = format!("{v6}?list=knocked&address=2001:db8::7%2F128");
    assert_eq!(
        json(&raw::request(emu.addr, "GET", &filtered, AUTH, None, "").2)
            .as_array()
            .unwrap()
            .len(),
        1
    );
    emu.advance(Duration::from_secs(29));
    assert_eq!(emu.entries(true).len(), 1);
    emu.advance(Duration::from_secs(1));
    assert_eq!(
        raw::request(emu.addr, "GET", v6, AUTH, None, "").2,
        "[]",
        "expired at 30 s"
    );
}

#[test]
fn faults_are_injected_and_counted_down() {
    let emu = Emulator::http();
    emu.faults(Faults {
        fail_next: 2,
        fail_status: 503,
        ..Faults::default()
    });
    assert_eq!(raw::request(emu.addr, "GET", LIST, AUTH, None, "").0, 503);
    assert_eq!(raw::request(emu.addr, "GET", LIST, AUTH, None, "").0, 503);
    assert_eq!(raw::request(emu.addr, "GET", LIST, AUTH, None, "").0, 200);
    emu.faults(Faults {
        drop_next: 1,
        ..Faults::default()
    });
    assert_eq!(
        raw::request(emu.addr, "GET", LIST, AUTH, None, "").0,
        0,
        "no reply at all"
    );
    assert_eq!(raw::request(emu.addr, "GET", LIST, AUTH, None, "").0, 200);
    emu.set_down(true);
    assert!(
        std::net::TcpStream::connect(emu.addr).is_err(),
        "refused while down"
    );
    emu.set_down(false);
    assert_eq!(
        raw::request(emu.addr, "GET", LIST, AUTH, None, "").0,
        200,
        "back on the same port"
    );
}

#[test]
fn a_reboot_loses_the_dynamic_entries_and_restarts_the_uptime() {
    let emu = Emulator::http();
    let resource = "/rest/system/resource";
    let (status, _, body) = raw::request(emu.addr, "GET", resource, AUTH, None, "");
    assert_eq!(status, 200);
    let uptime = json(&body)["uptime"].as_str().unwrap().to_string();
    assert!(uptime.starts_with("3d04:00:0"), "{uptime}");
    let dynamic = r#"{"list":"knocked","address":"192.0.2.1","timeout":"1h"}"#;
    let fixed = r#"{"list":"knocked","address":"192.0.2.2"}"#;
    assert_eq!(
        raw::request(emu.addr, "PUT", LIST, AUTH, JSON, dynamic).0,
        201
    );
    assert_eq!(
        raw::request(emu.addr, "PUT", LIST, AUTH, JSON, fixed).0,
        201
    );
    emu.reboot();
    let (_, _, body) = raw::request(emu.addr, "GET", LIST, AUTH, None, "");
    let left: Vec<String> = json(&body)
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["address"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(left, ["192.0.2.2"], "only the static entry survives");
    let (_, _, body) = raw::request(emu.addr, "GET", resource, AUTH, None, "");
    let uptime = json(&body)["uptime"].as_str().unwrap().to_string();
    assert!(uptime.starts_with("00:00:0"), "{uptime}");
    let (status, _, _) = raw::request(emu.addr, "GET", resource, None, None, "");
    assert_eq!(status, 401);
}

#[test]
fn the_filter_table_adds_before_a_rule_finds_by_comment_moves_and_removes() {
    const FILTER: &str = "/rest/ip/firewall/filter";
    let emu = Emulator::http();
    let comments = |emu: &Emulator| -> Vec<String> {
        emu.filter(false)
            .iter()
            .map(|r| r.get("comment").unwrap_or("").to_string())
            .collect()
    };
    let defconf = comments(&emu);
    assert!(defconf.contains(&"defconf: drop all not coming from LAN".to_string()));
    let drop = "defconf%3A%20drop%20all%20not%20coming%20from%20LAN";
    let (status, _, body) = raw::request(
        emu.addr,
        "GET",
        &format!("{FILTER}?comment={drop}"),
        AUTH,
        None,
        "",
    );
    assert_eq!(status, 200);
    let found = json(&body);
    assert_eq!(found.as_array().unwrap().len(), 1, "{body}");
    let drop_id = found[0][".id"].as_str().unwrap().to_string();
    assert_eq!(found[0]["disabled"], "false", "every value a string");
    // Before the drop rule, then at the end.
    let add = format!(
        r#"{{"chain":"input","action":"accept","comment":"a","place-before":"{drop_id}"}}"#
    );
    let (status, _, body) = raw::request(emu.addr, "PUT", FILTER, AUTH, JSON, &add);
    assert_eq!(status, 201, "{body}");
    let a = json(&body)[".id"].as_str().unwrap().to_string();
    let at = comments(&emu).iter().position(|c| c == "a").unwrap();
    assert_eq!(
        comments(&emu)[at + 1],
        "defconf: drop all not coming from LAN"
    );
    let end = r#"{"chain":"x","action":"return","comment":"b"}"#;
    assert_eq!(
        raw::request(emu.addr, "PUT", FILTER, AUTH, JSON, end).0,
        201
    );
    assert_eq!(comments(&emu).last().unwrap(), "b");
    // An unknown place-before or field is refused and adds nothing.
    let before = emu.filter(false);
    for bad in [
        r#"{"chain":"input","action":"accept","place-before":"*FFFF"}"#,
        r#"{"chain":"input","action":"accept","place-before":"top"}"#,
        r#"{"chain":"input","bogus":"1"}"#,
    ] {
        assert_eq!(
            raw::request(emu.addr, "PUT", FILTER, AUTH, JSON, bad).0,
            400,
            "{bad}"
        );
    }
    assert_eq!(emu.filter(false), before);
    // Move `a` to the top, then delete it.
    let first = before[0].id;
    let mv = format!(r#"{{"numbers":"{a}","destination":"*{first:X}"}}"#);
    assert_eq!(
        raw::request(emu.addr, "POST", &format!("{FILTER}/move"), AUTH, JSON, &mv).0,
        200
    );
    assert_eq!(comments(&emu)[0], "a");
    let (status, _, _) = raw::request(emu.addr, "DELETE", &format!("{FILTER}/{a}"), AUTH, None, "");
    assert_eq!(status, 204);
    assert_eq!(
        raw::request(emu.addr, "DELETE", &format!("{FILTER}/{a}"), AUTH, None, "").0,
        404
    );
    assert!(!comments(&emu).contains(&"a".to_string()));
    // IPv6 has its own table.
    let (status, _, body) = raw::request(
        emu.addr,
        "GET",
        "/rest/ipv6/firewall/filter",
        AUTH,
        None,
        "",
    );
    assert_eq!(status, 200);
    assert!(
        body.contains("defconf: drop everything else not coming from LAN"),
        "{body}"
    );
}
