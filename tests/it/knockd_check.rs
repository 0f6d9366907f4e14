//! `knockr knockd --check` predicts the start: for each way a start can
//! fail, the same configuration is checked and then started for real
//! (`-i lo`, as root), and `--check` must exit 2 exactly when the start
//! fails and 0 exactly when it listens. `--check --json` is parsed and
//! pinned by a snapshot. Live parts are gated by `can_run()`.
#![cfg(feature = "server")]

use std::io::{BufRead as _, BufReader};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::support::netns::can_run;
use crate::support::{PATIENCE, knockr};

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// `nobody`'s uid and gid, as `id` says.
fn nobody() -> (u32, u32) {
    let id = |flag: &str| {
        let out = Command::new("id").args([flag, "nobody"]).output().unwrap();
        String::from_utf8(out.stdout)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    (id("-u"), id("-g"))
}

/// Runs `knockr knockd ARGS` through `wrapper` (empty, or a command that
/// ends by exec'ing its arguments).
fn knockd(wrapper: &[String], args: &[String]) -> Command {
    let bin = assert_cmd::cargo::cargo_bin("knockr");
    let mut argv: Vec<String> = wrapper.to_vec();
    argv.push(bin.display().to_string());
    argv.push("knockd".into());
    argv.extend(args.iter().cloned());
    let mut command = Command::new(&argv[0]);
    command.args(&argv[1..]).env_remove("KNOCKR_CONFIG");
    command
}

/// `--check` with `args`: (exit status, stdout, stderr).
fn check(wrapper: &[String], args: &[String]) -> (Option<i32>, String, String) {
    let mut full = vec!["--check".to_string()];
    full.extend(args.iter().cloned());
    let output = knockd(wrapper, &full).output().unwrap();
    (
        output.status.code(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

/// What a real start did.
#[derive(Debug)]
enum Start {
    /// It logged "listening:" (on stderr or in `log`); then it was stopped.
    Listened,
    /// It exited first: its status and stderr.
    Failed(Option<i32>, String),
}

/// Starts `knockr knockd ARGS` for real and waits until it listens (its
/// stderr, or the log file `log`, says "listening:") or exits.
fn start(wrapper: &[String], args: &[String], log: Option<&Path>) -> Start {
    let mut child = knockd(wrapper, args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, lines) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut said = Vec::new();
    let deadline = Instant::now() + PATIENCE;
    loop {
        said.extend(lines.try_iter());
        let in_log = log.is_some_and(|log| {
            std::fs::read_to_string(log).is_ok_and(|text| text.contains("listening:"))
        });
        if in_log || said.iter().any(|l: &String| l.contains("listening:")) {
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            child.wait().unwrap();
            return Start::Listened;
        }
        if let Some(status) = child.try_wait().unwrap() {
            while let Ok(line) = lines.recv_timeout(Duration::from_secs(1)) {
                said.push(line);
            }
            return Start::Failed(status.code(), said.join("\n"));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "knockd neither listened nor exited; it said:\n{}",
                said.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One configuration: the directory it lives in, and what to run it with.
struct Case {
    name: &'static str,
    dir: tempfile::TempDir,
    /// `-c FILE -i lo --state-file ...`, as both the check and the start get them.
    args: Vec<String>,
    /// A command the check and the start run through (a read-only mount).
    wrapper: Vec<String>,
    /// The log file, if the config has one: where "listening:" goes.
    log: Option<PathBuf>,
    /// What `--check` must say on stderr when it refuses.
    refusal: Option<String>,
}

impl Case {
    /// `text` (with `{dir}` for the case's directory) as `file`, run with
    /// `-i lo` and a state file in the directory unless `own_state`.
    fn new(name: &'static str, file: &str, text: &str, own_state: bool) -> Case {
        let dir = tempfile::tempdir().unwrap();
        // Reachable for `nobody`, as a server that drops root needs.
        chmod(dir.path(), 0o711);
        let path = dir.path().join(file);
        let text = text.replace("{dir}", &dir.path().display().to_string());
        std::fs::write(&path, text).unwrap();
        let mut args = vec![
            "-c".to_string(),
            path.display().to_string(),
            "-i".into(),
            "lo".into(),
        ];
        if !own_state {
            args.push("--state-file".into());
            args.push(dir.path().join("state/knockd.state").display().to_string());
        }
        Case {
            name,
            dir,
            args,
            wrapper: Vec::new(),
            log: None,
            refusal: None,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn refused_with(mut self, words: &str) -> Case {
        self.refusal = Some(words.replace("{dir}", &self.dir.path().display().to_string()));
        self
    }

    /// The check and the start run with `dir` (under the case's directory)
    /// mounted read-only, in a mount namespace of their own.
    fn read_only(mut self, dir: &str) -> Case {
        let dir = self.path(dir).display().to_string();
        let script = "mount --bind \"$1\" \"$1\" && mount -o remount,bind,ro \"$1\" \"$1\" \
                      && shift && exec \"$@\"";
        self.wrapper = ["unshare", "--mount", "--", "sh", "-c", script, "sh", &dir]
            .map(String::from)
            .to_vec();
        self
    }
}

/// A door that starts (its state file is the case's, `-i lo`).
const DOOR: &str = "[[door]]\nname = \"d\"\nsequence = [\"7000:udp\", \"8000:udp\"]\n\
                    start = [\"/bin/true\"]\n";

fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    cases.push(Case::new("a config that starts", "k.toml", DOOR, false));
    let logged = Case::new(
        "a log file in a directory that exists",
        "k.toml",
        &format!("[knockd]\nlog_file = \"{{dir}}/knockd.log\"\n{DOOR}"),
        false,
    );
    let log = logged.path("knockd.log");
    cases.push(Case {
        log: Some(log),
        ..logged
    });
    cases.push(
        Case::new(
            "an unknown user",
            "k.toml",
            &format!("[knockd]\nuser = \"no-such-user-knockr\"\n{DOOR}"),
            false,
        )
        .refused_with("there is no user named no-such-user-knockr"),
    );
    cases.push(
        Case::new(
            "a log file whose directory is missing",
            "k.toml",
            &format!("[knockd]\nlog_file = \"{{dir}}/missing/knockd.log\"\n{DOOR}"),
            false,
        )
        .refused_with(
            "the log file {dir}/missing/knockd.log cannot be written by root: its directory \
             {dir}/missing does not exist",
        ),
    );
    let ro = Case::new(
        "a log file in a read-only directory",
        "k.toml",
        &format!("[knockd]\nlog_file = \"{{dir}}/logs/knockd.log\"\n{DOOR}"),
        false,
    );
    std::fs::create_dir(ro.path("logs")).unwrap();
    cases.push(
        ro.read_only("logs")
            .refused_with("its directory {dir}/logs is on a read-only filesystem"),
    );
    cases.push(
        Case::new(
            "seq_timeout = \"0s\" (TOML)",
            "k.toml",
            "[[door]]\nname = \"d\"\nsequence = [\"7000:udp\"]\nseq_timeout = \"0s\"\n\
             start = [\"/bin/true\"]\n",
            false,
        )
        .refused_with(
            "k.toml:4:15: seq_timeout = \"0s\" is not usable: expected a duration above zero",
        ),
    );
    cases.push(
        Case::new(
            "Seq_Timeout = 0 (knockd.conf)",
            "knockd.conf",
            "[d]\nsequence = 7000:udp\nSeq_Timeout = 0\ncommand = /bin/true\n",
            false,
        )
        .refused_with(
            "knockd.conf:3:15: `Seq_Timeout` value \"0\" is not usable: expected at least 1 second",
        ),
    );
    let corrupt = Case::new("a corrupt state file", "k.toml", DOOR, false);
    std::fs::create_dir(corrupt.path("state")).unwrap();
    std::fs::write(
        corrupt.path("state/knockd.state"),
        "{\"knockr_state\": 1, \"op",
    )
    .unwrap();
    cases.push(corrupt.refused_with("state file {dir}/state/knockd.state is corrupt ("));
    cases.push(
        Case::new(
            "a state directory whose parent is missing",
            "k.toml",
            &format!("[knockd]\nstate_file = \"{{dir}}/var/lib/knockd.state\"\n{DOOR}"),
            true,
        )
        .refused_with(
            "the state file's directory {dir}/var/lib cannot be written by root: its \
             directory {dir}/var does not exist",
        ),
    );
    let ro_state = Case::new(
        "a state directory on a read-only filesystem",
        "k.toml",
        &format!("[knockd]\nstate_file = \"{{dir}}/state/knockd.state\"\n{DOOR}"),
        true,
    );
    std::fs::create_dir(ro_state.path("state")).unwrap();
    cases.push(
        ro_state
            .read_only("state")
            .refused_with("the state file {dir}/state/knockd.state cannot be written by root"),
    );
    let theirs = Case::new(
        "a state directory the user cannot write",
        "k.toml",
        &format!(
            "[knockd]\nuser = \"nobody\"\nstate_file = \"{{dir}}/state/knockd.state\"\n{DOOR}"
        ),
        true,
    );
    std::fs::create_dir(theirs.path("state")).unwrap();
    chmod(&theirs.path("state"), 0o755);
    cases.push(theirs.refused_with(
        "the state file {dir}/state/knockd.state cannot be written by nobody: nobody cannot \
         write its directory {dir}/state",
    ));
    let ours = Case::new(
        "a state directory the user owns",
        "k.toml",
        &format!(
            "[knockd]\nuser = \"nobody\"\nstate_file = \"{{dir}}/state/knockd.state\"\n{DOOR}"
        ),
        true,
    );
    std::fs::create_dir(ours.path("state")).unwrap();
    let (uid, gid) = nobody();
    std::os::unix::fs::chown(ours.path("state"), Some(uid), Some(gid)).unwrap();
    cases.push(ours);
    cases.push(
        Case::new(
            "a pid file whose directory is missing",
            "k.toml",
            &format!("[knockd]\npid_file = \"{{dir}}/run/knockd.pid\"\n{DOOR}"),
            false,
        )
        .refused_with(
            "the pid file {dir}/run/knockd.pid cannot be written by root: its directory \
             {dir}/run does not exist",
        ),
    );
    let icmp = Case::new(
        "a one-time file whose current line is an ICMP knock",
        "k.toml",
        "[[door]]\nname = \"once\"\none_time_sequences = \"{dir}/seq\"\nstart = [\"/bin/true\"]\n",
        false,
    );
    std::fs::write(icmp.path("seq"), "7000:udp,56:icmp\n").unwrap();
    cases.push(icmp.refused_with("door once: cannot read its one-time sequences {dir}/seq"));
    let secret = Case::new(
        "a secret file others can read",
        "k.toml",
        "[[door]]\nname = \"team\"\nsecret_file = \"{dir}/team.secret\"\nstart = [\"/bin/true\"]\n",
        false,
    );
    std::fs::write(
        secret.path("team.secret"),
        "hex:00112233445566778899aabbccddeeff00112233\n",
    )
    .unwrap();
    chmod(&secret.path("team.secret"), 0o644);
    cases.push(secret.refused_with("can be read by others (mode 644): refused"));
    // A router whose CA file is missing: the start fails making its client.
    let router = Case::new(
        "a router CA file that does not exist",
        "k.toml",
        "[[door]]\nname = \"winbox\"\nsequence = [\"7000:udp\", \"8000:udp\"]\n\
         [door.routeros]\nurl = \"https://127.0.0.1:9\"\nuser = \"knockr\"\n\
         password_file = \"{dir}/router.pass\"\nlist = \"knocked\"\nca_file = \"{dir}/no-ca.pem\"\n",
        false,
    );
    std::fs::write(router.path("router.pass"), "s3cret-Pass\n").unwrap();
    chmod(&router.path("router.pass"), 0o600);
    cases.push(router.refused_with("{dir}/no-ca.pem"));
    cases
}

/// The issue's contract: `--check` exits 2 for each way a start fails, and
/// 0 exactly when the same configuration, started for real, listens.
#[test]
fn check_exits_2_exactly_when_a_real_start_fails() {
    if !can_run() {
        return;
    }
    let mut wrong = Vec::new();
    for case in cases() {
        let (status, stdout, stderr) = check(&case.wrapper, &case.args);
        let started = start(&case.wrapper, &case.args, case.log.as_deref());
        let expected = if case.refusal.is_some() { 2 } else { 0 };
        let said_why = case.refusal.as_ref().is_none_or(|w| stderr.contains(w));
        let agrees = matches!(
            (&started, status),
            (Start::Listened, Some(0)) | (Start::Failed(..), Some(2))
        );
        let started = match started {
            Start::Listened => "listened".to_string(),
            Start::Failed(status, said) => format!("exited {status:?}: {said}"),
        };
        if status != Some(expected) || !said_why || !agrees {
            wrong.push(format!(
                "{}: --check exited {status:?} (expected {expected}), the start {started}\n  \
                 --check said: {stdout}{stderr}\n  expected words: {:?}",
                case.name, case.refusal
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

/// An interface that is not there now may be by the start (a VPN): a
/// warning, not an error, in the text and in the JSON.
#[test]
fn a_missing_interface_is_a_warning_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("k.toml");
    std::fs::write(
        &config,
        format!("[knockd]\ninterfaces = [\"kr-absent0\"]\n{DOOR}"),
    )
    .unwrap();
    let state = dir.path().join("state/knockd.state");
    let output = knockr(dir.path())
        .args(["knockd", "--check", "-c"])
        .arg(&config)
        .arg("--state-file")
        .arg(&state)
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains(
            "warning: interface kr-absent0 does not exist now: a start fails until it does"
        ),
        "{stdout}"
    );
}

/// The TOML the JSON test checks: every kind of door and command.
const JSON_CONFIG: &str = r#"
[knockd]
interfaces = ["lo"]
max_commands = 8

[[door]]
name = "ssh"
sequence = ["7000", "8000:udp", "9000"]
seq_timeout = "5s"
tcp_flags = "syn,!ack"
target = "127.0.0.1"
start = ["/usr/sbin/nft", "add", "element", "inet", "fw", "knocked", "{", "%IP%", "}"]
stop = ["/usr/sbin/nft", "delete", "element", "inet", "fw", "knocked", "{", "%IP%", "}"]
cmd_timeout = "1h"
setup = ["/bin/true"]

[[door]]
name = "once"
one_time_sequences = "{dir}/seq"
strict = true
start = ["/bin/true", "%DOOR%"]

[[door]]
name = "team"
otp_ports = "20000-29999"
otp_protocols = ["tcp", "udp"]
otp_avoid = [22, 25000]
tcp_flags = "syn"
start = ["/bin/true"]

[[door.client]]
name = "alice"
secret_file = "{dir}/alice.secret"
"#;

/// `--check --json` of `text` (`{dir}` is a temporary directory, shown as
/// `DIR`) as parsed JSON and as text with the directory replaced.
fn check_json(name: &str, text: &str) -> (serde_json::Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let shown = dir.path().display().to_string();
    std::fs::write(dir.path().join("seq"), "7100:udp,7200:udp\n").unwrap();
    let secret = dir.path().join("alice.secret");
    std::fs::write(&secret, "hex:00112233445566778899aabbccddeeff00112233\n").unwrap();
    chmod(&secret, 0o600);
    let config = dir.path().join(name);
    std::fs::write(&config, text.replace("{dir}", &shown)).unwrap();
    let output = knockr(dir.path())
        .args(["knockd", "--check", "--json", "-c"])
        .arg(&config)
        .arg("--state-file")
        .arg(dir.path().join("state/knockd.state"))
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let value: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON document");
    (value, stdout.replace(&shown, "DIR"))
}

#[test]
fn check_json_has_the_doors_knocks_flags_timeouts_and_commands() {
    let (json, text) = check_json("k.toml", JSON_CONFIG);
    assert_eq!(json["knockr_check"], 1);
    assert_eq!(json["format"], "toml");
    assert_eq!(json["interfaces"], serde_json::json!(["lo"]));
    assert_eq!(json["max_commands"], 8);
    let doors = json["doors"].as_array().unwrap();
    let names: Vec<&str> = doors.iter().map(|d| d["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["ssh", "once", "team"]);
    let ssh = &doors[0];
    assert_eq!(ssh["kind"], "fixed");
    assert_eq!(
        ssh["knocks"],
        serde_json::json!(["7000:tcp", "8000:udp", "9000:tcp"])
    );
    assert_eq!(ssh["seq_timeout_ms"], 5000);
    assert_eq!(ssh["tcp_flags"], "syn,!ack");
    assert_eq!(ssh["target"], "127.0.0.1");
    assert_eq!(ssh["cmd_timeout_ms"], 3_600_000);
    assert_eq!(ssh["start"][0], "/usr/sbin/nft");
    assert_eq!(ssh["stop"][1], "delete");
    assert_eq!(
        ssh["start6"], ssh["start"],
        "IPv6 falls back to the IPv4 command"
    );
    assert_eq!(ssh["setup"], serde_json::json!(["/bin/true"]));
    assert_eq!(ssh["teardown"], serde_json::Value::Null);
    let once = &doors[1];
    assert_eq!(once["kind"], "one_time");
    assert_eq!(once["knocks"], serde_json::json!([]));
    assert_eq!(once["strict"], true);
    let team = &doors[2];
    assert_eq!(team["kind"], "time_based");
    assert_eq!(team["time_based"]["ports"], "20000-29999");
    assert_eq!(team["time_based"]["clients"][0]["name"], "alice");
    assert!(
        !text.contains("00112233445566778899aabb"),
        "no secret is shown"
    );
    let warnings = json["warnings"].as_array().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w["door"] == "ssh" && w["message"].as_str().unwrap().contains("ascending")),
        "{warnings:?}"
    );
    insta::assert_snapshot!("check_json_toml", text);
}

#[test]
fn check_json_shows_knockd_conf_commands_as_shell_lines() {
    let (json, text) = check_json(
        "knockd.conf",
        "[options]\n  LogFile = {dir}/knockd.log\n[openSSH]\n  sequence = 7000,8000:udp,9000\n  \
         seq_timeout = 5\n  tcpflags = syn\n  command = /sbin/iptables -A INPUT -s %IP% -j ACCEPT\n  \
         Start_Command_6 =\n",
    );
    assert_eq!(json["format"], "knockd.conf");
    let door = &json["doors"][0];
    assert_eq!(door["start"], "/sbin/iptables -A INPUT -s %IP% -j ACCEPT");
    assert_eq!(
        door["start6"],
        serde_json::Value::Null,
        "disabled by an empty _6"
    );
    assert_eq!(door["tcp_flags"], "syn");
    insta::assert_snapshot!("check_json_knockd_conf", text);
}
