//! Knock-to-entry latency of the RouterOS door action, on loopback: a live
//! `knockr knockd -i lo` whose door puts knockers on the emulated router of
//! tests/it/support/routeros.rs (HTTP, or HTTPS pinned by fingerprint).
//!
//! Measured per knock: from just before the last knock packet is sent (UDP,
//! 127.78.x.y -> 127.0.0.1) to the moment the emulator has read the whole
//! PUT that adds that address (same process, same monotonic clock). That
//! covers the kernel's loopback, libpcap, the matcher, the router queue, the
//! worker and the HTTP request on a kept-alive connection; not the reply's
//! way back. Each knock comes from a new source address; one warm-up knock
//! first, so the connection is already open. Needs root (capture on lo).
//!
//!   cargo run --release --example routeros_latency -- [KNOCKS] [http|https]

#[path = "../tests/it/support/routeros.rs"]
#[allow(dead_code, clippy::all)]
mod routeros;

use std::io::BufRead as _;
use std::os::unix::fs::PermissionsExt as _;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let knocks: usize = args
        .get(1)
        .map_or(200, |n| n.parse().expect("KNOCKS is a number"));
    let https = args.get(2).is_some_and(|s| s == "https");
    let emu = if https {
        routeros::Emulator::https_for_name("router.invalid")
    } else {
        routeros::Emulator::http()
    };
    let dir = tempfile::tempdir().unwrap();
    let pass = dir.path().join("router.pass");
    std::fs::write(&pass, "s3cret-Pass").unwrap();
    std::fs::set_permissions(&pass, std::fs::Permissions::from_mode(0o600)).unwrap();
    let trust = match &emu.fingerprint {
        Some(pin) => format!("fingerprint = \"{pin}\"\n"),
        None => String::new(),
    };
    let config = dir.path().join("knockd.toml");
    std::fs::write(
        &config,
        format!(
            "[knockd]\nmax_sources = 100000\n[[door]]\nname = \"bench\"\nsequence = [\"47321:udp\", \"47322:udp\"]\n\
             [door.routeros]\nurl = \"{}\"\nuser = \"knockr\"\npassword_file = \"{}\"\nlist = \"knocked\"\n{trust}",
            emu.url(),
            pass.display()
        ),
    )
    .unwrap();
    let exe = std::env::current_exe().unwrap();
    let knockr = exe.parent().unwrap().parent().unwrap().join("knockr");
    let mut child = std::process::Command::new(&knockr)
        .args(["knockd", "-i", "lo", "-c"])
        .arg(&config)
        .arg("--state-file")
        .arg(dir.path().join("state").join("knockd.state"))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", knockr.display()));
    let stderr = child.stderr.take().unwrap();
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    loop {
        let line = lines
            .recv_timeout(Duration::from_secs(10))
            .expect("knockd said `listening` within 10 s");
        if line.contains("listening") {
            break;
        }
    }
    let mut latencies = Vec::new();
    let mut lost = 0;
    for i in 0..=knocks {
        let source = format!("127.78.{}.{}", i / 250, i % 250 + 2);
        let socket = std::net::UdpSocket::bind((source.as_str(), 0)).unwrap();
        socket.send_to(&[0], ("127.0.0.1", 47321)).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        let sent = Instant::now();
        socket.send_to(&[0], ("127.0.0.1", 47322)).unwrap();
        let needle = format!("\"{source}\"");
        let deadline = sent + Duration::from_secs(5);
        let arrived = loop {
            let found = emu
                .requests()
                .iter()
                .find(|r| r.method == "PUT" && r.body.contains(&needle))
                .map(|r| r.at);
            if found.is_some() || Instant::now() > deadline {
                break found;
            }
            std::thread::sleep(Duration::from_micros(200));
        };
        match arrived {
            // The first knock opens the connection: not counted.
            Some(at) if i > 0 => latencies.push(at.duration_since(sent)),
            Some(_) => {}
            None => lost += 1,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    latencies.sort();
    let pick = |q: f64| {
        let index = ((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[index].as_secs_f64() * 1000.0
    };
    println!(
        "{} knocks over {}: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms, not delivered within 5 s: {lost}",
        latencies.len(),
        if https {
            "HTTPS (fingerprint pin)"
        } else {
            "HTTP"
        },
        pick(0.50),
        pick(0.90),
        pick(0.99),
        pick(1.0)
    );
}
