//! An emulator of the RouterOS 7 REST API for firewall address lists, as
//! reference/routeros.md describes it: Basic auth (401 with
//! `WWW-Authenticate`), users whose group policies decide what they may do,
//! JSON string values, `*ID` ids, duplicate detection on the normalized
//! address, `?list=&address=` filters, timeouts that expire on an injected
//! clock (GET shows the time left), separate IPv4 and IPv6 lists, the error
//! body shape, HTTP or HTTPS with a CA made by the test, and fault injection
//! (5xx, slow replies, dropped connections, down for a while, endless
//! junk bodies, crafted `.id` values), `/system/resource`'s uptime with
//! a reboot that loses every dynamic entry, and the firewall filter tables
//! (`/ip/firewall/filter`, `/ipv6/...`: list with filters, add with
//! `place-before`, set, remove, move), starting as a default configuration.
//!
//! It listens on 127.0.0.1 only and runs on a runtime of its own, so tests
//! that drive the `knockr` binary synchronously can use it. It is a test
//! double: it reuses nothing from knockr, so it can disagree with it.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt as _, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use serde_json::{Value, json};

/// The longest timeout RouterOS takes: 35w3d13h13m56s.
const MAX_TIMEOUT_SECS: u64 = 21_474_836;

/// One address-list entry as the router keeps it.
#[derive(Debug, Clone)]
pub struct Record {
    pub id: u32,
    pub list: String,
    /// The stored (normalized) form: `1.2.3.4`, `2001:db8::1/128`, or a DNS name.
    pub address: String,
    pub comment: Option<String>,
    /// When it expires on the emulator's clock; `None`: static entry.
    pub expires: Option<Duration>,
    pub disabled: bool,
}

/// One firewall filter rule as the router keeps it: its fields in the
/// order they were set, every value a string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterRecord {
    pub id: u32,
    pub fields: Vec<(String, String)>,
}

impl FilterRecord {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The fields a filter rule may have here (a subset of RouterOS's); any
/// other is refused as RouterOS refuses an unknown one.
const FILTER_FIELDS: &[&str] = &[
    "chain",
    "action",
    "jump-target",
    "in-interface",
    "in-interface-list",
    "src-address",
    "src-address-list",
    "dst-address",
    "protocol",
    "dst-port",
    "icmp-options",
    "packet-size",
    "connection-state",
    "address-list",
    "address-list-timeout",
    "comment",
    "disabled",
    "log",
];

/// A table like RouterOS's default configuration: input rules commented
/// `defconf: ...` with the drop rule, and a forward rule after them.
pub fn defconf_filter(v6: bool) -> Vec<Vec<(&'static str, &'static str)>> {
    let drop = if v6 {
        "defconf: drop everything else not coming from LAN"
    } else {
        "defconf: drop all not coming from LAN"
    };
    vec![
        vec![
            ("chain", "input"),
            ("action", "accept"),
            ("connection-state", "established,related,untracked"),
            ("comment", "defconf: accept established,related,untracked"),
        ],
        vec![
            ("chain", "input"),
            ("action", "drop"),
            ("connection-state", "invalid"),
            ("comment", "defconf: drop invalid"),
        ],
        vec![
            ("chain", "input"),
            ("action", "accept"),
            ("protocol", if v6 { "icmpv6" } else { "icmp" }),
            ("comment", "defconf: accept ICMP"),
        ],
        vec![
            ("chain", "input"),
            ("action", "drop"),
            ("in-interface-list", "!LAN"),
            ("comment", drop),
        ],
        vec![
            ("chain", "forward"),
            ("action", "accept"),
            ("connection-state", "established,related,untracked"),
            ("comment", "defconf: accept established,related, untracked"),
        ],
    ]
}

/// A RouterOS user and the policies of its group.
#[derive(Debug, Clone)]
pub struct User {
    pub password: String,
    pub policies: Vec<String>,
}

/// A request as the emulator answered it.
#[derive(Debug, Clone)]
pub struct Logged {
    pub method: String,
    /// Path and query as sent.
    pub target: String,
    pub status: u16,
    /// The body as sent (empty when none).
    pub body: String,
    /// When the request had been read in full (before the reply).
    pub at: std::time::Instant,
}

/// Faults to inject, counted down by the requests they hit.
#[derive(Debug, Default, Clone)]
pub struct Faults {
    /// The next N requests get this 5xx status (with a RouterOS error body).
    pub fail_next: u32,
    pub fail_status: u16,
    /// Every reply waits this long first.
    pub delay: Duration,
    /// The next N requests have their connection closed without a reply.
    pub drop_next: u32,
    /// The next reply's body is this many bytes of JSON-looking junk, sent
    /// in chunks without a length (a broken or hostile router); how much of
    /// it went out is counted in [`State::junk_sent`].
    pub junk_next: u64,
    /// The next reply that carries records has each `.id` replaced by this.
    pub id_next: Option<String>,
}

/// Everything the emulator knows; tests read and change it directly.
#[derive(Debug, Default)]
pub struct State {
    pub users: HashMap<String, User>,
    pub v4: Vec<Record>,
    pub v6: Vec<Record>,
    /// The firewall filter tables, in table order.
    pub filter_v4: Vec<FilterRecord>,
    pub filter_v6: Vec<FilterRecord>,
    next_id: u32,
    /// The emulated clock: starts at zero, moves only with [`Emulator::advance`].
    pub clock: Duration,
    pub faults: Faults,
    pub requests: Vec<Logged>,
    /// Bytes of junk bodies (`Faults::junk_next`) the client took, shared
    /// with the bodies being sent.
    pub junk_sent: Arc<std::sync::atomic::AtomicU64>,
    /// The uptime when the clock was at `booted_at` (a router up for days);
    /// it moves with the emulated clock and with real time, as a router's.
    pub uptime_at_boot: Duration,
    pub booted_at: Duration,
    pub booted_real: Option<std::time::Instant>,
}

impl State {
    fn filter(&mut self, v6: bool) -> &mut Vec<FilterRecord> {
        if v6 {
            &mut self.filter_v6
        } else {
            &mut self.filter_v4
        }
    }

    /// Replaces a filter table with `rules`, each given fresh ids.
    fn set_filter(&mut self, v6: bool, rules: Vec<Vec<(&str, &str)>>) {
        let mut table = Vec::new();
        for fields in rules {
            self.next_id += 1;
            table.push(FilterRecord {
                id: self.next_id,
                fields: fields
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            });
        }
        *self.filter(v6) = table;
    }

    fn list(&mut self, v6: bool) -> &mut Vec<Record> {
        if v6 { &mut self.v6 } else { &mut self.v4 }
    }

    /// `/system/resource`'s uptime, as RouterOS prints it: `3d04:00:05`.
    fn uptime(&self) -> String {
        let real = self.booted_real.map(|at| at.elapsed()).unwrap_or_default();
        let secs = (self.uptime_at_boot + (self.clock - self.booted_at) + real).as_secs();
        let (days, rest) = (secs / 86_400, secs % 86_400);
        let (weeks, days) = (days / 7, days % 7);
        let mut out = String::new();
        if weeks > 0 {
            out += &format!("{weeks}w");
        }
        if days > 0 {
            out += &format!("{days}d");
        }
        out + &format!(
            "{:02}:{:02}:{:02}",
            rest / 3600,
            rest % 3600 / 60,
            rest % 60
        )
    }

    /// Drops entries whose timeout has run out, as the router does by itself.
    fn expire(&mut self) {
        let now = self.clock;
        for list in [&mut self.v4, &mut self.v6] {
            list.retain(|r| r.expires.is_none_or(|at| at > now));
        }
    }
}

/// The policies a knockr user needs (reference: least privilege).
pub const KNOCKR_POLICIES: &[&str] = &["read", "write", "api", "rest-api"];

/// A running emulator on 127.0.0.1.
pub struct Emulator {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<State>>,
    /// `http` or `https`.
    pub scheme: &'static str,
    /// The CA that signed the HTTPS certificate (PEM), when HTTPS.
    pub ca_pem: Option<String>,
    /// `sha256:AB:..` of the HTTPS leaf certificate, when HTTPS.
    pub fingerprint: Option<String>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    runtime: tokio::runtime::Runtime,
    /// The accept loop; aborted (and awaited) to go "down".
    accept: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Every connection task; aborted while "down".
    tasks: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Emulator {
    /// Plain HTTP, one user `knockr` with password `s3cret-Pass` and the
    /// needed policies.
    pub fn http() -> Emulator {
        Emulator::start(None)
    }

    /// HTTPS with a fresh CA and a leaf for 127.0.0.1 and localhost.
    pub fn https() -> Emulator {
        Emulator::start(Some(make_certificates(&["127.0.0.1"])))
    }

    /// HTTPS whose certificate names only `wrong.example`: a CA file check
    /// fails on the name, a fingerprint pin still works.
    pub fn https_for_name(name: &str) -> Emulator {
        Emulator::start(Some(make_certificates(&[name])))
    }

    fn start(tls: Option<Certificates>) -> Emulator {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let mut state = State {
            uptime_at_boot: Duration::from_secs(3 * 86_400 + 4 * 3600),
            booted_real: Some(std::time::Instant::now()),
            ..State::default()
        };
        state.users.insert(
            "knockr".into(),
            User {
                password: "s3cret-Pass".into(),
                policies: KNOCKR_POLICIES.iter().map(|p| p.to_string()).collect(),
            },
        );
        state.set_filter(false, defconf_filter(false));
        state.set_filter(true, defconf_filter(true));
        let (acceptor, ca_pem, fingerprint) = match tls {
            Some(c) => (Some(c.acceptor), Some(c.ca_pem), Some(c.fingerprint)),
            None => (None, None, None),
        };
        let emulator = Emulator {
            addr,
            state: Arc::new(Mutex::new(state)),
            scheme: if acceptor.is_some() { "https" } else { "http" },
            ca_pem,
            fingerprint,
            tls: acceptor,
            runtime,
            accept: Mutex::default(),
            tasks: Arc::default(),
        };
        emulator.serve(listener);
        emulator
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    pub fn add_user(&self, name: &str, password: &str, policies: &[&str]) {
        self.state.lock().unwrap().users.insert(
            name.into(),
            User {
                password: password.into(),
                policies: policies.iter().map(|p| p.to_string()).collect(),
            },
        );
    }

    /// Moves the emulated clock; entries whose timeout ran out disappear.
    pub fn advance(&self, by: Duration) {
        let mut state = self.state.lock().unwrap();
        state.clock += by;
        state.expire();
    }

    /// The current IPv4 (or IPv6) entries, expired ones removed.
    pub fn entries(&self, v6: bool) -> Vec<Record> {
        let mut state = self.state.lock().unwrap();
        state.expire();
        state.list(v6).clone()
    }

    /// The IPv4 (or IPv6) firewall filter table, in table order.
    pub fn filter(&self, v6: bool) -> Vec<FilterRecord> {
        self.state.lock().unwrap().filter(v6).clone()
    }

    /// Replaces the IPv4 (or IPv6) filter table (fresh ids).
    pub fn set_filter(&self, v6: bool, rules: Vec<Vec<(&str, &str)>>) {
        self.state.lock().unwrap().set_filter(v6, rules);
    }

    pub fn requests(&self) -> Vec<Logged> {
        self.state.lock().unwrap().requests.clone()
    }

    pub fn faults(&self, faults: Faults) {
        self.state.lock().unwrap().faults = faults;
    }

    /// Reboots the router: every dynamic entry (one with a timeout) is gone,
    /// the uptime starts again from zero, and open connections are cut.
    pub fn reboot(&self) {
        {
            let mut guard = self.state.lock().unwrap();
            let state = &mut *guard;
            for list in [&mut state.v4, &mut state.v6] {
                list.retain(|r| r.expires.is_none());
            }
            state.uptime_at_boot = Duration::ZERO;
            state.booted_at = state.clock;
            state.booted_real = Some(std::time::Instant::now());
        }
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    /// Stops listening and cuts every connection (connection refused from
    /// now on), or listens again on the same port.
    pub fn set_down(&self, down: bool) {
        if down {
            let accept = self.accept.lock().unwrap().take();
            for task in self.tasks.lock().unwrap().drain(..) {
                task.abort();
            }
            if let Some(accept) = accept {
                accept.abort();
                // Aborting only asks; the listener is closed once the task is gone.
                let _ = self.runtime.block_on(accept);
            }
        } else {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.set_reuseaddr(true).unwrap();
            let _guard = self.runtime.enter();
            socket.bind(self.addr).unwrap();
            let listener = socket.listen(128).unwrap();
            self.serve(listener);
        }
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let state = self.state.clone();
        let tls = self.tls.clone();
        let tasks = self.tasks.clone();
        let handle = self.runtime.handle().clone();
        let accept = self.runtime.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = state.clone();
                let tls = tls.clone();
                let connection = handle.spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let state = state.clone();
                        async move { handle_request(state, req).await }
                    });
                    let http = hyper::server::conn::http1::Builder::new();
                    match tls {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                let io = hyper_util::rt::TokioIo::new(stream);
                                let _ = http.serve_connection(io, service).await;
                            }
                        }
                        None => {
                            let io = hyper_util::rt::TokioIo::new(stream);
                            let _ = http.serve_connection(io, service).await;
                        }
                    }
                });
                let mut tasks = tasks.lock().unwrap();
                tasks.retain(|t| !t.is_finished());
                tasks.push(connection.abort_handle());
            }
        });
        *self.accept.lock().unwrap() = Some(accept);
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(accept) = self.accept.lock().unwrap().take() {
            accept.abort();
        }
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

/// A connection to close without a reply.
#[derive(Debug)]
struct Dropped;
impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}
impl std::error::Error for Dropped {}

/// A reply body: a whole one, or junk streamed without end in sight.
type Body = http_body_util::combinators::BoxBody<Bytes, std::convert::Infallible>;

/// `left` bytes of `[` and spaces, 64 KiB at a time, counting what was taken.
struct Junk {
    left: u64,
    sent: Arc<std::sync::atomic::AtomicU64>,
}

impl hyper::body::Body for Junk {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        const CHUNK: u64 = 64 * 1024;
        if self.left == 0 {
            return std::task::Poll::Ready(None);
        }
        let n = self.left.min(CHUNK);
        self.left -= n;
        self.sent.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        let mut chunk = vec![b' '; n as usize];
        chunk[0] = b'[';
        std::task::Poll::Ready(Some(Ok(hyper::body::Frame::data(Bytes::from(chunk)))))
    }
}

async fn handle_request(
    state: Arc<Mutex<State>>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Dropped> {
    let method = req.method().to_string();
    let target = req
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let headers = req.headers().clone();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let read_at = std::time::Instant::now();
    let (delay, drop_it, fail, junk, fake_id, junk_sent) = {
        let mut s = state.lock().unwrap();
        let junk_sent = s.junk_sent.clone();
        let faults = &mut s.faults;
        let junk = std::mem::take(&mut faults.junk_next);
        let drop_it = faults.drop_next > 0;
        faults.drop_next = faults.drop_next.saturating_sub(u32::from(drop_it));
        let fail = (!drop_it && faults.fail_next > 0).then_some(faults.fail_status);
        faults.fail_next = faults.fail_next.saturating_sub(u32::from(fail.is_some()));
        (
            faults.delay,
            drop_it,
            fail,
            junk,
            faults.id_next.clone(),
            junk_sent,
        )
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let log = |status: u16| Logged {
        method: method.clone(),
        target: target.clone(),
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
        at: read_at,
    };
    if drop_it {
        state.lock().unwrap().requests.push(log(0));
        return Err(Dropped);
    }
    let (status, mut reply, location) = match fail {
        Some(code) => (
            StatusCode::from_u16(code).unwrap(),
            error_body(code, Some("internal error (injected)")),
            None,
        ),
        None => {
            let mut s = state.lock().unwrap();
            s.expire();
            answer(&mut s, &method, &target, &headers, &body)
        }
    };
    if let Some(fake) = fake_id.filter(|_| status.is_success()) {
        let records = match &mut reply {
            Value::Array(records) => records.iter_mut().collect(),
            record @ Value::Object(_) => vec![record],
            _ => Vec::new(),
        };
        if !records.is_empty() {
            state.lock().unwrap().faults.id_next = None;
        }
        for record in records {
            record[".id"] = Value::String(fake.clone());
        }
    }
    state.lock().unwrap().requests.push(log(status.as_u16()));
    let mut response = Response::builder().status(status);
    if junk > 0 {
        let body = Junk {
            left: junk,
            sent: junk_sent,
        };
        return Ok(response
            .header("Content-Type", "application/json")
            .body(http_body_util::BodyExt::boxed(body))
            .unwrap());
    }
    if status == StatusCode::UNAUTHORIZED {
        response = response.header("WWW-Authenticate", "Basic realm=\"RouterOS\"");
    }
    if let Some(location) = location {
        response = response.header("Location", location);
    }
    let bytes = match reply {
        Value::Null => Bytes::new(),
        value => {
            response = response.header("Content-Type", "application/json");
            Bytes::from(value.to_string())
        }
    };
    Ok(response
        .body(http_body_util::BodyExt::boxed(Full::new(bytes)))
        .unwrap())
}

type Answer = (StatusCode, Value, Option<String>);

fn error_body(status: u16, detail: Option<&str>) -> Value {
    let message = StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    match detail {
        Some(detail) => json!({"detail": detail, "error": status, "message": message}),
        None => json!({"error": status, "message": message}),
    }
}

fn error(status: u16, detail: Option<&str>) -> Answer {
    (
        StatusCode::from_u16(status).unwrap(),
        error_body(status, detail),
        None,
    )
}

/// The REST semantics, on a locked state.
fn answer(
    state: &mut State,
    method: &str,
    target: &str,
    headers: &hyper::HeaderMap,
    body: &[u8],
) -> Answer {
    // Authentication first, as the router: 401 before anything else.
    let Some(user) = authenticate(state, headers) else {
        return error(401, None);
    };
    let has = |p: &str| user.policies.iter().any(|q| q == p);
    if !has("api") || !has("rest-api") {
        return error(500, Some("std failure: not allowed (9)"));
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if path.contains("%2A") || path.contains("%2a") {
        return error(400, Some("no such command prefix"));
    }
    if path == "/rest/system/resource" {
        if !has("read") {
            return error(500, Some("not enough permissions (9)"));
        }
        if method != "GET" {
            return error(400, Some("no such command"));
        }
        let resource = json!({
            "uptime": state.uptime(),
            "version": "7.16.2 (stable)",
            "board-name": "knockr-emulator",
        });
        return (StatusCode::OK, resource, None);
    }
    for (prefix, v6) in [
        ("/rest/ip/firewall/filter", false),
        ("/rest/ipv6/firewall/filter", true),
    ] {
        if let Some(rest) = path.strip_prefix(prefix) {
            return filter_answer(state, &has, method, v6, rest, query, headers, body);
        }
    }
    let (v6, rest) = if let Some(rest) = path.strip_prefix("/rest/ip/firewall/address-list") {
        (false, rest)
    } else if let Some(rest) = path.strip_prefix("/rest/ipv6/firewall/address-list") {
        (true, rest)
    } else {
        return error(400, Some("no such command or directory"));
    };
    let id = match rest {
        "" | "/" => None,
        id => match id
            .strip_prefix("/*")
            .and_then(|hex| u32::from_str_radix(hex, 16).ok())
        {
            Some(id) => Some(id),
            None => return error(400, Some("no such command prefix")),
        },
    };
    let writes = matches!(method, "PUT" | "PATCH" | "DELETE" | "POST");
    if (writes && !has("write")) || !has("read") {
        return error(500, Some("not enough permissions (9)"));
    }
    if matches!(method, "PUT" | "PATCH" | "POST") {
        let json_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if !json_type {
            return error(415, None);
        }
    }
    let fields = || -> Result<serde_json::Map<String, Value>, Answer> {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => Ok(map),
            _ => Err(error(400, Some("Failed to parse json"))),
        }
    };
    let clock = state.clock;
    match (method, id) {
        ("GET", None) => {
            let filters: Vec<(String, String)> = query
                .split('&')
                .filter(|p| !p.is_empty())
                .filter_map(|p| p.split_once('='))
                .map(|(k, v)| (decode(k), decode(v)))
                .collect();
            let records: Vec<Value> = state
                .list(v6)
                .iter()
                .map(|r| render(r, clock))
                .filter(|r| {
                    filters
                        .iter()
                        .all(|(k, v)| r.get(k).and_then(Value::as_str) == Some(v))
                })
                .collect();
            (StatusCode::OK, Value::Array(records), None)
        }
        ("GET", Some(id)) => match state.list(v6).iter().find(|r| r.id == id) {
            Some(r) => (StatusCode::OK, render(r, clock), None),
            None => error(404, None),
        },
        ("PUT", None) => {
            let fields = match fields() {
                Ok(f) => f,
                Err(e) => return e,
            };
            let mut record = Record {
                id: 0,
                list: String::new(),
                address: String::new(),
                comment: None,
                expires: None,
                disabled: false,
            };
            if let Err(e) = apply(&mut record, &fields, clock, v6) {
                return e;
            }
            if record.list.is_empty() || record.address.is_empty() {
                return error(400, Some("failure: list and address must be set"));
            }
            let duplicate = state
                .list(v6)
                .iter()
                .any(|r| r.list == record.list && r.address == record.address);
            if duplicate {
                return error(400, Some("failure: already have such entry"));
            }
            state.next_id += 1;
            record.id = state.next_id;
            let reply = render(&record, clock);
            let family = if v6 { "ipv6" } else { "ip" };
            let location = format!("/rest/{family}/firewall/address-list/*{:X}", record.id);
            state.list(v6).push(record);
            (StatusCode::CREATED, reply, Some(location))
        }
        ("PATCH", Some(id)) => {
            let fields = match fields() {
                Ok(f) => f,
                Err(e) => return e,
            };
            let Some(mut record) = state.list(v6).iter().find(|r| r.id == id).cloned() else {
                return error(404, None);
            };
            if let Err(e) = apply(&mut record, &fields, clock, v6) {
                return e;
            }
            let reply = render(&record, clock);
            let slot = state.list(v6).iter_mut().find(|r| r.id == id).unwrap();
            *slot = record;
            (StatusCode::OK, reply, None)
        }
        ("DELETE", Some(id)) => {
            let list = state.list(v6);
            match list.iter().position(|r| r.id == id) {
                Some(i) => {
                    list.remove(i);
                    (StatusCode::NO_CONTENT, Value::Null, None)
                }
                None => error(404, None),
            }
        }
        _ => error(400, Some("no such command")),
    }
}

/// `/ip/firewall/filter` and `/ipv6/firewall/filter`: list (with field
/// filters), add (optionally before a rule), set, remove, move.
#[allow(clippy::too_many_arguments)]
fn filter_answer(
    state: &mut State,
    has: &dyn Fn(&str) -> bool,
    method: &str,
    v6: bool,
    rest: &str,
    query: &str,
    headers: &hyper::HeaderMap,
    body: &[u8],
) -> Answer {
    if !has("read") || (method != "GET" && !has("write")) {
        return error(500, Some("not enough permissions (9)"));
    }
    if matches!(method, "PUT" | "PATCH" | "POST") {
        let json_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if !json_type {
            return error(415, None);
        }
    }
    let fields = || -> Result<serde_json::Map<String, Value>, Answer> {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => Ok(map),
            _ => Err(error(400, Some("Failed to parse json"))),
        }
    };
    let text = |value: &Value| match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    let parse_id = |text: &str| {
        text.strip_prefix('*')
            .and_then(|hex| u32::from_str_radix(hex, 16).ok())
    };
    let render = |rule: &FilterRecord| {
        let mut value = json!({".id": format!("*{:X}", rule.id)});
        for (k, v) in &rule.fields {
            value[k] = json!(v);
        }
        for (k, v) in [
            ("disabled", "false"),
            ("dynamic", "false"),
            ("invalid", "false"),
            ("bytes", "0"),
            ("packets", "0"),
        ] {
            if value.get(k).is_none() {
                value[k] = json!(v);
            }
        }
        value
    };
    /// Sets `fields` on `rule`; unknown names and values not a string,
    /// number or boolean are refused.
    fn set(
        rule: &mut FilterRecord,
        fields: &serde_json::Map<String, Value>,
        text: &dyn Fn(&Value) -> Option<String>,
    ) -> Result<(), Answer> {
        for (key, value) in fields {
            if !FILTER_FIELDS.contains(&key.as_str()) {
                return Err(error(400, Some(&format!("unknown parameter {key}"))));
            }
            let Some(value) = text(value) else {
                return Err(error(400, Some(&format!("invalid value for {key}"))));
            };
            match rule.fields.iter_mut().find(|(k, _)| k == key) {
                Some(slot) => slot.1 = value,
                None => rule.fields.push((key.clone(), value)),
            }
        }
        Ok(())
    }
    let id = match rest {
        "" | "/" => None,
        "/move" => {
            if method != "POST" {
                return error(400, Some("no such command"));
            }
            let fields = match fields() {
                Ok(f) => f,
                Err(e) => return e,
            };
            let number = fields
                .get("numbers")
                .and_then(Value::as_str)
                .and_then(parse_id);
            let destination = fields.get("destination").and_then(Value::as_str);
            let table = state.filter(v6);
            let Some(from) = number.and_then(|n| table.iter().position(|r| r.id == n)) else {
                return error(400, Some("no such item"));
            };
            let rule = table.remove(from);
            match destination {
                None => table.push(rule),
                Some(dest) => {
                    match parse_id(dest).and_then(|d| table.iter().position(|r| r.id == d)) {
                        Some(at) => table.insert(at, rule),
                        None => {
                            table.insert(from, rule);
                            return error(400, Some("no such item"));
                        }
                    }
                }
            }
            return (StatusCode::OK, json!([]), None);
        }
        id => match id.strip_prefix('/').and_then(parse_id) {
            Some(id) => Some(id),
            None => return error(400, Some("no such command prefix")),
        },
    };
    match (method, id) {
        ("GET", None) => {
            let filters: Vec<(String, String)> = query
                .split('&')
                .filter(|p| !p.is_empty())
                .filter_map(|p| p.split_once('='))
                .map(|(k, v)| (decode(k), decode(v)))
                .collect();
            let rules: Vec<Value> = state
                .filter(v6)
                .iter()
                .map(render)
                .filter(|r| {
                    filters
                        .iter()
                        .all(|(k, v)| r.get(k).and_then(Value::as_str) == Some(v))
                })
                .collect();
            (StatusCode::OK, Value::Array(rules), None)
        }
        ("GET", Some(id)) => match state.filter(v6).iter().find(|r| r.id == id) {
            Some(r) => (StatusCode::OK, render(r), None),
            None => error(404, None),
        },
        ("PUT", None) => {
            let mut fields = match fields() {
                Ok(f) => f,
                Err(e) => return e,
            };
            let before = match fields.remove("place-before") {
                None => None,
                Some(value) => {
                    let at = text(&value)
                        .and_then(|t| parse_id(&t))
                        .and_then(|id| state.filter(v6).iter().position(|r| r.id == id));
                    match at {
                        Some(at) => Some(at),
                        None => {
                            return error(
                                400,
                                Some("input does not match any value of place-before"),
                            );
                        }
                    }
                }
            };
            let mut rule = FilterRecord {
                id: 0,
                fields: Vec::new(),
            };
            if let Err(e) = set(&mut rule, &fields, &text) {
                return e;
            }
            if rule.get("chain").is_none() {
                return error(400, Some("failure: chain not set"));
            }
            state.next_id += 1;
            rule.id = state.next_id;
            let reply = render(&rule);
            let family = if v6 { "ipv6" } else { "ip" };
            let location = format!("/rest/{family}/firewall/filter/*{:X}", rule.id);
            let table = state.filter(v6);
            match before {
                Some(at) => table.insert(at, rule),
                None => table.push(rule),
            }
            (StatusCode::CREATED, reply, Some(location))
        }
        ("PATCH", Some(id)) => {
            let fields = match fields() {
                Ok(f) => f,
                Err(e) => return e,
            };
            let Some(rule) = state.filter(v6).iter_mut().find(|r| r.id == id) else {
                return error(404, None);
            };
            let mut changed = rule.clone();
            if let Err(e) = set(&mut changed, &fields, &text) {
                return e;
            }
            *rule = changed;
            (StatusCode::OK, render(rule), None)
        }
        ("DELETE", Some(id)) => {
            let table = state.filter(v6);
            match table.iter().position(|r| r.id == id) {
                Some(i) => {
                    table.remove(i);
                    (StatusCode::NO_CONTENT, Value::Null, None)
                }
                None => error(404, None),
            }
        }
        _ => error(400, Some("no such command")),
    }
}

fn authenticate(state: &State, headers: &hyper::HeaderMap) -> Option<User> {
    use base64::Engine as _;
    let value = headers.get("authorization")?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (name, password) = text.split_once(':')?;
    let user = state.users.get(name)?;
    (user.password == password).then(|| user.clone())
}

/// Sets `fields` on `record`, as RouterOS: strings, numbers or booleans are
/// all taken; unknown names and bad values are refused.
fn apply(
    record: &mut Record,
    fields: &serde_json::Map<String, Value>,
    clock: Duration,
    v6: bool,
) -> Result<(), Answer> {
    for (key, value) in fields {
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => return Err(error(400, Some(&format!("invalid value for {key}")))),
        };
        match key.as_str() {
            "list" => record.list = text,
            "address" => record.address = normalize(&text, v6),
            "comment" => record.comment = Some(text),
            "disabled" => record.disabled = matches!(text.as_str(), "true" | "yes"),
            "timeout" => {
                let secs = parse_timeout(&text).ok_or_else(|| {
                    error(
                        400,
                        Some(&format!(
                            "value of timeout is out of range or invalid: {text}"
                        )),
                    )
                })?;
                record.expires = Some(clock + Duration::from_secs(secs));
            }
            other => return Err(error(400, Some(&format!("unknown parameter {other}")))),
        }
    }
    Ok(())
}

/// `1.2.3.4/32` -> `1.2.3.4`; an IPv6 host gets `/128`; other text is kept
/// (RouterOS stores it as a DNS name).
fn normalize(text: &str, v6: bool) -> String {
    let (host, prefix) = match text.split_once('/') {
        Some((h, p)) => (h, p.parse::<u8>().ok()),
        None => (text, None),
    };
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(a)) if !v6 && prefix.is_none_or(|p| p == 32) => a.to_string(),
        Ok(IpAddr::V4(a)) if !v6 => format!("{a}/{}", prefix.unwrap()),
        Ok(IpAddr::V6(a)) if v6 => format!("{a}/{}", prefix.unwrap_or(128)),
        _ => text.to_string(),
    }
}

/// RouterOS durations: `1w2d3h4m5s` or `hh:mm:ss`, at most 35w3d13h13m56s.
fn parse_timeout(text: &str) -> Option<u64> {
    let secs = if let Some((h, rest)) = text.split_once(':') {
        let (m, s) = rest.split_once(':')?;
        h.parse::<u64>().ok()? * 3600 + m.parse::<u64>().ok()? * 60 + s.parse::<u64>().ok()?
    } else if text.bytes().all(|b| b.is_ascii_digit()) {
        text.parse().ok()?
    } else {
        let mut total = 0u64;
        let mut number = String::new();
        for c in text.chars() {
            if c.is_ascii_digit() {
                number.push(c);
                continue;
            }
            let n: u64 = std::mem::take(&mut number).parse().ok()?;
            total += n * match c {
                'w' => 604_800,
                'd' => 86_400,
                'h' => 3_600,
                'm' => 60,
                's' => 1,
                _ => return None,
            };
        }
        if !number.is_empty() {
            return None;
        }
        total
    };
    (secs <= MAX_TIMEOUT_SECS).then_some(secs)
}

fn format_left(mut secs: u64) -> String {
    let mut out = String::new();
    for (unit, name) in [
        (604_800, 'w'),
        (86_400, 'd'),
        (3_600, 'h'),
        (60, 'm'),
        (1, 's'),
    ] {
        if secs >= unit {
            out += &format!("{}{name}", secs / unit);
            secs %= unit;
        }
    }
    if out.is_empty() { "0s".into() } else { out }
}

/// A record as the router prints it: every value a string.
fn render(record: &Record, clock: Duration) -> Value {
    let mut value = json!({
        ".id": format!("*{:X}", record.id),
        "list": record.list,
        "address": record.address,
        "creation-time": "2026-11-22 02:00:00",
        "disabled": record.disabled.to_string(),
        "dynamic": record.expires.is_some().to_string(),
    });
    if let Some(comment) = &record.comment {
        value["comment"] = json!(comment);
    }
    if let Some(at) = record.expires {
        value["timeout"] = json!(format_left(at.saturating_sub(clock).as_secs()));
    }
    value
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 3 <= bytes.len()
            && let Ok(b) = u8::from_str_radix(&text[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
        } else {
            out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

struct Certificates {
    acceptor: tokio_rustls::TlsAcceptor,
    ca_pem: String,
    fingerprint: String,
}

/// A CA and a leaf it signs for `names` (IP literals become IP SANs).
fn make_certificates(names: &[&str]) -> Certificates {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    use sha2::Digest as _;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "knockr test router CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    let leaf = params.signed_by(&leaf_key, &ca).unwrap();
    let digest = sha2::Sha256::digest(leaf.der());
    let hex: Vec<String> = digest.iter().map(|b| format!("{b:02X}")).collect();
    let key = rustls::pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![leaf.der().clone(), ca.der().clone()], key)
    .unwrap();
    Certificates {
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        ca_pem: ca.pem(),
        fingerprint: format!("sha256:{}", hex.join(":")),
    }
}

/// The emulator's own behaviour, checked over raw HTTP so it cannot share a
/// mistake with knockr's client.
pub mod raw {
    use std::io::{Read as _, Write as _};
    use std::net::{SocketAddr, TcpStream};

    /// Sends one request (`Connection: close`) and returns status, headers and body.
    pub fn request(
        addr: SocketAddr,
        method: &str,
        target: &str,
        auth: Option<(&str, &str)>,
        content_type: Option<&str>,
        body: &str,
    ) -> (u16, String, String) {
        use base64::Engine as _;
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let mut head = format!(
            "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        if let Some((user, password)) = auth {
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            head += &format!("Authorization: Basic {token}\r\n");
        }
        if let Some(ct) = content_type {
            head += &format!("Content-Type: {ct}\r\n");
        }
        head += "\r\n";
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(body.as_bytes()).unwrap();
        let mut reply = String::new();
        stream.read_to_string(&mut reply).unwrap();
        let (headers, body) = reply.split_once("\r\n\r\n").unwrap_or((&reply, ""));
        let status = headers
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        (status, headers.to_string(), body.to_string())
    }
}
