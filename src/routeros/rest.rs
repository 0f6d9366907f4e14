//! The RouterOS REST client for firewall address lists (RouterOS 7.1+): puts a
//! knocker on a list with a timeout, refreshes it without ever making a
//! duplicate, and removes it, following the refresh pattern of
//! reference/routeros.md; and, for `routeros apply`, lists, adds (before a
//! given rule) and deletes firewall filter rules. Transient faults (5xx,
//! timeouts, refused connections) are retried with backoff until a deadline
//! the caller gives;
//! authentication and permission errors are not retried.
//!
//! A router is not trusted to be well-behaved: a reply body is read up to
//! [`MAX_REPLY`] only, an `.id` is used only in RouterOS's `*HEX` form, and
//! every path segment made from data is escaped ([`path_segment`]).
//!
//! It must not log, and no message, error or `Debug` output of it may hold
//! the password or the Authorization header. Queueing, logging and
//! concurrency between routers belong to the caller (knockd's door action).

use std::net::IpAddr;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::core::secret::SecretSource;
use crate::routeros::timeout;
use crate::routeros::tls::{self, SeenLeaf, Trust};

/// One router as a door's configuration names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Router {
    /// The URL as written (`https://192.168.88.1`), for messages and requests.
    pub url: String,
    /// The RouterOS user; its group needs `read,write,api,rest-api`.
    pub user: String,
    /// Where the password is read from, once, when the client is made.
    pub password: SecretSource,
    /// How the certificate is checked (https only).
    pub trust: Trust,
}

impl Router {
    /// Warnings a user must see before the first request: credentials in
    /// clear, or an unchecked certificate.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.url.to_ascii_lowercase().starts_with("http://") {
            warnings.push(format!(
                "router {}: the password of user `{}` travels in clear over http://; \
                 use https:// (RouterOS service www-ssl) with ca_file or fingerprint",
                self.url, self.user
            ));
        }
        if self.trust == Trust::Insecure && !self.url.to_ascii_lowercase().starts_with("http://") {
            warnings.push(format!(
                "WARNING: router {}: insecure = true, the router's certificate is NOT checked: \
                 anyone on the path can pose as the router and take the password of user `{}`; \
                 set ca_file or fingerprint instead",
                self.url, self.user
            ));
        }
        warnings
    }
}

/// Checks a router URL as written in a config: http or https, a host, no
/// query; a trailing `/rest` is allowed. Returns the REST base (`.../rest`).
pub fn rest_base(url: &str) -> Result<String, String> {
    let expected = "expected http(s)://HOST[:PORT], e.g. \"https://192.168.88.1\"";
    let parsed = reqwest::Url::parse(url)
        .map_err(|err| format!("router url {url:?} is not a URL ({err}): {expected}"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(format!("router url {url:?} is not usable: {expected}"));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() || !parsed.username().is_empty() {
        return Err(format!(
            "router url {url:?} has a query, a fragment or a user name: {expected} \
             (the user goes in `user`, the password in password_file or password_env)"
        ));
    }
    let path = parsed.path().trim_end_matches('/');
    let path = path.strip_suffix("/rest").unwrap_or(path);
    let mut base = parsed.clone();
    base.set_path(&format!("{path}/rest"));
    Ok(base.to_string())
}

/// A password that never shows in `Debug` output.
#[derive(Clone)]
pub struct Password(String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(hidden)")
    }
}

/// An entry to put on a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The address list's name.
    pub list: String,
    /// The knocker; an IPv4-mapped IPv6 address is treated as IPv4.
    pub address: IpAddr,
    /// How long the router keeps the entry (it removes it itself).
    pub timeout: Duration,
    /// `knockr: DOOR`, so an administrator sees where the entry came from.
    pub comment: String,
}

/// The comment that marks a door's entries.
pub fn comment_for(door: &str) -> String {
    format!("knockr: {door}")
}

/// What a successful update did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A new entry, with the router's id.
    Added(String),
    /// The knocker was already on the list: its timeout was set again.
    Refreshed(String),
    /// Entries removed (0 when none was there, e.g. expired already).
    Removed(usize),
}

/// Why an update failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestError {
    /// Wrong credentials or a missing policy; retrying cannot help.
    #[error("{0}")]
    Denied(String),
    /// The router's certificate is not the trusted one; retrying cannot help.
    #[error("{0}")]
    Certificate(String),
    /// The router refused the request itself (4xx other than auth).
    #[error("router {url}: {method} {path} refused: {status} {detail}")]
    Refused {
        /// The router's URL as configured.
        url: String,
        /// The request: `PUT`, and the path below `/rest` without the query.
        method: String,
        path: String,
        /// The HTTP status and the error body's `detail` (or status text).
        status: u16,
        detail: String,
    },
    /// The router's reply cannot be trusted: a body past [`MAX_REPLY`], or an
    /// `.id` not in RouterOS's `*HEX` form. Not retried: a broken or hostile
    /// router would only send it again.
    #[error("router {url}: {method} {path}: {what}; refused")]
    BadReply {
        /// The router's URL as configured.
        url: String,
        /// The request, as in [`RestError::Refused`].
        method: String,
        path: String,
        /// What was wrong, in a few words (any text from the router escaped).
        what: String,
    },
    /// Gave up: the router stayed unreachable or failing until the deadline.
    #[error("router {url}: gave up after {attempts} attempt(s) in {waited}: {last}")]
    Unavailable {
        /// The router's URL as configured.
        url: String,
        /// Requests tried, and for how long, before the deadline.
        attempts: u32,
        waited: String,
        /// The last request and its whole error chain.
        last: String,
    },
}

/// The REST path of the address list for `address`'s family.
pub fn list_path(address: IpAddr) -> &'static str {
    match address.to_canonical() {
        IpAddr::V4(_) => "ip/firewall/address-list",
        IpAddr::V6(_) => "ipv6/firewall/address-list",
    }
}

/// The REST path of a family's firewall `table`: `ip/firewall/filter`,
/// `ipv6/firewall/address-list`.
pub fn family_path(ipv6: bool, table: &str) -> String {
    format!("{}/firewall/{table}", if ipv6 { "ipv6" } else { "ip" })
}

/// One firewall filter rule as the router lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterRule {
    /// Its `*HEX` id (checked).
    pub id: String,
    /// Every other field whose value is a string, as the router printed it.
    pub fields: std::collections::BTreeMap<String, String>,
}

impl FilterRule {
    /// The value of `key`, if the router printed one.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields.get(key).map(String::as_str)
    }
}

/// The address as the router stores it, for an exact `?address=` match:
/// `1.2.3.4`, `2001:db8::1/128`.
pub fn stored_address(address: IpAddr) -> String {
    match address.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("{v6}/128"),
    }
}

/// The body of the PUT that adds `entry`.
pub fn add_body(entry: &Entry) -> Value {
    json!({
        "list": entry.list,
        "address": entry.address.to_canonical().to_string(),
        "timeout": timeout::format(entry.timeout),
        "comment": entry.comment,
    })
}

/// The text of an error reply: its `detail`, else its `message`, else the
/// HTTP status text (the body is not always JSON, e.g. from a proxy).
pub fn error_text(status: StatusCode, body: &[u8]) -> String {
    let reason = status.canonical_reason().unwrap_or("error");
    match serde_json::from_slice::<Value>(body) {
        Ok(value) => {
            let field = |k: &str| value.get(k).and_then(Value::as_str).map(str::to_string);
            match (field("message"), field("detail")) {
                (_, Some(detail)) => detail,
                (Some(message), None) => message,
                (None, None) => reason.to_string(),
            }
        }
        Err(_) => reason.to_string(),
    }
}

/// An error and all its causes, `: `-separated (reqwest's own message hides the cause).
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Longest a single request may take; the router itself ends one at 60 s.
pub const REQUEST_LIMIT: Duration = Duration::from_secs(15);
/// The first wait before a retry; it doubles up to `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// A client for one router's address lists, over one kept-alive connection.
#[derive(Debug, Clone)]
pub struct AddressList {
    /// The router as configured (URL, user, trust).
    pub router: Router,
    /// `https://HOST/rest`.
    base: String,
    /// Sent as Basic auth on every request; read once from the file or variable.
    password: Password,
    /// reqwest's pool: one kept-alive connection, TLS configured by `router.trust`.
    client: reqwest::Client,
    /// The digest of the certificate the router showed last (https only).
    pub seen: SeenLeaf,
}

/// One reply: its status and parsed JSON body (`Null` when empty).
type Reply = (StatusCode, Value);

impl AddressList {
    /// Prepares the client with the password read from `router.password`;
    /// connects lazily.
    pub fn new(router: &Router, password: String) -> Result<AddressList, String> {
        let base = rest_base(&router.url)?;
        let seen = SeenLeaf::default();
        let tls = tls::client_config(&router.trust, seen.clone())
            .map_err(|err| format!("router {}: {err}", router.url))?;
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .no_proxy()
            .connect_timeout(Duration::from_secs(5))
            .pool_idle_timeout(Duration::from_secs(50))
            .tcp_nodelay(true)
            .user_agent(concat!("knockr/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| format!("router {}: {}", router.url, error_chain(&err)))?;
        Ok(AddressList {
            router: router.clone(),
            base,
            password: Password(password),
            client,
            seen,
        })
    }

    /// Puts `entry` on its list, or refreshes its timeout if it is there
    /// already; retries transient faults until `deadline`.
    pub async fn grant(&self, entry: &Entry, deadline: Instant) -> Result<Outcome, RestError> {
        let path = list_path(entry.address);
        let body = add_body(entry);
        // add -> exists -> find -> patch -> expired meanwhile -> add again: a few rounds at most.
        for _ in 0..3 {
            match self.send(Method::PUT, path, Some(&body), deadline).await {
                Ok((_, record)) => return Ok(Outcome::Added(self.id(&record, "PUT", path)?)),
                Err(err) if is_duplicate(&err) => {}
                Err(err) => return Err(err),
            }
            let Some(id) = self.find(entry.address, &entry.list, deadline).await?.pop() else {
                continue;
            };
            let patch = json!({ "timeout": timeout::format(entry.timeout) });
            match self
                .send(
                    Method::PATCH,
                    &format!("{path}/{}", path_segment(&id)),
                    Some(&patch),
                    deadline,
                )
                .await
            {
                Ok(_) => return Ok(Outcome::Refreshed(id)),
                Err(RestError::Refused { status: 404, .. }) => continue,
                Err(err) => return Err(err),
            }
        }
        Err(RestError::Refused {
            url: self.router.url.clone(),
            method: "PUT".into(),
            path: path.into(),
            status: 400,
            detail: "the entry kept appearing and vanishing; gave up after 3 rounds".into(),
        })
    }

    /// Adds `entry` and returns its id; no refresh (`routeros check`'s probe).
    pub async fn add(&self, entry: &Entry, deadline: Instant) -> Result<String, RestError> {
        let path = list_path(entry.address);
        let (_, record) = self
            .send(Method::PUT, path, Some(&add_body(entry)), deadline)
            .await?;
        self.id(&record, "PUT", path)
    }

    /// Deletes the entry `id` of `family`'s list.
    pub async fn delete(
        &self,
        family: IpAddr,
        id: &str,
        deadline: Instant,
    ) -> Result<(), RestError> {
        let path = format!("{}/{}", list_path(family), path_segment(id));
        self.send(Method::DELETE, &path, None, deadline)
            .await
            .map(drop)
    }

    /// Removes `address` from `list` (every entry, should there be several).
    pub async fn remove(
        &self,
        address: IpAddr,
        list: &str,
        deadline: Instant,
    ) -> Result<Outcome, RestError> {
        let path = list_path(address);
        let mut removed = 0;
        for id in self.find(address, list, deadline).await? {
            match self
                .send(
                    Method::DELETE,
                    &format!("{path}/{}", path_segment(&id)),
                    None,
                    deadline,
                )
                .await
            {
                Ok(_) => removed += 1,
                // Expired between the search and the delete: gone all the same.
                Err(RestError::Refused { status: 404, .. }) => {}
                Err(err) => return Err(err),
            }
        }
        Ok(Outcome::Removed(removed))
    }

    /// The ids of `address`'s entries on `list`.
    pub async fn find(
        &self,
        address: IpAddr,
        list: &str,
        deadline: Instant,
    ) -> Result<Vec<String>, RestError> {
        let query = format!(
            "{}?list={}&address={}",
            list_path(address),
            query_escape(list),
            query_escape(&stored_address(address))
        );
        let (_, entries) = self.send(Method::GET, &query, None, deadline).await?;
        let path = list_path(address);
        entries
            .as_array()
            .map(|a| a.iter().map(|r| self.id(r, "GET", path)).collect())
            .unwrap_or(Ok(Vec::new()))
    }

    /// The entries of `list` in the family of `family` (for `routeros check`).
    pub async fn entries(
        &self,
        family: IpAddr,
        list: &str,
        deadline: Instant,
    ) -> Result<Vec<Value>, RestError> {
        let query = format!("{}?list={}", list_path(family), query_escape(list));
        let (_, entries) = self.send(Method::GET, &query, None, deadline).await?;
        Ok(entries.as_array().cloned().unwrap_or_default())
    }

    /// Every entry of the family's address lists, as `(id, list)`: what
    /// `routeros apply` looks through to clear its stage and blocked lists.
    pub async fn list_entries(
        &self,
        ipv6: bool,
        deadline: Instant,
    ) -> Result<Vec<(String, String)>, RestError> {
        let path = family_path(ipv6, "address-list");
        let (_, entries) = self.send(Method::GET, &path, None, deadline).await?;
        entries
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|entry| {
                let list = entry.get("list").and_then(Value::as_str).unwrap_or("");
                Ok((self.id(entry, "GET", &path)?, list.to_string()))
            })
            .collect()
    }

    /// The family's firewall filter table, in table order.
    pub async fn filter_rules(
        &self,
        ipv6: bool,
        deadline: Instant,
    ) -> Result<Vec<FilterRule>, RestError> {
        let path = family_path(ipv6, "filter");
        let (_, rules) = self.send(Method::GET, &path, None, deadline).await?;
        let Some(rules) = rules.as_array() else {
            return Err(self.bad_reply("GET", &path, "the reply is not a list of rules".into()));
        };
        rules
            .iter()
            .map(|rule| {
                let id = self.id(rule, "GET", &path)?;
                // RouterOS prints every value as a string; anything else is
                // kept as no value, so it never equals a wanted one.
                let fields = rule
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter(|(key, _)| key.as_str() != ".id")
                    .filter_map(|(key, value)| Some((key.clone(), value.as_str()?.to_string())))
                    .collect();
                Ok(FilterRule { id, fields })
            })
            .collect()
    }

    /// Adds a filter rule with `fields`, before the rule `place_before`
    /// (a `*HEX` id) or at the end of the table; returns the new rule's id.
    pub async fn add_filter_rule(
        &self,
        ipv6: bool,
        fields: &[(&str, String)],
        place_before: Option<&str>,
        deadline: Instant,
    ) -> Result<String, RestError> {
        let path = family_path(ipv6, "filter");
        let mut body = serde_json::Map::new();
        for (key, value) in fields {
            body.insert((*key).to_string(), Value::String(value.clone()));
        }
        if let Some(id) = place_before {
            if !is_id(id) {
                return Err(self.bad_reply(
                    "PUT",
                    &path,
                    "a place-before id not of the form *HEX".into(),
                ));
            }
            body.insert("place-before".into(), Value::String(id.to_string()));
        }
        let (_, record) = self
            .send(Method::PUT, &path, Some(&Value::Object(body)), deadline)
            .await?;
        self.id(&record, "PUT", &path)
    }

    /// Deletes the item `id` of the family's `table` (`filter`, `address-list`);
    /// one already gone counts as deleted.
    pub async fn delete_item(
        &self,
        ipv6: bool,
        table: &str,
        id: &str,
        deadline: Instant,
    ) -> Result<(), RestError> {
        let path = format!("{}/{}", family_path(ipv6, table), path_segment(id));
        match self.send(Method::DELETE, &path, None, deadline).await {
            Ok(_) | Err(RestError::Refused { status: 404, .. }) => Ok(()),
            Err(err) => Err(err),
        }
    }

    /// How long the router has been up (`GET /system/resource`): when it
    /// goes backwards the router rebooted, and its dynamic entries are gone.
    pub async fn uptime(&self, deadline: Instant) -> Result<Duration, RestError> {
        let path = "system/resource";
        let (_, resource) = self.send(Method::GET, path, None, deadline).await?;
        let text = resource
            .get("uptime")
            .and_then(Value::as_str)
            .unwrap_or_default();
        timeout::parse_uptime(text).map_err(|err| {
            self.bad_reply("GET", path, crate::core::text::sanitize(&err).into_owned())
        })
    }

    /// The `*HEX` id of `record`, a reply to `method path`.
    fn id(&self, record: &Value, method: &str, path: &str) -> Result<String, RestError> {
        id_of(record).map_err(|what| self.bad_reply(method, path, what))
    }

    fn bad_reply(&self, method: &str, path: &str, what: String) -> RestError {
        RestError::BadReply {
            url: self.router.url.clone(),
            method: method.to_string(),
            path: path.split('?').next().unwrap_or(path).to_string(),
            what,
        }
    }

    /// One request, retried on transient faults until `deadline` (at least one attempt).
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        deadline: Instant,
    ) -> Result<Reply, RestError> {
        let started = Instant::now();
        let mut backoff = FIRST_BACKOFF;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let limit = deadline
                .saturating_duration_since(Instant::now())
                .clamp(Duration::from_secs(1), REQUEST_LIMIT);
            let last = match self.attempt(&method, path, body, limit).await {
                Ok(reply) => return Ok(reply),
                Err(Attempt::Final(err)) => return Err(err),
                Err(Attempt::Transient(why)) => why,
            };
            if Instant::now() + backoff >= deadline {
                return Err(RestError::Unavailable {
                    url: self.router.url.clone(),
                    attempts,
                    waited: crate::core::units::format_duration(Duration::from_millis(
                        started.elapsed().as_millis() as u64,
                    )),
                    last: format!("{method} {path}: {last}"),
                });
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    async fn attempt(
        &self,
        method: &Method,
        path: &str,
        body: Option<&Value>,
        limit: Duration,
    ) -> Result<Reply, Attempt> {
        let mut request = self
            .client
            .request(method.clone(), format!("{}/{path}", self.base))
            .basic_auth(&self.router.user, Some(&self.password.0))
            .timeout(limit);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|err| {
            if is_certificate_error(&err) {
                // The same certificate will be refused again: no retry.
                Attempt::Final(RestError::Certificate(format!(
                    "router {}: its TLS certificate is refused ({}); check ca_file or fingerprint \
                     (`knockr routeros check` shows the certificate's fingerprint)",
                    self.router.url,
                    error_chain(&err)
                )))
            } else {
                Attempt::Transient(error_chain(&err))
            }
        })?;
        let status = response.status();
        let bytes = read_bounded(response).await.map_err(|fault| match fault {
            BodyFault::TooLong => Attempt::Final(self.bad_reply(
                method.as_str(),
                path,
                format!("the reply is longer than {} MiB", MAX_REPLY >> 20),
            )),
            BodyFault::Broken(err) => Attempt::Transient(error_chain(&err)),
        })?;
        if status.is_success() {
            let value = if bytes.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(&bytes).unwrap_or(Value::Null)
            };
            return Ok((status, value));
        }
        let detail = error_text(status, &bytes);
        if let Some(sentence) = self.denial(status, &detail) {
            return Err(Attempt::Final(RestError::Denied(sentence)));
        }
        if status.is_server_error() {
            return Err(Attempt::Transient(format!("{} {detail}", status.as_u16())));
        }
        Err(Attempt::Final(RestError::Refused {
            url: self.router.url.clone(),
            method: method.to_string(),
            path: path.split('?').next().unwrap_or(path).to_string(),
            status: status.as_u16(),
            detail,
        }))
    }

    /// One sentence for an authentication or permission failure: which
    /// router, which user, which policy is probably missing. `None` otherwise.
    fn denial(&self, status: StatusCode, detail: &str) -> Option<String> {
        let (url, user) = (&self.router.url, &self.router.user);
        let needed = "its group needs the policies read,write,api,rest-api";
        let cause = if status == StatusCode::UNAUTHORIZED {
            "wrong user name or password, or the user may not log in from this address \
             (/user set address=)"
                .to_string()
        } else if detail.contains("not enough permissions") {
            format!("probably missing the `write` policy; {needed}")
        } else if detail.contains("not allowed") {
            format!("probably missing the `api` or `rest-api` policy; {needed}")
        } else if status == StatusCode::FORBIDDEN {
            format!("forbidden; {needed}")
        } else {
            return None;
        };
        Some(format!(
            "router {url} refused user `{user}` ({} {detail}): {cause}",
            status.as_u16()
        ))
    }
}

/// Why a reply body could not be read.
enum BodyFault {
    /// Past [`MAX_REPLY`]: the rest is not read, and the connection is dropped.
    TooLong,
    /// The connection failed mid-body.
    Broken(reqwest::Error),
}

/// `response`'s body, chunk by chunk, refused as soon as it passes
/// [`MAX_REPLY`] (or announces it will): a router cannot make us hold more.
async fn read_bounded(mut response: reqwest::Response) -> Result<Vec<u8>, BodyFault> {
    if response
        .content_length()
        .is_some_and(|length| length > MAX_REPLY as u64)
    {
        return Err(BodyFault::TooLong);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyFault::Broken)? {
        if body.len() + chunk.len() > MAX_REPLY {
            return Err(BodyFault::TooLong);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

enum Attempt {
    /// Worth retrying: 5xx, timeout, connection refused or dropped.
    Transient(String),
    /// Retrying cannot help.
    Final(RestError),
}

/// Whether `err` is a refused certificate (not a network fault). rustls's
/// error sits inside an `io::Error`, whose `source` skips it.
fn is_certificate_error(err: &(dyn std::error::Error + 'static)) -> bool {
    if let Some(tls) = err.downcast_ref::<rustls::Error>() {
        return matches!(
            tls,
            rustls::Error::InvalidCertificate(_) | rustls::Error::General(_)
        );
    }
    let inner = err
        .downcast_ref::<std::io::Error>()
        .and_then(|io| io.get_ref())
        .is_some_and(|inner| is_certificate_error(inner));
    inner || err.source().is_some_and(is_certificate_error)
}

/// Whether the router refused an add because the entry is there already.
pub fn is_duplicate(err: &RestError) -> bool {
    matches!(err, RestError::Refused { detail, .. } if detail.contains("already have such entry"))
}

/// The `.id` of `record`, which must be RouterOS's `*HEX` form: it goes
/// into the path of later requests, so anything else (`*7?evil=1`,
/// `../../system/script/*1`) is refused rather than sent back.
fn id_of(record: &Value) -> Result<String, String> {
    let id = record
        .get(".id")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if is_id(id) {
        Ok(id.to_string())
    } else {
        Err(format!(
            "the reply's .id \"{}\" is not of the form *HEX",
            crate::core::text::sanitize(&id.chars().take(64).collect::<String>())
        ))
    }
}

/// Whether `id` is a RouterOS id: `*` and 1 to 16 hex digits.
pub fn is_id(id: &str) -> bool {
    id.strip_prefix('*').is_some_and(|hex| {
        (1..=16).contains(&hex.len()) && hex.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

/// Escapes one path segment built from data: everything but unreserved
/// characters is percent-encoded, except `*`, which RouterOS wants literal
/// in ids (`%2A` is refused). A segment can then never add a `/`, a `?` or
/// a `#` to the request.
pub fn path_segment(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~*".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    if out == "." || out == ".." {
        return out.replace('.', "%2E");
    }
    out
}

/// The most of a reply body that is read. A whole IPv4 address list of ten
/// thousand entries is about 2 MiB; a router that sends more is broken or
/// hostile, and is not allowed to make knockd hold it.
pub const MAX_REPLY: usize = 4 << 20;

/// Escapes a query value: list names are free text. `/` and `:` are legal
/// in a query and left as they are, so an address reads as the router stores it.
fn query_escape(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~:/".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_family_has_its_path_and_a_mapped_address_counts_as_ipv4() {
        let v4: IpAddr = "203.0.113.45".parse().unwrap();
        let v6: IpAddr = "2001:db8::7".parse().unwrap();
        let mapped: IpAddr = "::ffff:203.0.113.45".parse().unwrap();
        assert_eq!(list_path(v4), "ip/firewall/address-list");
        assert_eq!(list_path(v6), "ipv6/firewall/address-list");
        assert_eq!(list_path(mapped), "ip/firewall/address-list");
        assert_eq!(stored_address(mapped), "203.0.113.45");
        assert_eq!(stored_address(v6), "2001:db8::7/128");
        let entry = Entry {
            list: "knocked".into(),
            address: mapped,
            timeout: Duration::from_secs(5400),
            comment: comment_for("openSSH"),
        };
        assert_eq!(
            add_body(&entry),
            json!({"list":"knocked","address":"203.0.113.45","timeout":"1h30m","comment":"knockr: openSSH"})
        );
    }

    #[test]
    fn error_text_prefers_detail_and_falls_back_to_the_status_text() {
        let bad = StatusCode::BAD_REQUEST;
        let body =
            br#"{"detail":"failure: already have such entry","error":400,"message":"Bad Request"}"#;
        assert_eq!(error_text(bad, body), "failure: already have such entry");
        assert_eq!(
            error_text(
                StatusCode::NOT_FOUND,
                br#"{"error":404,"message":"Not Found"}"#
            ),
            "Not Found"
        );
        assert_eq!(
            error_text(StatusCode::BAD_GATEWAY, b"<html>proxy error</html>"),
            "Bad Gateway"
        );
    }

    #[test]
    fn urls_become_rest_bases_and_bad_ones_are_refused() {
        assert_eq!(
            rest_base("https://192.168.88.1").unwrap(),
            "https://192.168.88.1/rest"
        );
        assert_eq!(
            rest_base("http://127.0.0.1:8080/rest/").unwrap(),
            "http://127.0.0.1:8080/rest"
        );
        assert_eq!(
            rest_base("https://[2001:db8::1]:8443").unwrap(),
            "https://[2001:db8::1]:8443/rest"
        );
        for bad in [
            "192.168.88.1",
            "ftp://r",
            "https://admin@r",
            "https://r/?x=1",
        ] {
            let err = rest_base(bad).unwrap_err();
            assert!(
                err.contains("expected http(s)://HOST[:PORT]"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn the_password_never_shows_in_debug_output() {
        let text = format!("{:?}", Password("hunter2".into()));
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    fn list_names_are_escaped_in_queries() {
        assert_eq!(query_escape("knocked"), "knocked");
        assert_eq!(query_escape("my list&x=1"), "my%20list%26x%3D1");
        assert_eq!(query_escape("2001:db8::7/128"), "2001:db8::7/128");
    }

    #[test]
    fn only_star_hex_is_an_id() {
        for good in ["*1", "*1A", "*ffff", "*0123456789ABCDEF"] {
            assert!(is_id(good), "{good}");
        }
        for bad in [
            "",
            "*",
            "1A",
            "*1G",
            "*7?evil=1",
            "*1/../x",
            "*0123456789ABCDEF0",
            " *1",
        ] {
            assert!(!is_id(bad), "{bad}");
        }
        let record = json!({".id": "*7?evil=1\n"});
        let err = id_of(&record).unwrap_err();
        assert_eq!(
            err,
            r#"the reply's .id "*7?evil=1\u{a}" is not of the form *HEX"#
        );
    }

    #[test]
    fn a_path_segment_cannot_add_a_slash_a_query_or_a_dot_segment() {
        assert_eq!(path_segment("*1A"), "*1A");
        assert_eq!(path_segment("*7?evil=1"), "*7%3Fevil%3D1");
        assert_eq!(path_segment("a/b#c d"), "a%2Fb%23c%20d");
        assert_eq!(path_segment(".."), "%2E%2E");
        assert_eq!(path_segment("."), "%2E");
    }
}
