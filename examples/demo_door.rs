//! A toy knock server for the README demo, so knockr can be seen working on
//! one machine with no outside host: it listens on loopback knock ports,
//! prints each knock as it arrives, and when one source has knocked the whole
//! sequence in order it opens (listens on) the protected port.
//!
//! Not the real server (`knockr knockd` matches from a capture, with
//! timeouts and per-door state); this only serves the demo.
//!
//!     cargo run --example demo_door -- 127.0.1.1 22222 7000 8000:udp 9000

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use knockr::core::knock::{Knock, Proto, parse_knock};

/// The demo stops by itself after this long.
const LIFETIME: Duration = Duration::from_secs(30);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: demo_door IP OPEN_PORT PORT[:tcp|udp]...";
    let ip: IpAddr = args.first().and_then(|a| a.parse().ok()).expect(usage);
    let open_port: u16 = args.get(1).and_then(|a| a.parse().ok()).expect(usage);
    let sequence: Vec<Knock> = args[2..]
        .iter()
        .map(|a| parse_knock(a, Proto::Tcp).expect(usage))
        .collect();
    assert!(!sequence.is_empty(), "{usage}");

    let start = Instant::now();
    let (tx, rx) = mpsc::channel::<(Knock, SocketAddr)>();
    for knock in sequence.iter().copied() {
        let tx = tx.clone();
        let addr = SocketAddr::new(ip, knock.port);
        match knock.proto {
            Proto::Tcp => {
                let listener = TcpListener::bind(addr)
                    .unwrap_or_else(|e| panic!("cannot listen on {addr}: {e}"));
                thread::spawn(move || {
                    for stream in listener.incoming().flatten() {
                        if let Ok(from) = stream.peer_addr() {
                            let _ = tx.send((knock, from));
                        }
                    }
                });
            }
            Proto::Udp => {
                let socket = UdpSocket::bind(addr)
                    .unwrap_or_else(|e| panic!("cannot listen on {addr}: {e}"));
                thread::spawn(move || {
                    let mut buf = [0u8; 2048];
                    while let Ok((_, from)) = socket.recv_from(&mut buf) {
                        let _ = tx.send((knock, from));
                    }
                });
            }
            Proto::Icmp => panic!("the demo door listens for TCP and UDP knocks only, not {knock}"),
        }
    }
    println!(
        "door {ip}: waiting for {}",
        sequence
            .iter()
            .map(|k| k.to_string())
            .collect::<Vec<_>>()
            .join(" ")
    );

    let mut stage: HashMap<IpAddr, usize> = HashMap::new();
    let mut opened = None;
    while let Ok((knock, from)) = rx.recv_timeout(LIFETIME.saturating_sub(start.elapsed())) {
        let at = start.elapsed().as_millis();
        let next = stage.entry(from.ip()).or_default();
        if sequence[*next] == knock {
            *next += 1;
        } else {
            *next = usize::from(sequence[0] == knock);
        }
        println!(
            "door {ip}: +{at:>5} ms  knock {knock} from {} (stage {}/{})",
            from.ip(),
            next,
            sequence.len()
        );
        if *next == sequence.len() {
            *next = 0;
            if opened.is_none() {
                let listener =
                    TcpListener::bind((ip, open_port)).expect("the protected port is free");
                println!("door {ip}: sequence complete, port {open_port} is now open");
                thread::spawn(move || for _ in listener.incoming() {});
                opened = Some(());
            }
        }
    }
}
