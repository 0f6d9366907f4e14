//! The command line's contract with scripts: exit statuses, messages, and the
//! generated files (completions, man page) that are committed to the repository.

use std::time::Duration;

use crate::support;
use crate::support::{Door, knockr, profiles};

fn stderr_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn usage_errors_exit_2_and_send_nothing() {
    let door = Door::new("127.0.1.60");
    let port = door.tcp().to_string();
    let home = tempfile::tempdir().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--no-such-flag", "-p", &port, "127.0.1.60"],
            "unexpected argument '--no-such-flag'",
        ),
        (
            vec!["-p", "0", "127.0.1.60"],
            "port 0 is out of range: expected 1..=65535",
        ),
        (
            vec!["-p", &port, "-p", "7000:sctp", "127.0.1.60"],
            "protocol \"sctp\" is not known: expected tcp, udp or icmp",
        ),
        (
            vec!["-p", &port, "-p", "70000:icmp", "127.0.1.60"],
            "ICMP payload size \"70000\" is not usable",
        ),
        (
            vec!["-n", "icmp", "-p", &port, "127.0.1.60"],
            "invalid value 'icmp'",
        ),
        (
            vec!["-4", "-6", "-p", &port, "127.0.1.60"],
            "cannot be used with",
        ),
        (
            vec!["-d", "soon", "-p", &port, "127.0.1.60"],
            "duration \"soon\" is not understood",
        ),
        (
            vec!["--check", "70000", "-p", &port, "127.0.1.60"],
            "port 70000 is out of range",
        ),
        (vec!["-p", &port], "no host to knock"),
        (vec!["some-profile"], "there is no profiles file at"),
        (
            vec!["-n", "sctp", "-p", &port, "127.0.1.60"],
            "invalid value 'sctp'",
        ),
        (vec![], "Usage: knockr"),
    ];
    for (args, expected) in cases {
        let output = knockr(home.path()).args(&args).output().unwrap();
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr_of(&output)
        );
        assert!(
            stderr_of(&output).contains(expected),
            "{args:?}: {}",
            stderr_of(&output)
        );
        assert!(
            output.stdout.is_empty(),
            "{args:?}: results go nowhere on a usage error"
        );
    }
    assert!(
        door.collect_for(Duration::from_millis(300)).is_empty(),
        "no usage error sent a knock"
    );
}

/// Runs `args` and asserts a usage error: exit 2, one line on stderr that
/// starts with `expected`, nothing on stdout.
fn assert_usage_error(output: &std::process::Output, args: &[&str], expected: &str) {
    let stderr = stderr_of(output);
    assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(stderr.starts_with(expected), "{args:?}: {stderr}");
    assert_eq!(
        stderr.lines().count(),
        1,
        "{args:?}: one sentence: {stderr}"
    );
    assert!(output.stdout.is_empty(), "{args:?}");
}

/// Reproduced on main, each was planned and then failed as a target (exit
/// 1): "cannot assign requested address", "no such device", "only IPv6 was
/// asked for", and for the ssh spellings "protocol error: Label contains
/// invalid characters: Err(Errors)". They are usage errors now: exit 2,
/// before anything is sent, one sentence saying what to write.
#[test]
fn regression_what_cannot_be_knocked_failed_a_target_instead_of_being_a_usage_error() {
    let door = Door::new("127.0.1.64");
    let knock = format!("{}:udp", door.udp());
    let home = tempfile::tempdir().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--source", "192.0.2.9", "-p", &knock, "127.0.1.64"],
            "knockr: --source 192.0.2.9 is not an address of this machine: give one of its own",
        ),
        (
            vec!["--interface", "nope0", "-p", &knock, "127.0.1.64"],
            "knockr: --interface nope0 is not a network interface of this machine: expected one of ",
        ),
        (
            vec!["-6", "-p", &knock, "127.0.1.64"],
            "knockr: `127.0.1.64` is an IPv4 address, but -6 asks for IPv6 only: drop -6",
        ),
        (
            vec!["-4", "-p", &knock, "::1"],
            "knockr: `::1` is an IPv6 address, but -4 asks for IPv4 only: drop -4",
        ),
        (
            vec!["-p", &knock, "127.0.1.64:22"],
            "knockr: `127.0.1.64:22` is a host and a port: write the host alone and the port \
             apart: knockr --check 22 127.0.1.64 knocks 127.0.1.64, then checks that port 22 opens",
        ),
        (
            vec!["-p", &knock, "root@127.0.1.64"],
            "knockr: `root@127.0.1.64` names a user: knockr knocks hosts, ssh logs in: write `127.0.1.64`",
        ),
        (
            vec!["-p", &knock, "[2001:db8::1]:22"],
            "knockr: `[2001:db8::1]:22` is a host and a port: write the host alone and the port \
             apart: knockr --check 22 2001:db8::1",
        ),
        (
            vec!["127.0.1.64:22", &knock],
            "knockr: `127.0.1.64:22` is a host and a port",
        ),
        (
            vec!["-p", &knock, "fe80::1"],
            "knockr: `fe80::1` is a link-local address, which needs its interface: write fe80::1%IFACE",
        ),
        (
            vec!["-p", &knock, "fe80::1%nope0"],
            "knockr: `fe80::1%nope0`: its zone `nope0` is not a network interface of this machine",
        ),
    ];
    for (args, expected) in cases {
        let output = knockr(home.path()).args(&args).output().unwrap();
        assert_usage_error(&output, &args, expected);
    }
    assert!(
        door.collect_for(Duration::from_millis(300)).is_empty(),
        "no usage error sent a knock"
    );
}

/// Reproduced: `delay = "200h"` in a profile was taken (the second knock
/// would have gone out in 200 hours, a cron job hanging until then),
/// `check_timeout = "0s"` reported the port "CLOSED after 0 attempts", and
/// `--every 1ms` sent 860 rounds in two seconds.
#[test]
fn regression_durations_past_any_sane_bound_were_taken() {
    let door = Door::new("127.0.1.65");
    let (a, b) = (door.udp(), door.udp());
    let file = |key: &str| {
        profiles(&format!(
            "[profiles.p]\nhost = \"127.0.1.65\"\nsequence = [\"{a}:udp\", \"{b}:udp\"]\n{key}\ncheck = {b}\n"
        ))
    };
    let long = file("delay = \"200h\"");
    let output = long.run(&["p"]);
    assert_usage_error(
        &output,
        &["p"],
        &format!(
            "knockr: {}:4:9: delay = \"200h\" is not usable: expected a duration from 0s to 1m",
            long.path.display()
        ),
    );
    let zero = file("check_timeout = \"0s\"");
    let output = zero.run(&["p"]);
    assert_usage_error(
        &output,
        &["p"],
        &format!(
            "knockr: {}:4:17: check_timeout = \"0s\" is not usable: expected a duration from 1ms to 5m",
            zero.path.display()
        ),
    );
    let home = tempfile::tempdir().unwrap();
    let knocks = format!("{a}:udp,{b}:udp");
    for (flags, expected) in [
        (
            ["-d", "200h"],
            "200h is not usable: expected a duration from 0s to 1m",
        ),
        (
            ["-t", "2m"],
            "2m is not usable: expected a duration from 0s to 1m",
        ),
        (
            ["--every", "1ms"],
            "1ms is not usable: expected a duration from 1s to 24h",
        ),
        (
            ["--retry", "1000"],
            "1000 is not usable: expected a number of rounds from 0 to 10",
        ),
    ] {
        let output = knockr(home.path())
            .args(flags)
            .args(["-p", &knocks, "127.0.1.65"])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{flags:?}");
        assert!(
            stderr_of(&output).contains(expected),
            "{flags:?}: {}",
            stderr_of(&output)
        );
    }
    assert!(
        door.collect_for(Duration::from_millis(300)).is_empty(),
        "nothing was sent"
    );
}

/// `--resolve-timeout` takes what the profiles' `resolve_timeout` takes,
/// refused in the same words (a usage error, nothing sent), when knocking
/// and after `connect`.
#[test]
fn the_resolve_timeout_flag_is_bounded_as_the_profiles_key_is() {
    let door = Door::new("127.0.1.67");
    let knock = format!("{}:udp", door.udp());
    let file = profiles(&format!(
        "[profiles.p]\nhost = \"127.0.1.67\"\nsequence = [\"{knock}\"]\nresolve_timeout = \"0s\"\n"
    ));
    let key = stderr_of(&file.run(&["p"]));
    let expected = "is not usable: expected a duration from 1ms to 1m, e.g. \"5s\"";
    assert!(key.trim_end().ends_with(expected), "{key}");
    let home = tempfile::tempdir().unwrap();
    for value in ["0s", "2m", "soon"] {
        for args in [
            vec!["--resolve-timeout", value, "-p", &knock, "127.0.1.67"],
            vec![
                "connect",
                "--resolve-timeout",
                value,
                "-p",
                &knock,
                "127.0.1.67",
                "22",
            ],
        ] {
            let output = knockr(home.path()).args(&args).output().unwrap();
            let stderr = stderr_of(&output);
            assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
            assert!(output.stdout.is_empty(), "{args:?}");
            let first = stderr.lines().next().unwrap_or_default();
            let sentence = if value == "soon" {
                "duration \"soon\" is not understood: expected a number of milliseconds or a \
                 number with a unit, e.g. 250ms, 2s, 1m"
                    .to_string()
            } else {
                format!("{value} {expected}")
            };
            assert_eq!(
                first,
                format!(
                    "error: invalid value '{value}' for '--resolve-timeout <DURATION>': {sentence}"
                ),
                "{args:?}"
            );
        }
    }
    assert!(
        door.collect_for(Duration::from_millis(300)).is_empty(),
        "nothing was sent"
    );
}

/// Reproduced: `knockr --dry-run connect PROFILE` knocked and connected;
/// `--source`, `-v`, `-p` before `connect` were ignored, as every knocking
/// flag before any subcommand was. Each is refused, saying where it goes.
#[test]
fn regression_knocking_flags_before_a_subcommand_were_ignored() {
    let door = Door::new("127.0.1.66");
    let (knock, check) = (door.udp(), door.tcp());
    let file = profiles(&format!(
        "[profiles.box]\nhost = \"127.0.1.66\"\nsequence = [\"{knock}:udp\"]\ncheck = {check}\n"
    ));
    let port = knock.to_string();
    for (args, expected) in [
        (
            vec!["--dry-run", "connect", "box"],
            "error: --dry-run is written before `connect`: a subcommand's flags go after its \
             name, e.g. knockr connect --dry-run ...",
        ),
        (
            vec!["--source", "127.0.1.67", "connect", "box"],
            "error: --source is written before `connect`",
        ),
        (
            vec!["-v", "connect", "box"],
            "error: -v/--verbose is written before `connect`",
        ),
        (
            vec!["-p", &port, "connect", "box"],
            "error: -p/--port is written before `connect`",
        ),
        (
            vec!["--json", "connect", "box"],
            "error: --json is a flag of knocking (knockr [FLAGS] TARGET...), which `knockr \
             connect` does not take",
        ),
        (
            vec!["--json", "list"],
            "error: --json is a flag of knocking (knockr [FLAGS] TARGET...), which `knockr list` \
             does not take",
        ),
        (
            vec!["-d", "1s", "routeros", "rules", "box", "--protect", "22"],
            "error: -d/--delay is a flag of knocking",
        ),
    ] {
        let output = file.run(&args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr_of(&output)
        );
        assert!(
            stderr_of(&output).starts_with(expected),
            "{args:?}: {}",
            stderr_of(&output)
        );
        assert!(output.stdout.is_empty(), "{args:?}");
    }
    assert!(
        door.collect_for(Duration::from_millis(300)).is_empty(),
        "nothing was knocked or connected"
    );
}

#[test]
fn an_unknown_profile_exits_2_in_every_subcommand() {
    let file =
        profiles("[profiles.home]\nhost = \"127.0.0.1\"\nsequence = [\"7000\"]\ncheck = 22\n");
    for args in [
        vec!["nope"],
        vec!["--every", "1m", "nope"],
        vec!["connect", "nope"],
        vec!["connect", "nope", "22"],
        vec!["routeros", "rules", "nope", "--protect", "22"],
    ] {
        let output = file.run(&args);
        assert_usage_error(
            &output,
            &args,
            &format!(
                "knockr: {}: there is no profile named `nope`: expected one of `home`",
                file.path.display()
            ),
        );
    }
}

#[test]
fn profiles_file_errors_exit_2_naming_file_line_and_column() {
    let file =
        profiles("[profiles.a]\nhost = \"127.0.0.1\"\nsequence = [\"7000\", \"99999:udp\"]\n");
    let output = file.run(&["a"]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stderr_of(&output),
        format!(
            "knockr: {}:3:21: port 99999 is out of range: expected 1..=65535\n",
            file.path.display()
        )
    );
}

#[test]
fn unknown_profile_exits_2_listing_the_known_ones() {
    let file = profiles("[profiles.home]\nhost = \"127.0.0.1\"\nsequence = [\"7000\"]\n");
    let output = file.run(&["home", "offce"]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stderr_of(&output),
        format!(
            "knockr: {}: there is no profile named `offce`: expected one of `home`\n",
            file.path.display()
        )
    );
}

#[test]
fn config_comes_from_flag_then_environment_then_xdg_default() {
    let text = "[profiles.zeta]\nhost = \"127.0.0.1\"\nsequence = [\"1\"]\n[profiles.alpha]\ninclude = [\"zeta\"]\n";
    let file = profiles(text);
    let listed =
        |cmd: &mut assert_cmd::Command| String::from_utf8(cmd.output().unwrap().stdout).unwrap();
    assert_eq!(
        listed(
            knockr(file.dir.path())
                .arg("list")
                .arg("-c")
                .arg(&file.path)
        ),
        "zeta\nalpha\n",
        "file order"
    );
    assert_eq!(
        listed(
            knockr(file.dir.path())
                .arg("list")
                .env("KNOCKR_CONFIG", &file.path)
        ),
        "zeta\nalpha\n"
    );

    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join(".config/knockr");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("profiles.toml"),
        "[profiles.from-xdg]\nhost = \"h\"\nsequence = [\"1\"]\n",
    )
    .unwrap();
    assert_eq!(listed(knockr(home.path()).arg("list")), "from-xdg\n");
    // The flag wins over the environment.
    assert_eq!(
        listed(
            knockr(home.path())
                .args(["list", "-c"])
                .arg(&file.path)
                .env("KNOCKR_CONFIG", "/nonexistent")
        ),
        "zeta\nalpha\n"
    );
}

#[test]
fn a_profile_named_like_a_command_is_reachable_after_double_dash() {
    let door = Door::new("127.0.1.61");
    let port = door.tcp();
    let file = profiles(&format!(
        "[profiles.list]\nhost = \"127.0.1.61\"\nsequence = [\"{port}\"]\n"
    ));
    assert_eq!(file.run(&["--", "list"]).status.code(), Some(0));
    assert_eq!(door.wait_for(1).len(), 1);
}

#[test]
fn version_and_help_exit_0_and_help_documents_exit_statuses() {
    let home = tempfile::tempdir().unwrap();
    let version = knockr(home.path()).arg("--version").output().unwrap();
    assert_eq!(version.status.code(), Some(0));
    assert_eq!(
        String::from_utf8(version.stdout).unwrap(),
        format!("knockr {}\n", env!("CARGO_PKG_VERSION"))
    );
    let help = knockr(home.path()).arg("--help").output().unwrap();
    assert_eq!(help.status.code(), Some(0));
    let help = String::from_utf8(help.stdout).unwrap();
    for needle in [
        "Exit status:",
        "0  every target",
        "1  at least one",
        "2  usage",
        "Examples:",
        "--check <PORT>",
    ] {
        assert!(help.contains(needle), "--help lacks {needle:?}");
    }
}

/// The committed files describe the default build, server included.
#[cfg(feature = "server")]
#[test]
fn committed_completions_and_man_page_match_the_binary() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let home = tempfile::tempdir().unwrap();
    let generated = |args: &[&str]| {
        let output = knockr(home.path()).args(args).output().unwrap();
        assert_eq!(output.status.code(), Some(0));
        String::from_utf8(output.stdout).unwrap()
    };
    for (shell, file) in [
        ("bash", "completions/knockr.bash"),
        ("zsh", "completions/_knockr"),
        ("fish", "completions/knockr.fish"),
        ("powershell", "completions/_knockr.ps1"),
        ("elvish", "completions/knockr.elv"),
    ] {
        assert!(
            support::read(root.join(file)) == generated(&["completions", shell]),
            "{file} is stale: regenerate it with `knockr completions {shell} > {file}`"
        );
    }
    assert!(
        support::read(root.join("man/knockr.1")) == generated(&["man"]),
        "man/knockr.1 is stale: `knockr man --dir man`"
    );
    let dir = tempfile::tempdir().unwrap();
    generated(&["man", "--dir", dir.path().to_str().unwrap()]);
    assert_eq!(
        page_files(dir.path()),
        page_files(&root.join("man")),
        "man/ does not hold the pages `knockr man --dir man` writes"
    );
    for file in page_files(dir.path()) {
        assert!(
            support::read(root.join("man").join(&file)) == support::read(dir.path().join(&file)),
            "man/{file} is stale: `knockr man --dir man`"
        );
    }
}

/// The names of the files in `dir`, sorted.
fn page_files(dir: &std::path::Path) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    files
}

/// The pages (`knockr-connect(1)`) a section of a roff page names, `\-` read as `-`.
fn pages_named_in(roff: &str, section: &str) -> Vec<String> {
    let heading = format!(".SH {section}");
    let Some(start) = roff.find(&heading) else {
        return Vec::new();
    };
    let body = &roff[start + heading.len()..];
    let body = &body[..body.find("\n.SH ").unwrap_or(body.len())];
    let text = body
        .replace("\\-", "-")
        .replace("\\fB", "")
        .replace("\\fR", "");
    let mut pages = Vec::new();
    for (at, _) in text.match_indices('(') {
        let section: String = text[at + 1..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        if section.is_empty() || !text[at + 1 + section.len()..].starts_with(')') {
            continue;
        }
        let name_start = text[..at]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '.'))
            .map_or(0, |i| i + 1);
        pages.push(format!("{}({section})", &text[name_start..at]));
    }
    pages
}

/// The keys an example file sets or shows commented out (`key =`, `# key =`).
fn keys_of_example(text: &str) -> Vec<String> {
    let mut keys: Vec<String> = text
        .lines()
        .map(|line| line.trim_start_matches(['#', ' ']))
        .filter_map(|line| line.split_once(" = ").map(|(key, _)| key.trim()))
        .filter(|key| {
            !key.is_empty()
                && key
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        })
        .map(String::from)
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

#[test]
fn the_file_format_pages_name_every_key_of_the_example_files() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for (example, page) in [
        ("profiles.example.toml", "man/knockr-profiles.5"),
        ("knockd.example.toml", "man/knockr-knockd.toml.5"),
    ] {
        let roff = support::read(root.join(page));
        let keys = keys_of_example(&support::read(root.join(example)));
        assert!(keys.len() > 10, "{example}: {keys:?}");
        for key in keys {
            assert!(
                roff.contains(&format!("\\fB{key}\\fR")),
                "{page} does not describe `{key}`, which {example} shows"
            );
        }
    }
}

#[test]
fn regression_man_pages_pointed_to_pages_that_were_never_generated() {
    let man = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    let files = page_files(&man);
    for file in &files {
        let roff = support::read(man.join(file));
        let see_also = pages_named_in(&roff, "\"SEE ALSO\"");
        assert!(!see_also.is_empty(), "man/{file} has no SEE ALSO");
        for page in see_also.iter().chain(&pages_named_in(&roff, "SUBCOMMANDS")) {
            let (name, section) = page.trim_end_matches(')').split_once('(').unwrap();
            let target = format!("{name}.{section}");
            assert!(
                files.contains(&target),
                "man/{file} names {page}, but man/{target} does not exist"
            );
        }
    }
    let top = support::read(man.join("knockr.1"));
    assert!(pages_named_in(&top, "SUBCOMMANDS").contains(&"knockr-connect(1)".to_string()));
    assert!(pages_named_in(&top, "\"SEE ALSO\"").contains(&"knockr-profiles(5)".to_string()));
}

/// `knockr ARGS` with stdout given; std's Command, since assert_cmd always
/// captures stdout.
fn run_with_stdout(args: &[&str], stdout: std::process::Stdio) -> std::process::Output {
    let home = tempfile::tempdir().unwrap();
    std::process::Command::new(assert_cmd::cargo::cargo_bin("knockr"))
        .args(args)
        .env_remove("COMPLETE")
        .env("HOME", home.path())
        .stdout(stdout)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap()
}

#[test]
fn regression_completions_and_man_panicked_on_a_closed_pipe_or_a_full_disk() {
    for (args, what) in [
        (&["completions", "bash"][..], "the completion script"),
        (&["completions", "zsh"][..], "the completion script"),
        (&["man"][..], "the man page"),
    ] {
        // The reader is gone before knockr starts: every write is EPIPE.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let output = run_with_stdout(args, writer.into());
        assert_eq!(output.status.code(), Some(0), "{args:?} | (closed)");
        assert_eq!(
            stderr_of(&output),
            "",
            "{args:?}: nothing to say about the pipe"
        );

        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let output = run_with_stdout(args, full.into());
        assert_eq!(output.status.code(), Some(1), "{args:?} > /dev/full");
        assert_eq!(
            stderr_of(&output),
            format!("knockr: cannot write {what}: no space left on device\n"),
            "{args:?}: one sentence, no panic"
        );
    }
}

/// What the script from `COMPLETE=bash knockr` prints when the user presses
/// TAB at the end of `line` (clap_complete's bash protocol: the words after
/// `--`, the index of the word being completed in `_CLAP_COMPLETE_INDEX`).
#[cfg(feature = "dynamic-completion")]
fn bash_candidates(
    home: &std::path::Path,
    env_config: Option<&std::path::Path>,
    line: &str,
) -> String {
    completer_output("bash", home, env_config, line)
}

/// What `COMPLETE=SHELL knockr` prints for TAB at the end of `line`, as
/// each shell's registration script calls it: bash and zsh give the words
/// after `--` and the index of the word being completed; fish gives the
/// words up to the cursor, the last being completed.
#[cfg(feature = "dynamic-completion")]
fn completer_output(
    shell: &str,
    home: &std::path::Path,
    env_config: Option<&std::path::Path>,
    line: &str,
) -> String {
    let words: Vec<&str> = line.split(' ').collect();
    let mut cmd = knockr(home);
    if let Some(path) = env_config {
        cmd.env("KNOCKR_CONFIG", path);
    }
    cmd.env("COMPLETE", shell);
    match shell {
        "bash" => cmd
            .env("_CLAP_IFS", "\n")
            .env("_CLAP_COMPLETE_INDEX", (words.len() - 1).to_string())
            .env("_CLAP_COMPLETE_COMP_TYPE", "9")
            .env("_CLAP_COMPLETE_SPACE", "true"),
        "zsh" => cmd
            .env("_CLAP_IFS", "\n")
            .env("_CLAP_COMPLETE_INDEX", (words.len() - 1).to_string()),
        "fish" => &mut cmd,
        other => panic!("no completion protocol for {other}"),
    };
    let output = cmd.arg("--").args(&words).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{shell}: {line}");
    String::from_utf8(output.stdout).unwrap()
}

/// The values a shell offers from the completer's output: bash's lines;
/// zsh's `VALUE:HELP` lines, `:` and `\` escaped in the value; fish's
/// `VALUE<TAB>HELP` lines.
#[cfg(feature = "dynamic-completion")]
fn offered(shell: &str, output: &str) -> Vec<String> {
    output
        .lines()
        .map(|line| match shell {
            "zsh" => {
                let (mut value, mut chars) = (String::new(), line.chars());
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => value.extend(chars.next()),
                        ':' => break,
                        c => value.push(c),
                    }
                }
                value
            }
            "fish" => line.split('\t').next().unwrap_or_default().to_string(),
            _ => line.to_string(),
        })
        .collect()
}

#[cfg(feature = "dynamic-completion")]
#[test]
fn profile_names_complete_from_the_users_profiles_file() {
    let file = profiles(
        "[profiles.home-router]\nhost = \"h\"\nsequence = [\"1\"]\n[profiles.office]\nhost = \"h\"\nsequence = [\"1\"]\n",
    );
    let lines = |text: String| text.lines().map(String::from).collect::<Vec<_>>();
    let candidates = bash_candidates(file.dir.path(), Some(&file.path), "knockr h");
    assert_eq!(lines(candidates), ["help", "home-router"]);
}

#[cfg(feature = "dynamic-completion")]
#[test]
fn regression_profiles_completed_only_as_a_knock_target_and_only_from_the_environment() {
    let file = profiles("[profiles.home-router]\nhost = \"h\"\nsequence = [\"1\"]\n");
    let other = profiles("[profiles.hallway]\nhost = \"h\"\nsequence = [\"1\"]\n");
    let home = file.dir.path();
    let c = file.path.display();
    let lines = |text: String| text.lines().map(String::from).collect::<Vec<_>>();
    // Every place a profile goes, from the file the line names, over $KNOCKR_CONFIG.
    for line in [
        format!("knockr connect -c {c} h"),
        format!("knockr routeros rules --config {c} h"),
        format!("knockr routeros rules --config={c} h"),
        format!("knockr -c {c} connect h"),
    ] {
        let candidates = bash_candidates(home, Some(&other.path), &line);
        assert_eq!(lines(candidates), ["home-router"], "{line}");
    }
    let candidates = bash_candidates(home, Some(&other.path), &format!("knockr -c {c} h"));
    assert_eq!(lines(candidates), ["help", "home-router"]);
    // No -c: $KNOCKR_CONFIG, then the default file.
    let candidates = bash_candidates(home, Some(&other.path), "knockr connect h");
    assert_eq!(lines(candidates), ["hallway"]);
    let default = home.join(".config/knockr/profiles.toml");
    std::fs::create_dir_all(default.parent().unwrap()).unwrap();
    std::fs::copy(&file.path, &default).unwrap();
    let candidates = bash_candidates(home, None, "knockr connect h");
    assert_eq!(lines(candidates), ["home-router"]);
}

#[cfg(feature = "dynamic-completion")]
#[test]
fn regression_a_profile_name_with_control_characters_reached_the_shell_raw() {
    // A quoted TOML key may hold ESC and a newline: printed raw, the newline
    // split it into a fake candidate `fake` and ESC reached the terminal.
    let file = profiles(
        "[profiles.home-router]\nhost = \"h\"\nsequence = [\"1\"]\n\
         [profiles.\"hid\\u001b[2Jden\\nfake\"]\nhost = \"h\"\nsequence = [\"1\"]\n",
    );
    let c = file.path.display();
    let loaded = knockr(file.dir.path())
        .args(["list", "-c"])
        .arg(&file.path)
        .output()
        .unwrap();
    assert_eq!(
        loaded.status.code(),
        Some(0),
        "the hostile name is a valid profile"
    );
    // `knockr h` through $KNOCKR_CONFIG, as before; `connect` through -c.
    for line in ["knockr h".to_string(), format!("knockr connect -c {c} ")] {
        let candidates = bash_candidates(file.dir.path(), Some(&file.path), &line);
        assert!(
            !candidates.contains('\u{1b}'),
            "{line}: ESC printed: {candidates:?}"
        );
        assert!(
            !candidates
                .lines()
                .any(|l| l == "fake" || l.starts_with("hid")),
            "{line}: the hostile name was offered: {candidates:?}"
        );
        assert!(
            candidates.lines().any(|l| l == "home-router"),
            "{line}: {candidates:?}"
        );
    }
}

/// Reproduced: `knockr connect -c ~/p.toml <TAB>` offered nothing (the
/// completer looked for a directory named `~`, which the shell never
/// passes when the line runs), and `-vc FILE`, `-vcFILE` or `routeros apply
/// --profiles FILE` were not read, so the names came from $KNOCKR_CONFIG's
/// file, or from none (`routeros apply -c` is knockd's configuration).
#[cfg(feature = "dynamic-completion")]
#[test]
fn regression_completion_missed_the_file_of_tilde_a_group_of_short_flags_and_apply_profiles() {
    let file = profiles("[profiles.home-router]\nhost = \"h\"\nsequence = [\"1\"]\n");
    let other = profiles("[profiles.hallway]\nhost = \"h\"\nsequence = [\"1\"]\n");
    // $HOME is the file's directory: `~/profiles.toml` is the file.
    let home = file.dir.path();
    let c = file.path.display();
    let cases = [
        (
            "knockr connect -c ~/profiles.toml h".to_string(),
            &["home-router"][..],
        ),
        (
            "knockr -c ~/profiles.toml connect h".to_string(),
            &["home-router"],
        ),
        (
            "knockr --config ~/profiles.toml h".to_string(),
            &["help", "home-router"],
        ),
        (format!("knockr -vc {c} h"), &["help", "home-router"]),
        (format!("knockr connect -4vc {c} h"), &["home-router"]),
        (format!("knockr connect -vc{c} h"), &["home-router"]),
        (format!("knockr connect -vc={c} h"), &["home-router"]),
        (
            format!("knockr routeros apply --profiles {c} h"),
            &["home-router"],
        ),
        // apply's -c is knockd's configuration: the profiles are $KNOCKR_CONFIG's.
        (format!("knockr routeros apply -c {c} h"), &["hallway"]),
        // `-pc` is `-p c`: no file named, $KNOCKR_CONFIG's.
        ("knockr connect -pc h".to_string(), &["hallway"]),
        // The shell passes `~` after `=` unexpanded: no file at `./~/profiles.toml`.
        ("knockr --config=~/profiles.toml h".to_string(), &["help"]),
    ];
    for (line, expected) in cases {
        let candidates = bash_candidates(home, Some(&other.path), &line);
        assert_eq!(offered("bash", &candidates), expected, "{line}");
    }
}

/// The dynamic completion of zsh and fish offers what bash's does: profiles
/// as the first word and after `connect`, from `-c FILE` (`~/` and groups of
/// short flags read as for bash) or $KNOCKR_CONFIG, and never a name with
/// control characters, raw or split into a fake candidate.
#[cfg(feature = "dynamic-completion")]
#[test]
fn profile_names_complete_in_zsh_and_fish_as_in_bash() {
    let file = profiles(
        "[profiles.home-router]\nhost = \"h\"\nsequence = [\"1\"]\n\
         [profiles.\"a:b\"]\nhost = \"h\"\nsequence = [\"1\"]\n\
         [profiles.\"hid\\u001b[2Jden\\nfake\"]\nhost = \"h\"\nsequence = [\"1\"]\n",
    );
    let other = profiles("[profiles.hallway]\nhost = \"h\"\nsequence = [\"1\"]\n");
    let home = file.dir.path();
    let c = file.path.display();
    for shell in ["bash", "zsh", "fish"] {
        // The hostile name starts with `h` too: it is never among them.
        let cases: [(String, &std::path::Path, &[&str]); 7] = [
            ("knockr h".into(), &file.path, &["help", "home-router"]),
            (
                format!("knockr connect -c {c} h"),
                &other.path,
                &["home-router"],
            ),
            (
                format!("knockr -c {c} connect h"),
                &other.path,
                &["home-router"],
            ),
            // zsh escapes the `:` that would start the help text.
            (format!("knockr connect -c {c} a"), &other.path, &["a:b"]),
            ("knockr connect h".into(), &other.path, &["hallway"]),
            (
                "knockr connect -c ~/profiles.toml h".into(),
                &other.path,
                &["home-router"],
            ),
            (
                format!("knockr -vc {c} h"),
                &other.path,
                &["help", "home-router"],
            ),
        ];
        for (line, env_config, expected) in cases {
            let output = completer_output(shell, home, Some(env_config), &line);
            assert!(
                !output.contains('\u{1b}'),
                "{shell}: {line}: ESC printed: {output:?}"
            );
            assert_eq!(
                offered(shell, &output),
                expected,
                "{shell}: {line}: {output:?}"
            );
        }
    }
}

#[test]
fn json_output_is_one_document_with_the_documented_keys() {
    let door = Door::new("127.0.1.62");
    let (a, check) = (door.udp(), door.tcp());
    let file = profiles(&format!(
        "[profiles.p]\nhost = \"127.0.1.62\"\nsequence = [\"{a}:udp\"]\ncheck = {check}\n"
    ));
    let output = file.run(&["--json", "p"]);
    assert_eq!(output.status.code(), Some(0));
    let report = support::json(&output);
    let keys = |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&report), ["dry_run", "ok", "targets"]);
    let target = &report["targets"][0];
    assert_eq!(
        keys(target),
        [
            "address", "check", "error", "host", "knocks", "ok", "profile", "rounds"
        ]
    );
    assert_eq!(
        keys(&target["knocks"][0]),
        ["answer", "error", "ms", "port", "proto", "sent"]
    );
    assert_eq!(
        keys(&target["check"]),
        ["attempts", "error", "ms", "open", "port"]
    );
    assert_eq!(target["profile"], "p");
    assert_eq!(target["knocks"][0]["proto"], "udp");
    assert_eq!(target["knocks"][0]["port"], a);
    assert!(
        output.stderr.is_empty(),
        "no progress when stderr is not a terminal"
    );
}

#[test]
fn closed_stdout_is_not_an_error_and_keeps_the_exit_status() {
    // The reader closes its end at once; knockr writes ~300 ms later and gets EPIPE.
    let bin = assert_cmd::cargo::cargo_bin("knockr");
    let script = format!(
        "set -o pipefail; '{}' -d 300ms -p 7000,7001 127.0.0.1 x.invalid | (exec 0<&-; sleep 1)",
        bin.display()
    );
    let output = std::process::Command::new("bash")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(1),
        "x.invalid failed, and that is still the status"
    );
    assert_eq!(stderr_of(&output), "", "no error about the pipe");
}

#[test]
fn terminal_escapes_in_host_names_never_reach_the_terminal() {
    let evil = "evil\u{1b}]0;owned\u{7}\u{1b}[2J.invalid";
    let output = knockr(tempfile::tempdir().unwrap().path())
        .args(["-v", "-p", "7000", evil])
        .output()
        .unwrap();
    // No host name holds control characters: refused, and shown escaped.
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    let text = stderr_of(&output);
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{7}'),
        "raw control characters in {text:?}"
    );
    assert!(
        text.contains("evil\\u{1b}]0;owned"),
        "the name is shown escaped: {text:?}"
    );
}

#[test]
fn routeros_rules_come_from_a_profile_and_refuse_what_the_router_cannot_do() {
    let file = profiles(
        "[profiles.home-router]\nhost = \"gw\"\nsequence = [\"7000\", \"8000:udp\", \"9000\"]\ndelay = \"3s\"\n\
         [profiles.all]\ninclude = [\"home-router\"]\n",
    );
    let output = file.run(&[
        "routeros",
        "rules",
        "home-router",
        "--protect",
        "22,8291",
        "--family",
        "ipv4",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    let script = String::from_utf8(output.stdout).unwrap();
    let rule = |comment: &str| {
        script
            .lines()
            .find(|l| l.ends_with(&format!("comment=\"knockr-home-router: {comment}\"")))
            .unwrap_or_else(|| panic!("no rule {comment:?} in {script}"))
    };
    let last = rule("knock 3/3");
    assert!(last.contains("dst-port=9000") && last.contains("address-list=knocked"));
    // The profile's 3 s delay makes the stage timeout 4 x 3 s.
    let second = rule("knock 2/3");
    assert!(second.contains("address-list-timeout=12s"), "{second}");

    let output = file.run(&[
        "routeros",
        "rules",
        "home-router",
        "--protect",
        "22",
        "--stage-timeout",
        "2s",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr_of(&output).contains("must be longer than the knock delay 3s"),
        "{}",
        stderr_of(&output)
    );
    let output = file.run(&["routeros", "rules", "all", "--protect", "22"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr_of(&output).contains("is a group"),
        "{}",
        stderr_of(&output)
    );
}

#[test]
fn color_is_for_terminals_and_no_color_turns_it_off() {
    let door = Door::new("127.0.1.63");
    let port = door.tcp().to_string();
    let home = tempfile::tempdir().unwrap();
    let run = |args: &[&str], no_color: bool| {
        let mut cmd = knockr(home.path());
        if no_color {
            cmd.env("NO_COLOR", "1");
        } else {
            cmd.env_remove("NO_COLOR");
        }
        String::from_utf8(cmd.args(args).output().unwrap().stdout).unwrap()
    };
    let red = "\u{1b}[31mFAILED\u{1b}[0m";
    assert!(run(&["--color", "always", "-p", &port, "x.invalid"], false).contains(red));
    assert!(
        run(&["--color", "always", "-p", &port, "x.invalid"], true).contains(red),
        "an explicit flag wins"
    );
    assert!(
        !run(&["-p", &port, "x.invalid"], false).contains('\u{1b}'),
        "auto: stdout is not a terminal"
    );
    assert!(!run(&["--color", "never", "-p", &port, "x.invalid"], false).contains('\u{1b}'));

    // On a real terminal (script(1) gives one), auto colours unless NO_COLOR is set.
    let bin = assert_cmd::cargo::cargo_bin("knockr");
    let on_tty = |no_color: bool| {
        let mut cmd = std::process::Command::new("script");
        cmd.args([
            "-qec",
            &format!("{} -p {port} x.invalid", bin.display()),
            "/dev/null",
        ])
        .env("HOME", home.path());
        if no_color {
            cmd.env("NO_COLOR", "1");
        } else {
            cmd.env_remove("NO_COLOR");
        }
        String::from_utf8_lossy(&cmd.output().unwrap().stdout).into_owned()
    };
    if std::process::Command::new("script")
        .arg("-V")
        .output()
        .is_ok()
    {
        assert!(on_tty(false).contains(red), "{:?}", on_tty(false));
        assert!(!on_tty(true).contains(red));
    }
}

#[test]
fn secret_new_prints_one_fresh_secret_in_two_spellings() {
    let home = tempfile::tempdir().unwrap();
    let new = || {
        let output = knockr(home.path())
            .args(["secret", "new"])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0));
        let text = String::from_utf8(output.stdout).unwrap();
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_string())
                .unwrap_or_else(|| panic!("{text}"))
        };
        (field("base32:"), field("hex:"))
    };
    let (base32, hex) = new();
    let bytes = knockr::core::otp::parse_secret(&base32).unwrap();
    assert_eq!(bytes.len(), 20);
    assert_eq!(
        knockr::core::otp::parse_secret(&format!("hex:{}", hex.trim_start_matches("hex:")))
            .unwrap(),
        bytes
    );
    assert_ne!(new().0, base32, "every secret is fresh");
}

/// The shared libraries an executable loads, as the dynamic loader lists them.
fn loads(exe: &std::path::Path) -> String {
    let out = std::process::Command::new("ldd").arg(exe).output().unwrap();
    assert!(out.status.success(), "ldd {}", exe.display());
    String::from_utf8(out.stdout).unwrap()
}

/// Before, `knockr --version` spent 83 % of its 2.3 M instructions binding
/// libpcap's dependencies (libdbus, libsystemd, libgcrypt). Now only the
/// server half links libpcap, and `knockr knockd` execs it, same pid.
#[cfg(feature = "server")]
#[test]
fn the_client_executable_does_not_load_libpcap_and_knockd_runs_the_server_half() {
    let client = assert_cmd::cargo::cargo_bin("knockr");
    let server = assert_cmd::cargo::cargo_bin("knockr-knockd");
    let (client_libs, server_libs) = (loads(&client), loads(&server));
    // Nor libgcc_s (the unwinder is linked in, build.rs) nor libm (its two
    // functions the client calls are src/main.rs's): each one is a
    // library fewer for the loader at every start.
    for lib in ["libpcap", "libgcc_s", "libm."] {
        assert!(!client_libs.contains(lib), "{lib}: {client_libs}");
    }
    assert!(server_libs.contains("libpcap"), "{server_libs}");
    // `knockr knockd` is the server half, with the same messages and statuses.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("knockd.toml");
    std::fs::write(
        &config,
        "[[door]]\nname = \"ssh\"\nsequence = [\"7000\"]\nseq_timeout = \"5s\"\n",
    )
    .unwrap();
    let out = knockr(dir.path())
        .args(["knockd", "--check", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("1 door(s)"), "{text}");
    // Run on its own it does `knockr knockd` only.
    let out = std::process::Command::new(&server)
        .args(["list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("runs `knockr knockd` only"));
}
