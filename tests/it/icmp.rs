//! ICMP knocks (`SIZE:icmp`) from the real client, live as root in network
//! namespaces made by the test: a raw socket on the far side records each
//! echo request that arrives, with its payload size. Under CI=true these
//! tests must run; elsewhere without root they skip, saying why.
#![cfg(feature = "server")]

use std::net::IpAddr;
use std::process::Command;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::support::netns::{Net, can_run, enter};

/// One echo request seen: who sent it and how many payload bytes it carried.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Echo {
    from: IpAddr,
    payload: usize,
}

/// Records the echo requests arriving in namespace `ns` until `count` came
/// or a few seconds passed. Returns once the raw socket is open.
fn echo_requests(ns: &str, ipv6: bool, count: usize) -> JoinHandle<Vec<Echo>> {
    use socket2::{Domain, Protocol, Socket, Type};
    let ns = ns.to_string();
    let (ready, is_ready) = mpsc::channel();
    let listener = std::thread::spawn(move || {
        enter(&ns);
        let socket = if ipv6 {
            Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))
        } else {
            Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4))
        }
        .unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        // recv_from on a raw socket, through std's safe buffer handling.
        let socket = std::net::UdpSocket::from(socket);
        ready.send(()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut seen = Vec::new();
        let mut buf = vec![0u8; 65_536];
        while seen.len() < count && Instant::now() < deadline {
            let Ok((len, from)) = socket.recv_from(&mut buf) else {
                continue;
            };
            // A raw IPv4 socket reads the IP header too; ICMPv6 starts at once.
            let icmp = if ipv6 {
                &buf[..len]
            } else {
                &buf[usize::from(buf[0] & 0x0f) * 4..len]
            };
            let request = if ipv6 { 128 } else { 8 };
            if icmp.len() >= 8 && icmp[0] == request && icmp[1] == 0 {
                seen.push(Echo {
                    from: from.ip(),
                    payload: icmp.len() - 8,
                });
            }
        }
        seen
    });
    is_ready.recv().unwrap();
    listener
}

/// `knockr ARGS` in namespace `ns`, optionally as user nobody; (status, stdout, stderr).
fn knockr_in(ns: &str, as_nobody: bool, args: &[&str]) -> (Option<i32>, String, String) {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns]);
    if as_nobody {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        cmd.args([
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--",
        ]);
    }
    let output = cmd
        .arg(assert_cmd::cargo::cargo_bin("knockr"))
        .args(args)
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path().join(".config"))
        .env_remove("KNOCKR_CONFIG")
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn icmp_knocks_arrive_as_echo_requests_with_the_given_payload_size_in_order() {
    if !can_run() {
        return;
    }
    let net = Net::new();
    for (ipv6, target, source) in [(false, net.v4(1), net.v4(2)), (true, net.v6(1), net.v6(2))] {
        let seen = echo_requests(&net.srv, ipv6, 3);
        let (status, stdout, stderr) = knockr_in(
            &net.cli,
            false,
            &[
                "--json",
                "-d",
                "50ms",
                "-p",
                "56:icmp,7000:udp,1000:icmp,0:icmp",
                &target,
            ],
        );
        assert_eq!(status, Some(0), "{stdout}{stderr}");
        let from: IpAddr = source.parse().unwrap();
        assert_eq!(
            seen.join().unwrap(),
            [56, 1000, 0].map(|payload| Echo { from, payload }),
            "IPv6: {ipv6}"
        );
        let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        let knocks = &report["targets"][0]["knocks"];
        assert_eq!(knocks[0]["proto"], "icmp");
        assert_eq!(knocks[0]["port"], 56, "the payload size stands in the port");
        assert_eq!(
            knocks[0]["answer"], "open",
            "the far side's kernel sent the echo reply"
        );
    }
}

#[test]
fn source_and_interface_apply_to_icmp_knocks() {
    if !can_run() {
        return;
    }
    let net = Net::new();
    let source = net.client_addresses(1).remove(0);
    let cli_if = net.srv_if.replace("kvs", "kvc");
    let seen = echo_requests(&net.srv, false, 1);
    let (status, stdout, stderr) = knockr_in(
        &net.cli,
        false,
        &[
            "--source",
            &source,
            "--interface",
            &cli_if,
            "-p",
            "100:icmp",
            &net.v4(1),
        ],
    );
    assert_eq!(status, Some(0), "{stdout}{stderr}");
    assert_eq!(
        seen.join().unwrap(),
        [Echo {
            from: source.parse().unwrap(),
            payload: 100
        }]
    );
    // Bound to another interface, it does not take the veth.
    let seen = echo_requests(&net.srv, false, 1);
    knockr_in(
        &net.cli,
        false,
        &["--interface", "lo", "-p", "100:icmp", &net.v4(1)],
    );
    assert_eq!(seen.join().unwrap(), []);
}

#[test]
fn without_root_icmp_knocks_use_a_ping_socket_or_say_what_would_allow_them() {
    if !can_run() {
        return;
    }
    let net = Net::new();
    let target = net.v4(1);
    // sysctl net.ipv4.ping_group_range, for the client namespace only.
    let sysctl = |range: &str| {
        let range = range.to_string();
        net.in_client(move || std::fs::write("/proc/sys/net/ipv4/ping_group_range", range).unwrap())
    };
    // No group may open ping sockets, and nobody may not open raw ones.
    sysctl("1 0");
    let seen = echo_requests(&net.srv, false, 1);
    let (status, stdout, stderr) = knockr_in(&net.cli, true, &["-p", "56:icmp", &target]);
    assert_eq!(status, Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains(
            "was not sent: sending ICMP knocks needs a ping socket (allow your group in sysctl net.ipv4.ping_group_range) or root/CAP_NET_RAW"
        ),
        "{stdout}{stderr}"
    );
    assert_eq!(seen.join().unwrap(), [], "nothing was sent");

    // Nobody's group may: the same knock goes out from a ping socket.
    sysctl("65534 65534");
    let seen = echo_requests(&net.srv, false, 1);
    let (status, stdout, stderr) = knockr_in(&net.cli, true, &["-p", "56:icmp", &target]);
    assert_eq!(status, Some(0), "{stdout}{stderr}");
    assert_eq!(
        seen.join().unwrap(),
        [Echo {
            from: net.v4(2).parse().unwrap(),
            payload: 56
        }]
    );
}

#[test]
fn knockd_refuses_a_door_with_an_icmp_knock_and_says_where_they_belong() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("knockd.toml");
    std::fs::write(
        &config,
        "[[door]]\nname = \"ssh\"\nsequence = [\"7000\", \"56:icmp\"]\nstart = [\"/bin/true\"]\n",
    )
    .unwrap();
    let output = crate::support::knockr(dir.path())
        .args(["knockd", "--check", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            "door `ssh` has the ICMP knock 56:icmp: knockr knockd matches TCP and UDP knocks only; \
             ICMP knocks are for the router's native rules (knockr routeros rules)"
        ),
        "{stderr}"
    );
}
