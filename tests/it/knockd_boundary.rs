//! Only knocks addressed to this host count: `knockr knockd` live in a
//! network namespace, with frames for addresses it does not have delivered
//! to its MAC (a static neighbour entry on the client side: what a router
//! forwarding for its LAN, or a spoofed neighbour, puts on the wire), and
//! addresses added and removed while it runs.
#![cfg(feature = "server")]

use crate::support::netns::{Net, can_run, sh};

/// A door opened by 7000/udp, 8000/udp whose start appends `%IP%` to DIR/ran.
fn config(dir: &std::path::Path) -> std::path::PathBuf {
    let text = format!(
        "[[door]]\nname = \"ssh\"\nsequence = [\"7000:udp\", \"8000:udp\"]\n\
         start = [\"/bin/sh\", \"-c\", \"echo %IP% >> {}/ran\"]\n",
        dir.display()
    );
    let path = dir.join("knockd.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn ran(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("ran"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The server side's MAC address.
fn server_mac(net: &Net) -> String {
    let out = std::process::Command::new("ip")
        .args(["-n", &net.srv, "-br", "link", "show", "dev", &net.srv_if])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    text.split_whitespace().nth(2).unwrap().to_string()
}

/// On the client side, frames for `address` go to the server's MAC.
fn deliver_to_server(net: &Net, address: &str) {
    let mac = server_mac(net);
    sh(&[
        "ip",
        "-n",
        &net.cli,
        "neigh",
        "replace",
        address,
        "lladdr",
        &mac,
        "dev",
        &net.cli_if(),
        "nud",
        "permanent",
    ]);
}

/// The full knock from `source` (an address of the client side) to `to`.
fn knock(net: &Net, source: &str, to: &str) {
    assert_eq!(
        net.knock(&["--source", source, "-p", "7000:udp,8000:udp", to]),
        Some(0)
    );
}

/// Before, the capture had no destination clause and the matcher took any
/// destination: knocks to 10.200.N.3, an address the server does not have,
/// opened its door.
#[test]
fn knocks_to_an_address_not_ours_open_nothing_even_when_delivered_to_our_mac() {
    if !can_run() {
        return;
    }
    let net = Net::new();
    let extra = net.client_addresses(1);
    let dir = tempfile::tempdir().unwrap();
    let mut server = net.server(&config(dir.path()));
    let foreign = net.v4(3);
    deliver_to_server(&net, &foreign);
    knock(&net, &extra[0], &foreign);
    // Then a knock to the server's own address, from the other source.
    knock(&net, &net.v4(2), &net.v4(1));
    server.expect(&format!("start command for {} finished", net.v4(2)));
    let (status, log) = server.terminate();
    assert_eq!(status, Some(0));
    assert_eq!(ran(dir.path()), [net.v4(2)], "{}", log.join("\n"));
    assert!(
        !log.iter().any(|l| l.contains(&extra[0])),
        "the foreign knocks were not even a stage: {}",
        log.join("\n")
    );
}

/// Before, the set of addresses did not matter at all; the C knockd reads
/// them once at start. Now a new address counts at once and a removed one
/// stops counting.
#[test]
fn an_address_added_after_start_counts_at_once_and_a_removed_one_stops_counting() {
    if !can_run() {
        return;
    }
    let net = Net::new();
    let extra = net.client_addresses(2);
    let dir = tempfile::tempdir().unwrap();
    let mut server = net.server(&config(dir.path()));
    let new = net.v4(50);
    sh(&[
        "ip",
        "-n",
        &net.srv,
        "addr",
        "add",
        &format!("{new}/24"),
        "dev",
        &net.srv_if,
    ]);
    server.expect(&format!("address {new} added: knocks to it count"));
    knock(&net, &net.v4(2), &new);
    server.expect(&format!("start command for {} finished", net.v4(2)));
    // The client keeps sending frames for it to the server's MAC.
    deliver_to_server(&net, &new);
    sh(&[
        "ip",
        "-n",
        &net.srv,
        "addr",
        "del",
        &format!("{new}/24"),
        "dev",
        &net.srv_if,
    ]);
    server.expect(&format!(
        "address {new} removed: knocks to it no longer count"
    ));
    knock(&net, &extra[0], &new);
    knock(&net, &extra[1], &net.v4(1));
    server.expect(&format!("start command for {} finished", extra[1]));
    let (status, log) = server.terminate();
    assert_eq!(status, Some(0));
    assert_eq!(
        ran(dir.path()),
        [net.v4(2), extra[1].clone()],
        "{}",
        log.join("\n")
    );
}
