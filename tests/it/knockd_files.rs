//! The files `knockr knockd` trusts: one-time files it must be able to mark
//! (it fails closed when it cannot), paths it writes as root without
//! following links, and secret and password files held as ssh holds keys.
//! `--check` must refuse what a start refuses, with the same words.
//! Live parts run as root in network namespaces the tests make (see
//! `support::netns`); under CI=true they must run.
#![cfg(feature = "server")]

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::netns::{Net, can_run};
use crate::support::{PATIENCE, frame, knockr, pcap_file};

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

fn chown(path: &Path, (uid, gid): (u32, u32)) {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
}

/// `knockr knockd --check -c CONFIG`: (exit status, stdout, stderr).
fn check(config: &Path) -> (Option<i32>, String, String) {
    let output = knockr(config.parent().unwrap())
        .args(["knockd", "--check", "-c"])
        .arg(config)
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

/// A live start of `knockr knockd -i lo -c CONFIG` that must be refused
/// before it captures anything: its exit status and stderr. Killed (and the
/// test failed) if it is still running after `PATIENCE`.
fn refused_start(config: &Path) -> (Option<i32>, String) {
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("knockr"))
        .args(["knockd", "-i", "lo", "-c"])
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + PATIENCE;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            let output = child.wait_with_output().unwrap();
            panic!(
                "knockd started instead of refusing: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    (
        output.status.code(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

/// A one-time door on UDP knocks recording its start and stop in `record`.
fn one_time_door(seq: &Path, record: &Path) -> String {
    format!(
        "[[door]]\nname = \"once\"\none_time_sequences = \"{}\"\n\
         start = [\"/bin/sh\", \"-c\", \"echo start %IP% >> {1}\"]\n\
         stop = [\"/bin/sh\", \"-c\", \"echo stop %IP% >> {1}\"]\ncmd_timeout = \"60s\"\n",
        seq.display(),
        record.display()
    )
}

#[test]
fn a_one_time_file_the_user_cannot_rewrite_is_refused_by_check_and_by_a_start() {
    if !can_run() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Anyone may read the file, but only root may write its directory.
    chmod(dir.path(), 0o755);
    let seq = dir.path().join("seq");
    std::fs::write(&seq, " 7000:udp,8000:udp\n").unwrap();
    chmod(&seq, 0o644);
    let config = dir.path().join("knockd.toml");
    let text = format!(
        "[knockd]\nuser = \"nobody\"\n{}",
        one_time_door(&seq, &dir.path().join("ran"))
    );
    std::fs::write(&config, text).unwrap();

    let expected = format!(
        "door `once`: its one-time sequences {} cannot be rewritten by nobody: nobody cannot \
         write its directory {}",
        seq.display(),
        dir.path().display()
    );
    let (status, stdout, stderr) = check(&config);
    assert_eq!(status, Some(2), "--check: {stdout}{stderr}");
    assert!(stderr.contains(&expected), "--check said: {stderr}");
    let (status, started) = refused_start(&config);
    assert_eq!(status, Some(2), "{started}");
    assert!(started.contains(&expected), "the start said: {started}");
    assert_eq!(
        std::fs::read_to_string(&seq).unwrap(),
        " 7000:udp,8000:udp\n"
    );

    // The directory given to nobody: both accept it.
    chown(dir.path(), nobody());
    let (status, stdout, stderr) = check(&config);
    assert_eq!(status, Some(0), "{stdout}{stderr}");
}

#[test]
fn a_line_that_cannot_be_marked_opens_nothing_and_disables_the_door() {
    if !can_run() {
        return;
    }
    let net = Net::new();
    // The config and the commands' record, where nobody may write.
    let home = tempfile::tempdir().unwrap();
    chmod(home.path(), 0o1777);
    let ran = home.path().join("ran");
    // The one-time file, in a directory nobody owns at first.
    let spool = tempfile::tempdir().unwrap();
    chmod(spool.path(), 0o755);
    chown(spool.path(), nobody());
    let seq = spool.path().join("seq");
    std::fs::write(&seq, " 7000:udp,8000:udp\n 7100:udp,8100:udp\n").unwrap();
    chmod(&seq, 0o644);
    chown(&seq, nobody());
    let config = home.path().join("knockd.toml");
    // A fixed door too: once its start is logged, every knock sent before
    // it has been matched.
    let text = format!(
        "[knockd]\nuser = \"nobody\"\n{}\n[[door]]\nname = \"marker\"\n\
         sequence = [\"7500:udp\"]\nstart = [\"/bin/true\"]\n",
        one_time_door(&seq, &ran)
    );
    std::fs::write(&config, text).unwrap();
    chmod(&config, 0o644);
    let mut server = net.server(&config);
    server.expect("now running as nobody");

    // Now nobody can no longer replace the file.
    chown(spool.path(), (0, 0));
    let knock = |ports: &str| {
        assert_eq!(net.knock(&["-d", "50ms", "-p", ports, &net.v4(1)]), Some(0));
    };
    knock("7000:udp,8000:udp");
    server.expect(&format!(
        "once: cannot mark the used one-time sequence in {}",
        seq.display()
    ));
    server.expect("the door does not open and is disabled");
    // The same line again finds the door disabled: not even an attempt.
    knock("7000:udp,8000:udp");
    knock("7500:udp");
    server.expect("marker: running start command");
    // A reload finds the file still unwritable and keeps the door disabled.
    unsafe { libc::kill(server.child.id() as i32, libc::SIGHUP) };
    server.expect("refused, the old configuration keeps running");
    server.expect("cannot be rewritten by nobody");

    let (status, log) = server.terminate();
    assert_eq!(status, Some(0), "{}", log.join("\n"));
    let log = log.join("\n");
    assert_eq!(
        log.matches("cannot mark the used one-time sequence")
            .count(),
        1,
        "{log}"
    );
    assert!(!log.contains("once: running start command"), "{log}");
    // Never opened, so nothing to close: no stop is pending at the end.
    assert!(
        log.contains("stopping: running 0 pending stop command(s)"),
        "{log}"
    );
    assert!(!ran.exists(), "no command ran: {:?}", std::fs::read(&ran));
    assert_eq!(
        std::fs::read_to_string(&seq).unwrap(),
        " 7000:udp,8000:udp\n 7100:udp,8100:udp\n"
    );
}

/// A victim file the tests must leave as it was.
struct Victim {
    path: PathBuf,
}

impl Victim {
    const TEXT: &str = "precious\n";

    fn new(dir: &Path) -> Victim {
        let path = dir.join("victim");
        std::fs::write(&path, Victim::TEXT).unwrap();
        chmod(&path, 0o600);
        Victim { path }
    }

    fn assert_untouched(&self) {
        assert_eq!(std::fs::read_to_string(&self.path).unwrap(), Victim::TEXT);
        let meta = std::fs::symlink_metadata(&self.path).unwrap();
        assert!(meta.is_file());
        assert_eq!(meta.mode() & 0o7777, 0o600);
    }
}

#[test]
fn a_replay_marks_its_line_without_following_a_symlink_at_the_old_temporary_name() {
    let dir = tempfile::tempdir().unwrap();
    let victim = Victim::new(dir.path());
    let seq = dir.path().join("seq");
    std::fs::write(&seq, " 7000,8000\n 7100,8100\n").unwrap();
    chmod(&seq, 0o644);
    std::os::unix::fs::symlink(&victim.path, dir.path().join(".seq.knockr-tmp")).unwrap();
    let config = dir.path().join("knockd.toml");
    std::fs::write(&config, one_time_door(&seq, &dir.path().join("ran"))).unwrap();
    let capture = dir.path().join("knocks.pcap");
    let src = "198.51.100.7";
    pcap_file(
        &capture,
        &[
            (0, frame(src, "192.0.2.1", "7000")),
            (100, frame(src, "192.0.2.1", "8000")),
        ],
    );
    let output = knockr(dir.path())
        .args(["knockd", "-c"])
        .arg(&config)
        .arg("--read")
        .arg(&capture)
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(&seq).unwrap(),
        "#7000,8000\n 7100,8100\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("ran")).unwrap(),
        format!("start {src}\nstop {src}\n")
    );
    victim.assert_untouched();
    assert_eq!(chmod_of(&seq), 0o644, "the file keeps its own mode");
}

fn chmod_of(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().mode() & 0o7777
}

#[test]
fn a_pid_file_path_that_is_a_symlink_is_replaced_not_written_through() {
    if !can_run() {
        return;
    }
    let net = Net::new();
    let dir = tempfile::tempdir().unwrap();
    let victim = Victim::new(dir.path());
    let pid_file = dir.path().join("knockd.pid");
    std::os::unix::fs::symlink(&victim.path, &pid_file).unwrap();
    let config = dir.path().join("knockd.toml");
    let text = format!(
        "[knockd]\npid_file = \"{}\"\n[[door]]\nname = \"d\"\nsequence = [\"7000:udp\"]\n\
         start = [\"/bin/true\"]\n",
        pid_file.display()
    );
    std::fs::write(&config, text).unwrap();
    let server = net.server(&config);
    victim.assert_untouched();
    let meta = std::fs::symlink_metadata(&pid_file).unwrap();
    assert!(!meta.is_symlink(), "the link itself was replaced");
    assert_eq!(
        std::fs::read_to_string(&pid_file).unwrap().trim(),
        server.child.id().to_string()
    );
    let (status, log) = server.terminate();
    assert_eq!(status, Some(0), "{}", log.join("\n"));
    victim.assert_untouched();
}

/// A RouterOS door whose password is in `pass`.
fn router_door(pass: &Path) -> String {
    format!(
        "[[door]]\nname = \"winbox\"\nsequence = [\"7000:udp\", \"8000:udp\"]\n\
         [door.routeros]\nurl = \"https://127.0.0.1:1\"\nuser = \"knockr\"\n\
         password_file = \"{}\"\nlist = \"knocked\"\n",
        pass.display()
    )
}

#[test]
fn a_password_file_others_can_read_is_refused_by_check_and_by_a_start_alike() {
    let dir = tempfile::tempdir().unwrap();
    let pass = dir.path().join("router.pass");
    std::fs::write(&pass, "hunter2-secret\n").unwrap();
    chmod(&pass, 0o644);
    let config = dir.path().join("knockd.toml");
    std::fs::write(&config, router_door(&pass)).unwrap();
    let expected = format!(
        "router https://127.0.0.1:1: the secret file {0} can be read by others \
         (mode 644): refused; run chmod 600 {0}",
        pass.display()
    );
    let (status, stdout, stderr) = check(&config);
    assert_eq!(status, Some(2), "--check: {stdout}{stderr}");
    assert!(stderr.contains(&expected), "--check said: {stderr}");
    let (status, started) = refused_start(&config);
    assert_eq!(status, Some(2), "{started}");
    assert!(started.contains(&expected), "the start said: {started}");
    for said in [stdout, stderr, started] {
        assert!(
            !said.contains("hunter2"),
            "the password never shows: {said}"
        );
    }
    chmod(&pass, 0o600);
    let (status, stdout, stderr) = check(&config);
    assert_eq!(status, Some(0), "{stdout}{stderr}");
}

#[test]
fn secret_and_password_files_of_another_owner_are_refused_unless_knockd_runs_as_it() {
    if !can_run() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    chmod(dir.path(), 0o755);
    let pass = dir.path().join("router.pass");
    std::fs::write(&pass, "hunter2-secret\n").unwrap();
    chmod(&pass, 0o600);
    chown(&pass, nobody());
    let config = dir.path().join("knockd.toml");
    std::fs::write(&config, router_door(&pass)).unwrap();
    let expected = format!(
        "the secret file {0} is owned by nobody, not by root, so nobody could change it: \
         refused; run chown root {0}",
        pass.display()
    );
    let (status, stdout, stderr) = check(&config);
    assert_eq!(status, Some(2), "--check: {stdout}{stderr}");
    assert!(stderr.contains(&expected), "--check said: {stderr}");
    let (status, started) = refused_start(&config);
    assert_eq!(status, Some(2), "{started}");
    assert!(started.contains(&expected), "the start said: {started}");

    // A time-based door's secret, owned by nobody: refused at its line...
    let secret = dir.path().join("door.secret");
    std::fs::write(&secret, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\n").unwrap();
    chmod(&secret, 0o600);
    chown(&secret, nobody());
    let door = format!(
        "[[door]]\nname = \"otp\"\nsecret_file = \"{}\"\nstart = [\"/bin/true\"]\n",
        secret.display()
    );
    std::fs::write(&config, &door).unwrap();
    let (status, _, stderr) = check(&config);
    assert_eq!(status, Some(2), "{stderr}");
    assert!(stderr.contains("knockd.toml:3:"), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "door `otp`: the secret file {} is owned by nobody, not by root",
            secret.display()
        )),
        "{stderr}"
    );
    // ...and taken when knockd runs as nobody, as are the password's.
    std::fs::write(
        &config,
        format!("[knockd]\nuser = \"nobody\"\n{door}{}", router_door(&pass)),
    )
    .unwrap();
    let (status, stdout, stderr) = check(&config);
    assert_eq!(status, Some(0), "{stdout}{stderr}");
}

#[test]
fn the_client_refuses_a_secret_file_owned_by_someone_else() {
    if !can_run() {
        return;
    }
    let file = crate::support::profiles(
        "[profiles.otp]\nhost = \"127.0.1.96\"\nsecret_file = \"SECRET\"\notp_door = \"openSSH\"\n",
    );
    let secret = file.dir.path().join("secret");
    std::fs::write(&secret, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\n").unwrap();
    chmod(&secret, 0o600);
    let text = std::fs::read_to_string(&file.path)
        .unwrap()
        .replace("SECRET", &secret.display().to_string());
    std::fs::write(&file.path, text).unwrap();
    // Private, but nobody's: nobody could have changed it.
    chown(&secret, nobody());
    let output = file.run(&["--dry-run", "otp"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "the secret file {0} is owned by nobody, not by root, so nobody could change it: \
             refused; run chown root {0}",
            secret.display()
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("GEZD"), "{stderr}");
    chown(&secret, (0, 0));
    let output = file.run(&["--dry-run", "otp"]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
