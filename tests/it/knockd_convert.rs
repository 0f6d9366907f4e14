//! `knockr knockd --convert`: the README's and the shipped example
//! knockd.conf turned into TOML that loads, and one capture replayed through
//! the knockd.conf and its conversion with the same decisions; and
//! knockd.conf read as knockd 0.8 reads it (inline comments, repeated
//! section names), seen in what a replay opens and runs.
#![cfg(feature = "server")]

use std::path::{Path, PathBuf};

use crate::support;
use crate::support::{frame, knockr, pcap_file};

const HOST: &str = "192.0.2.1";

/// The knockd.conf example the repository ships.
fn example_conf() -> String {
    support::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("knockd.example.conf"))
}

/// The README's knockd.conf: its first ```ini block.
fn readme_conf() -> String {
    let readme = support::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"));
    let start = readme.find("```ini\n").expect("README has an ini block") + "```ini\n".len();
    let end = start + readme[start..].find("```").expect("the block ends");
    readme[start..end].to_string()
}

/// `knockr knockd --convert FILE`: (exit status, stdout, stderr).
fn convert(dir: &Path, file: &Path) -> (Option<i32>, String, String) {
    let output = knockr(dir)
        .args(["knockd", "--convert"])
        .arg(file)
        .output()
        .unwrap();
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).unwrap();
    (
        output.status.code(),
        text(output.stdout),
        text(output.stderr),
    )
}

/// Writes `conf` as DIR/knockd.conf and its conversion as DIR/knockd.toml.
fn both(dir: &Path, conf: &str) -> (PathBuf, PathBuf) {
    let conf_path = dir.join("knockd.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let (status, toml, stderr) = convert(dir, &conf_path);
    assert_eq!(status, Some(0), "{stderr}");
    assert_eq!(stderr, "");
    let toml_path = dir.join("knockd.toml");
    std::fs::write(&toml_path, toml).unwrap();
    (conf_path, toml_path)
}

/// Replays DIR/knocks.pcap through `config` with `--json` and `extra`;
/// every line without its time, and with a `/bin/sh -c` argv written as
/// the shell line it runs (how a knockd.conf command is logged).
fn decisions(dir: &Path, config: &Path, extra: &[&str]) -> Vec<serde_json::Value> {
    let output = knockr(dir)
        .args(["knockd", "--json", "-v", "-c"])
        .arg(config)
        .arg("--read")
        .arg(dir.join("knocks.pcap"))
        .args(extra)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    stdout
        .lines()
        .map(|line| {
            let mut value: serde_json::Value = serde_json::from_str(line).unwrap();
            let object = value.as_object_mut().unwrap();
            object.remove("time");
            for text in object.values_mut() {
                if let Some(s) = text.as_str() {
                    *text = unwrap_shell(s).into();
                }
            }
            value
        })
        .collect()
}

/// `... command: /bin/sh -c 'LINE'` as `... command: LINE`.
fn unwrap_shell(text: &str) -> String {
    match text.split_once(" command: /bin/sh -c '") {
        Some((head, quoted)) => {
            let line = quoted.strip_suffix('\'').expect("a quoted line");
            format!("{head} command: {}", line.replace(r"'\''", "'"))
        }
        None => text.to_string(),
    }
}

fn events(decisions: &[serde_json::Value]) -> Vec<String> {
    decisions
        .iter()
        .filter(|v| v.get("event").is_some())
        .map(|v| format!("{} {} {}", v["door"], v["src"], v["event"]))
        .collect()
}

#[test]
fn the_readme_and_example_knockd_confs_convert_to_toml_that_loads_as_the_same_doors() {
    for conf in [readme_conf(), example_conf()] {
        let dir = tempfile::tempdir().unwrap();
        let (conf_path, toml_path) = both(dir.path(), &conf);
        let from = knockr::config::server::load(&conf_path).unwrap();
        let to = knockr::config::server::load(&toml_path).unwrap();
        assert_eq!(to.format, knockr::config::server::Format::Toml);
        let doors = |c: &knockr::config::server::ServerConfig| {
            c.doors.iter().map(|d| d.door.clone()).collect::<Vec<_>>()
        };
        assert_eq!(doors(&from), doors(&to));
        assert!(!doors(&to).is_empty());
        assert_eq!(
            (&from.interfaces, from.use_syslog, &from.log_file),
            (&to.interfaces, to.use_syslog, &to.log_file)
        );
        // The one-step move the comments offer: each suggested argv is TOML that loads.
        let text = support::read(&toml_path);
        let suggested = text.lines().filter(|l| l.starts_with("#   ")).count();
        let moved: String = text
            .lines()
            .map(|line| match line.strip_prefix("#   ") {
                Some(argv) => format!("{argv}\n"),
                None if line.starts_with("start = [\"/bin/sh\"")
                    || line.starts_with("stop = [\"/bin/sh\"") =>
                {
                    String::new()
                }
                None => format!("{line}\n"),
            })
            .collect();
        assert!(suggested > 0, "{text}");
        let moved = knockr::config::server::parse(Path::new("moved.toml"), &moved).unwrap();
        assert_eq!(doors(&moved), doors(&from));
    }
}

#[test]
fn one_capture_replayed_through_the_example_knockd_conf_and_its_conversion_decides_alike() {
    let dir = tempfile::tempdir().unwrap();
    let (conf, toml) = both(dir.path(), &example_conf());
    pcap_file(
        &dir.path().join("knocks.pcap"),
        &[
            // openSSH, then closeSSH, by one knocker.
            (0, frame("198.51.100.7", HOST, "7000")),
            (100, frame("198.51.100.7", HOST, "8000")),
            (200, frame("198.51.100.7", HOST, "9000")),
            (1_000, frame("198.51.100.7", HOST, "9000")),
            (1_100, frame("198.51.100.7", HOST, "8000")),
            (1_200, frame("198.51.100.7", HOST, "7000")),
            // openClosedSSH, closed 10 s later.
            (2_000, frame("198.51.100.8", HOST, "2222:udp")),
            (2_100, frame("198.51.100.8", HOST, "3333")),
            (2_200, frame("198.51.100.8", HOST, "4444:udp")),
            // Too slow for its 5 s, and a wrong knock.
            (3_000, frame("198.51.100.9", HOST, "7000")),
            (9_000, frame("198.51.100.9", HOST, "8000")),
            (9_500, frame("203.0.113.5", HOST, "7000")),
            (9_600, frame("203.0.113.5", HOST, "3333")),
            (20_000, frame("203.0.113.6", HOST, "443")),
        ],
    );
    let from = decisions(dir.path(), &conf, &["--dry-run"]);
    let to = decisions(dir.path(), &toml, &["--dry-run"]);
    assert_eq!(from, to);
    let events = events(&from);
    for expected in [
        "\"openSSH\" \"198.51.100.7\" \"open\"",
        "\"closeSSH\" \"198.51.100.7\" \"open\"",
        "\"openClosedSSH\" \"198.51.100.8\" \"open\"",
        "\"openClosedSSH\" \"198.51.100.8\" \"close\"",
        "\"openSSH\" \"198.51.100.9\" \"timeout\"",
        "\"openSSH\" \"203.0.113.5\" \"reset\"",
    ] {
        assert!(
            events.contains(&expected.to_string()),
            "{expected}: {events:#?}"
        );
    }
    let commands: Vec<&str> = from
        .iter()
        .filter_map(|v| v["message"].as_str())
        .filter(|m| m.contains("would run"))
        .collect();
    assert!(
        commands.contains(
            &"openClosedSSH: would run stop command: /sbin/iptables -D INPUT -s 198.51.100.8 -p tcp --syn --dport 22 -j ACCEPT"
        ),
        "{from:#?}"
    );
}

/// Commands that really run: a shell comment in them, an inline comment
/// after a number, and two sections of one name, which knockd runs both of.
const RUNNING: &str = "
[options]
    LogFile = DIR/knockd.log
[ssh]
    sequence      = 7000,8000:udp,9000 # knock
    seq_timeout   = 5 # seconds
    tcpflags      = syn
    start_command = echo open %IP% >> DIR/ran # a shell comment, as in knockd
    cmd_timeout   = 2
    stop_command  = echo close %IP% >> DIR/ran
[ssh]
    sequence      = 7100:udp,7200:udp
    start_command = echo second %IP% >> DIR/ran
";

#[test]
fn repeated_section_names_open_independently_and_commands_keep_their_shell_comment() {
    let dir = tempfile::tempdir().unwrap();
    let conf = RUNNING.replace("DIR", &dir.path().display().to_string());
    let (conf_path, toml_path) = both(dir.path(), &conf);
    pcap_file(
        &dir.path().join("knocks.pcap"),
        &[
            (0, frame("198.51.100.7", HOST, "7000")),
            (100, frame("198.51.100.7", HOST, "8000:udp")),
            (200, frame("198.51.100.7", HOST, "9000")),
            (300, frame("198.51.100.8", HOST, "7100:udp")),
            (400, frame("198.51.100.8", HOST, "7200:udp")),
            (5_000, frame("203.0.113.6", HOST, "443")),
        ],
    );
    let mut runs = Vec::new();
    for config in [&conf_path, &toml_path] {
        let _ = std::fs::remove_file(dir.path().join("ran"));
        let decided = decisions(dir.path(), config, &[]);
        runs.push((events(&decided), support::read(dir.path().join("ran"))));
    }
    assert_eq!(runs[0], runs[1]);
    let (events, ran) = &runs[0];
    assert_eq!(
        ran,
        "open 198.51.100.7\nsecond 198.51.100.8\nclose 198.51.100.7\n"
    );
    assert!(
        events.contains(&"\"ssh#2\" \"198.51.100.8\" \"open\"".to_string()),
        "{events:#?}"
    );
    let check = knockr(dir.path())
        .args(["knockd", "--check", "-c"])
        .arg(&conf_path)
        .output()
        .unwrap();
    let stdout = String::from_utf8(check.stdout).unwrap();
    assert!(
        stdout.contains("warning: ssh#2: door `ssh#2` repeats section [ssh] of line 4"),
        "{stdout}"
    );
}

#[test]
fn converting_a_file_knockr_refuses_names_its_line_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("knockd.conf");
    std::fs::write(&conf, "[d]\n    sequence = 7000,8000,\n").unwrap();
    let (status, stdout, stderr) = convert(dir.path(), &conf);
    assert_eq!((status, stdout.as_str()), (Some(2), ""));
    assert!(
        stderr.contains(&format!("{}:2:", conf.display())),
        "{stderr}"
    );
}

/// How the C knockd 0.8 parsed `file`, from its `-D` lines: for each door
/// (as written) its sequence and timeouts, `door: key: value`. It is given
/// a second to print them; its capture on `lo` is then killed.
fn c_knockd_reads(file: &Path) -> Vec<String> {
    let knockd = crate::support::netns::which("knockd").expect("knockd is installed");
    let output = std::process::Command::new("timeout")
        .args(["-s", "KILL", "1"])
        .arg(knockd)
        .args(["-D", "-i", "lo", "-c"])
        .arg(file)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    text.lines()
        .filter_map(|line| line.strip_prefix("config: "))
        .filter(|line| {
            [": sequence: ", ": seq_timeout: ", ": cmd_timeout: "]
                .iter()
                .any(|key| line.contains(key))
        })
        .map(String::from)
        .collect()
}

/// The same lines from knockr's reading of `file`.
fn knockr_reads(file: &Path) -> Vec<String> {
    let config = knockr::config::server::load(file).unwrap();
    let mut lines = Vec::new();
    for door in &config.doors {
        let name = door.repeats.as_ref().unwrap_or(&door.door.name);
        let knocks: Vec<String> = door.door.sequence.knocks().map(|k| k.to_string()).collect();
        lines.push(format!("{name}: sequence: {}", knocks.join(",")));
        lines.push(format!(
            "{name}: seq_timeout: {}",
            door.door.seq_timeout.as_secs()
        ));
        if let Some(timeout) = door.cmd_timeout {
            lines.push(format!("{name}: cmd_timeout: {}", timeout.as_secs()));
        }
    }
    lines
}

#[test]
fn inline_comments_and_repeated_sections_are_read_as_the_c_knockd_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    for (name, conf) in [
        ("readme.conf", readme_conf()),
        ("example.conf", example_conf()),
        ("running.conf", RUNNING.replace("DIR", "/nonexistent")),
    ] {
        let file = dir.path().join(name);
        std::fs::write(&file, conf).unwrap();
        let mut knockd = c_knockd_reads(&file);
        // knockd prints seq_timeout only when written, cmd_timeout too; knockr
        // has them filled in with knockd's defaults (25 s, 10 s with a stop).
        let mut ours = knockr_reads(&file);
        ours.retain(|line| {
            knockd.contains(line)
                || !(line.contains("_timeout: 25") || line.contains("_timeout: 10"))
        });
        knockd.sort();
        ours.sort();
        assert_eq!(knockd, ours, "{name}");
        assert!(knockd.iter().any(|l| l.contains(": sequence: ")), "{name}");
    }
}
