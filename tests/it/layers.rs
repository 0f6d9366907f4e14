//! The rooms of `src/` and the one direction their dependencies run in
//! (ARCHITECTURE.md): core <- routeros <- config <- client | server <- app.
//! Read from the source text, so a `use` across the line fails here, not in
//! review: which room each file may name, and no cycle between files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// What each room may name besides itself.
const ALLOWED: &[(&str, &[&str])] = &[
    ("core", &[]),
    ("exit_codes", &[]),
    ("routeros", &["core"]),
    ("nft", &["core"]),
    ("config", &["core", "routeros", "nft"]),
    ("client", &["core", "routeros", "config", "exit_codes"]),
    ("server", &["core", "routeros", "config", "nft"]),
    // clap's definitions map their values onto the core's and the planner's types.
    ("cli", &["core", "config", "client"]),
    (
        "app",
        &[
            "core",
            "routeros",
            "nft",
            "config",
            "client",
            "server",
            "cli",
            "exit_codes",
        ],
    ),
    ("lib", &["app"]),
];

/// Crates the pure core must not use: no clap, no runtime, no capture, no sockets.
const NOT_IN_CORE: &[&str] = &[
    "clap::",
    "tokio::",
    "pcap::",
    "socket2::",
    "reqwest::",
    "std::fs",
    "std::net::TcpStream",
    "std::net::UdpSocket",
    "SystemTime::now",
    "Instant::now",
    "std::env::",
    "getrandom::",
];

#[test]
fn each_room_names_only_the_rooms_below_it() {
    let files = sources();
    let mut wrong = Vec::new();
    for (file, text) in &files {
        let room = room_of(file);
        let allowed = ALLOWED
            .iter()
            .find(|(r, _)| *r == room)
            .unwrap_or_else(|| panic!("{}: room {room} is not in ALLOWED", file.display()))
            .1;
        for path in crate_paths(text) {
            let named = path[0].as_str();
            if named != room && !allowed.contains(&named) {
                wrong.push(format!(
                    "{} ({room}) names crate::{}",
                    file.display(),
                    path.join("::")
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "dependencies against the rooms' order:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_client_and_the_server_never_name_each_other() {
    let files = sources();
    for (file, text) in &files {
        let (room, other) = match room_of(file) {
            "client" => ("client", "server"),
            "server" => ("server", "client"),
            _ => continue,
        };
        assert!(
            !crate_paths(text).iter().any(|p| p[0] == other),
            "{} ({room}) names crate::{other}",
            file.display()
        );
    }
}

#[test]
fn the_core_touches_no_files_sockets_clock_or_frameworks() {
    for (file, text) in sources() {
        if room_of(&file) != "core" {
            continue;
        }
        for word in NOT_IN_CORE {
            assert!(
                !text.contains(word),
                "{} is in the pure core but uses {word}",
                file.display()
            );
        }
    }
}

#[test]
fn no_two_modules_depend_on_each_other_even_through_others() {
    let files = sources();
    let known: BTreeSet<PathBuf> = files.keys().cloned().collect();
    let mut edges: BTreeMap<PathBuf, BTreeSet<PathBuf>> = BTreeMap::new();
    for (file, text) in &files {
        let targets = edges.entry(file.clone()).or_default();
        for path in crate_paths(text).into_iter().chain(super_paths(file, text)) {
            // A child naming its parent's items is how Rust nests modules
            // (the parent owns the child); only the parent's edge counts.
            if let Some(target) = resolve(&known, &path)
                && &target != file
                && !is_ancestor(&target, file)
            {
                targets.insert(target);
            }
        }
    }
    if let Some(cycle) = find_cycle(&edges) {
        let names: Vec<String> = cycle.iter().map(|p| p.display().to_string()).collect();
        panic!("module cycle: {}", names.join(" -> "));
    }
}

/// A pure function of the test above, tested itself: the checker must be
/// able to see a cycle, or the test above could never fail.
#[test]
fn the_cycle_finder_finds_a_planted_cycle() {
    let edge = |a: &str, b: &str| (PathBuf::from(a), BTreeSet::from([PathBuf::from(b)]));
    let acyclic = BTreeMap::from([edge("a", "b"), edge("b", "c")]);
    assert_eq!(find_cycle(&acyclic), None);
    let cyclic = BTreeMap::from([edge("a", "b"), edge("b", "c"), edge("c", "a")]);
    assert!(find_cycle(&cyclic).is_some_and(|c| c.len() == 4));
    assert!(is_ancestor(
        Path::new("server/engine.rs"),
        Path::new("server/engine/otp.rs")
    ));
    assert!(is_ancestor(
        Path::new("server/mod.rs"),
        Path::new("server/engine.rs")
    ));
    assert!(!is_ancestor(
        Path::new("server/engine.rs"),
        Path::new("server/log.rs")
    ));
    assert!(!is_ancestor(
        Path::new("server/log.rs"),
        Path::new("server/log.rs")
    ));
    let text = "use crate::client::plan::{self, Plan};\nuse crate::{core::knock::Knock, config};\nfn f() { crate::server::run() }";
    assert_eq!(
        crate_paths(text),
        [
            vec!["client", "plan"],
            vec!["client", "plan", "Plan"],
            vec!["core", "knock", "Knock"],
            vec!["config"],
            vec!["server", "run"],
        ]
        .map(|p| p.into_iter().map(String::from).collect::<Vec<_>>())
    );
}

/// Every `.rs` file under `src/`, without its unit tests (which may reach
/// across to build fixtures), keyed by its path relative to `src/`.
fn sources() -> BTreeMap<PathBuf, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = BTreeMap::new();
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                let code = match text.find("#[cfg(test)]\nmod tests") {
                    Some(at) => text[..at].to_string(),
                    None => text,
                };
                files.insert(path.strip_prefix(&root).unwrap().to_path_buf(), code);
            }
        }
    }
    assert!(files.len() > 20, "found only {} source files", files.len());
    files
}

/// The room a file under `src/` belongs to: its folder, or its own name
/// (`cli.rs`, `exit_codes.rs`); `main.rs` belongs with `lib.rs`.
fn room_of(file: &Path) -> &str {
    let first = file
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_str()
        .unwrap();
    match first.strip_suffix(".rs") {
        Some("main") => "lib",
        Some(name) => name,
        // The executables (src/main.rs, src/bin/*.rs) are the front doors.
        None if first == "bin" => "lib",
        None => first,
    }
}

/// Every path named as `crate::a::b`, with `{...}` groups expanded one
/// level (`crate::a::{b, c::d}` gives `a::b` and `a::c::d`; `self` in a
/// group names the prefix). Comments count too: a doc link across the line
/// is as wrong as a `use`.
fn crate_paths(text: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if rest.starts_with('{') {
            let group = &rest[1..rest.find('}').unwrap_or(rest.len())];
            for item in group.split(',') {
                let item = segments(item.trim());
                if !item.is_empty() {
                    paths.push(item);
                }
            }
            continue;
        }
        let mut path = segments(rest);
        let after: String = path.join("::");
        let tail = &rest[after.len()..];
        if let Some(group) = tail.strip_prefix("::{") {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            for item in group.split(',') {
                let item = item.trim();
                if item.is_empty() {
                    continue;
                }
                let mut full = path.clone();
                if item != "self" && !item.starts_with("self as") {
                    full.extend(segments(item));
                }
                paths.push(full);
            }
        } else if !path.is_empty() {
            paths.push(std::mem::take(&mut path));
        }
    }
    paths
}

/// Every path named as `super::a` from `file`, made absolute; and in a
/// `mod.rs`, every `use child::...` of a child module declared there.
fn super_paths(file: &Path, text: &str) -> Vec<Vec<String>> {
    let mut module: Vec<String> = file
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_str().unwrap().to_string())
        .collect();
    if module.last().is_some_and(|m| m == "mod") {
        module.pop();
    }
    let parent = &module[..module.len().saturating_sub(1)];
    let mut paths = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("super::") {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + "super::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let mut path = parent.to_vec();
        path.extend(segments(rest));
        paths.push(path);
    }
    if file.ends_with("mod.rs") {
        let children: Vec<&str> = text
            .lines()
            .filter_map(|l| {
                l.trim()
                    .strip_prefix("pub mod ")
                    .or(l.trim().strip_prefix("mod "))
            })
            .filter_map(|l| l.strip_suffix(';'))
            .collect();
        for line in text.lines() {
            let Some(used) = line.trim().strip_prefix("use ") else {
                continue;
            };
            let first = segments(used);
            if first
                .first()
                .is_some_and(|f| children.contains(&f.as_str()))
            {
                let mut path = module.clone();
                path.extend(first);
                paths.push(path);
            }
        }
    }
    paths
}

/// `a::b::C` at the start of `text`, as segments.
fn segments(text: &str) -> Vec<String> {
    let mut segments = Vec::new();
    let mut rest = text;
    loop {
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        if end == 0 {
            break;
        }
        segments.push(rest[..end].to_string());
        match rest[end..].strip_prefix("::") {
            Some(next) if next.starts_with(|c: char| c.is_alphanumeric() || c == '_') => {
                rest = next
            }
            _ => break,
        }
    }
    segments
}

/// Whether the module in file `ancestor` encloses the module in file `file`
/// (`server/engine.rs` encloses `server/engine/otp.rs`; a `mod.rs` its folder).
fn is_ancestor(ancestor: &Path, file: &Path) -> bool {
    let module = if ancestor.ends_with("mod.rs") {
        ancestor.parent().unwrap().to_path_buf()
    } else {
        ancestor.with_extension("")
    };
    !module.as_os_str().is_empty() && file.starts_with(&module) && file != ancestor
}

/// The file that defines the longest module prefix of `path`.
fn resolve(known: &BTreeSet<PathBuf>, path: &[String]) -> Option<PathBuf> {
    (1..=path.len()).rev().find_map(|n| {
        let dir: PathBuf = path[..n].iter().collect();
        [dir.with_extension("rs"), dir.join("mod.rs")]
            .into_iter()
            .find(|candidate| known.contains(candidate))
    })
}

/// A path `a -> ... -> a` in `edges`, if there is one (depth-first search).
fn find_cycle(edges: &BTreeMap<PathBuf, BTreeSet<PathBuf>>) -> Option<Vec<PathBuf>> {
    fn visit(
        node: &PathBuf,
        edges: &BTreeMap<PathBuf, BTreeSet<PathBuf>>,
        done: &mut BTreeSet<PathBuf>,
        stack: &mut Vec<PathBuf>,
    ) -> Option<Vec<PathBuf>> {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(node.clone());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.clone());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, edges, done, stack) {
                return Some(cycle);
            }
        }
        stack.pop();
        done.insert(node.clone());
        None
    }
    let mut done = BTreeSet::new();
    edges
        .keys()
        .find_map(|node| visit(node, edges, &mut done, &mut Vec::new()))
}
