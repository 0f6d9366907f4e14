//! A DNS server for tests, run inside a network namespace the test made: it
//! answers A and AAAA questions from a table (NXDOMAIN for names it lacks),
//! or hears every question and never answers. It records what it was asked.
//! UDP on the namespace's loopback only; it stops when dropped or after
//! `LIFETIME`, whichever comes first.

use std::collections::HashMap;
use std::net::{IpAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::netns::enter;

/// The longest a stub runs, whatever the test does.
const LIFETIME: Duration = Duration::from_secs(120);
/// The most questions a stub reads.
const MAX_QUESTIONS: usize = 10_000;

const A: u16 = 1;
const AAAA: u16 = 28;

/// Where the stub listens inside its namespace; a resolv.conf points here.
pub const ADDRESS: &str = "127.0.0.53";

/// A running stub.
pub struct Dns {
    /// Every question heard: (name without the final dot, lowercase; type).
    asked: Arc<Mutex<Vec<(String, u16)>>>,
    /// Set on drop; the thread checks it between reads.
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Dns {
    /// Answers from `records`: each name's addresses, A and AAAA alike.
    pub fn answering(ns: &str, records: &[(&str, Vec<IpAddr>)]) -> Dns {
        let table: HashMap<String, Vec<IpAddr>> = records
            .iter()
            .map(|(name, ips)| (name.to_ascii_lowercase(), ips.clone()))
            .collect();
        Dns::start(ns, Some(table))
    }

    /// Hears every question and answers none, as an unreachable server.
    pub fn silent(ns: &str) -> Dns {
        Dns::start(ns, None)
    }

    fn start(ns: &str, table: Option<HashMap<String, Vec<IpAddr>>>) -> Dns {
        let asked = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready) = std::sync::mpsc::channel();
        let ns = ns.to_string();
        let (asked_in, stop_in) = (asked.clone(), stop.clone());
        let thread = thread::spawn(move || {
            enter(&ns);
            let socket = UdpSocket::bind((ADDRESS, 53)).expect("port 53 in the test namespace");
            socket
                .set_read_timeout(Some(Duration::from_millis(20)))
                .unwrap();
            ready_tx.send(()).unwrap();
            let deadline = Instant::now() + LIFETIME;
            let mut buf = [0u8; 1500];
            let mut heard = 0;
            while !stop_in.load(Ordering::SeqCst)
                && Instant::now() < deadline
                && heard < MAX_QUESTIONS
            {
                let Ok((len, from)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                heard += 1;
                let Some((name, kind, question_end)) = question(&buf[..len]) else {
                    continue;
                };
                asked_in.lock().unwrap().push((name.clone(), kind));
                if let Some(table) = &table {
                    let reply = reply(&buf[..question_end], table.get(&name), kind);
                    let _ = socket.send_to(&reply, from);
                }
            }
        });
        ready
            .recv_timeout(Duration::from_secs(10))
            .expect("the DNS stub started");
        Dns {
            asked,
            stop,
            thread: Some(thread),
        }
    }

    /// Every question heard so far.
    pub fn asked(&self) -> Vec<(String, u16)> {
        self.asked.lock().unwrap().clone()
    }
}

impl Drop for Dns {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The question of a query: its name, type and where the question ends.
fn question(query: &[u8]) -> Option<(String, u16, usize)> {
    if query.len() < 12 || query[2] & 0x80 != 0 || u16::from_be_bytes([query[4], query[5]]) != 1 {
        return None;
    }
    let mut at = 12;
    let mut labels = Vec::new();
    loop {
        let len = *query.get(at)? as usize;
        at += 1;
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(query.get(at..at + len)?).to_ascii_lowercase());
        at += len;
    }
    let kind = u16::from_be_bytes([*query.get(at)?, *query.get(at + 1)?]);
    query.get(at + 3)?;
    Some((labels.join("."), kind, at + 4))
}

/// The answer to a query (header and question as `query` has them): the
/// table's addresses of the type asked, none (NOERROR) for a name without
/// that type, NXDOMAIN for a name not in the table.
fn reply(query: &[u8], known: Option<&Vec<IpAddr>>, kind: u16) -> Vec<u8> {
    let records: Vec<Vec<u8>> = known
        .into_iter()
        .flatten()
        .filter_map(|ip| match (ip, kind) {
            (IpAddr::V4(v4), A) => Some(v4.octets().to_vec()),
            (IpAddr::V6(v6), AAAA) => Some(v6.octets().to_vec()),
            _ => None,
        })
        .collect();
    let mut out = query.to_vec();
    // QR, the query's RD, RA; rcode 3 (NXDOMAIN) for an unknown name.
    out[2] = 0x80 | (query[2] & 0x01);
    out[3] = 0x80 | if known.is_none() { 3 } else { 0 };
    out[6..8].copy_from_slice(&(records.len() as u16).to_be_bytes());
    out[8..12].fill(0);
    for data in records {
        out.extend_from_slice(&[0xc0, 0x0c]);
        out.extend_from_slice(&kind.to_be_bytes());
        out.extend_from_slice(&1u16.to_be_bytes());
        out.extend_from_slice(&60u32.to_be_bytes());
        out.extend_from_slice(&(data.len() as u16).to_be_bytes());
        out.extend(data);
    }
    out
}
