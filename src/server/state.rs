//! What of the server must survive a crash: the open knockers (door, address,
//! when the stop is due) and the time-based replay cache, kept in the state
//! file (README, "State file"). This module is the file: its format, loading
//! it (a missing file is an empty state, a corrupt one an error, never
//! trusted), saving it (through `config::files::replace`, atomic) and the
//! lock that keeps a second knockd off it.
//!
//! It holds no commands: the file is rewritten after knockd may have dropped
//! root to `user =`, so that account can write it; a stop runs with the
//! command of the door of that name in the configuration in force. What the
//! entries mean is the engine's business (`Engine::export`, `Engine::restore`).

use std::fs;
use std::io::{self, Read as _};
use std::net::IpAddr;
use std::os::fd::AsRawFd as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The format written; a file of another version is refused, not guessed at.
const VERSION: u64 = 1;

/// Most open knockers recorded. The open set is bounded by the traffic a
/// door admits, not by the file: beyond this the rest are left out (and the
/// log says so) so the file, rewritten after each opening, stays small.
pub(crate) const MAX_OPEN: usize = 65_536;

/// Most used time-based sequences recorded; the engine's cache holds
/// clients × (2 window + 1) per door, far fewer with any sane config.
pub(crate) const MAX_USED: usize = 65_536;

/// Largest file read: both caps full, with room to spare. A larger one is
/// not ours (or is damaged) and is refused as corrupt.
const MAX_BYTES: u64 = 32 << 20;

/// What survives a crash, as the engine exports and restores it. Times are
/// wall-clock, since the Unix epoch, as the engine's clock (`server::now`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct State {
    /// Open knockers, each with its due stop.
    pub(crate) open: Vec<OpenKnocker>,
    /// Time-based sequences that opened their door, still inside its window.
    pub(crate) used: Vec<UsedSequence>,
}

/// A knocker whose door is open until its stop command runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OpenKnocker {
    /// The door's name (its place in the file may change across restarts).
    pub(crate) door: String,
    /// The knocker, as `%IP%` is filled in.
    pub(crate) src: IpAddr,
    /// When its stop command is due.
    pub(crate) due: Duration,
}

/// A time-based sequence that opened its door: refused again until `until`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UsedSequence {
    /// The door's name.
    pub(crate) door: String,
    /// The client whose sequence it was; `None` for a door's own secret.
    pub(crate) client: Option<String>,
    /// The door's step length in seconds: a step number means nothing under
    /// another one, so an entry is restored only if it still matches.
    pub(crate) step_secs: u64,
    /// The time step the sequence belongs to.
    pub(crate) step: u64,
    /// When that step leaves the window: the entry is pruned from then on.
    pub(crate) until: Duration,
}

impl State {
    /// Drops used sequences whose step left the window by `now`: a state
    /// file read after a long outage restores only what still matters.
    pub(crate) fn prune(&mut self, now: Duration) {
        self.used.retain(|u| u.until > now);
    }

    /// Keeps at most [`MAX_OPEN`] knockers (those due first) and
    /// [`MAX_USED`] used sequences (those that stay longest); how many were
    /// left out.
    pub(crate) fn bound(&mut self) -> usize {
        let before = self.open.len() + self.used.len();
        if self.open.len() > MAX_OPEN {
            self.open.sort_by_key(|o| o.due);
            self.open.truncate(MAX_OPEN);
        }
        if self.used.len() > MAX_USED {
            self.used.sort_by_key(|u| std::cmp::Reverse(u.until));
            self.used.truncate(MAX_USED);
        }
        before - self.open.len() - self.used.len()
    }
}

/// Why the state file cannot be used: each says what to do in one sentence.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StateError {
    /// Not what knockr writes, or damaged: refused, never trusted.
    #[error(
        "state file {} is corrupt ({why}): move it aside or delete it (its open knockers' stop commands will then not run)",
        path.display()
    )]
    Corrupt { path: PathBuf, why: String },
    /// Another knockd holds the lock.
    #[error(
        "state file {} is in use by another knockd (it holds the lock {}): stop it, or give this one its own state_file or --state-file",
        path.display(),
        lock.display()
    )]
    Locked { path: PathBuf, lock: PathBuf },
    /// The file, its directory or its lock cannot be read, made or written.
    #[error("state file {}: {what}: {}", path.display(), crate::core::text::describe(source))]
    Io {
        path: PathBuf,
        what: &'static str,
        source: io::Error,
    },
}

/// The file as written: versioned, one object, times in nanoseconds.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Written {
    knockr_state: u64,
    open: Vec<WrittenOpen>,
    used: Vec<WrittenUsed>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WrittenOpen {
    door: String,
    src: IpAddr,
    due_ns: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WrittenUsed {
    door: String,
    client: Option<String>,
    step_secs: u64,
    step: u64,
    until_ns: u64,
}

/// Nanoseconds since the epoch fit a u64 until the year 2554.
fn nanos(at: Duration) -> u64 {
    u64::try_from(at.as_nanos()).unwrap_or(u64::MAX)
}

/// `state` as the file holds it.
pub(crate) fn encode(state: &State) -> Vec<u8> {
    let written = Written {
        knockr_state: VERSION,
        open: state
            .open
            .iter()
            .map(|o| WrittenOpen {
                door: o.door.clone(),
                src: o.src,
                due_ns: nanos(o.due),
            })
            .collect(),
        used: state
            .used
            .iter()
            .map(|u| WrittenUsed {
                door: u.door.clone(),
                client: u.client.clone(),
                step_secs: u.step_secs,
                step: u.step,
                until_ns: nanos(u.until),
            })
            .collect(),
    };
    // Serializing plain strings, numbers and addresses cannot fail.
    let mut bytes = serde_json::to_vec_pretty(&written).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

/// The state `bytes` hold, or why they are not a state file of ours.
pub(crate) fn decode(bytes: &[u8]) -> Result<State, String> {
    let written: Written = serde_json::from_slice(bytes).map_err(|err| err.to_string())?;
    if written.knockr_state != VERSION {
        return Err(format!(
            "format version {}, this knockr reads {VERSION}",
            written.knockr_state
        ));
    }
    if written.open.len() > MAX_OPEN || written.used.len() > MAX_USED {
        return Err(format!(
            "{} open knockers and {} used sequences, more than knockr writes ({MAX_OPEN} and {MAX_USED})",
            written.open.len(),
            written.used.len()
        ));
    }
    if let Some(u) = written.used.iter().find(|u| u.step_secs == 0) {
        return Err(format!("door {:?} has a step of 0 seconds", u.door));
    }
    Ok(State {
        open: written
            .open
            .into_iter()
            .map(|o| OpenKnocker {
                door: o.door,
                src: o.src,
                due: Duration::from_nanos(o.due_ns),
            })
            .collect(),
        used: written
            .used
            .into_iter()
            .map(|u| UsedSequence {
                door: u.door,
                client: u.client,
                step_secs: u.step_secs,
                step: u.step,
                until: Duration::from_nanos(u.until_ns),
            })
            .collect(),
    })
}

/// The state file at `path`: empty if there is none yet, an error if it
/// cannot be read or is not a whole state file of this version.
pub(crate) fn load(path: &Path) -> Result<State, StateError> {
    let io = |what, source| StateError::Io {
        path: path.to_path_buf(),
        what,
        source,
    };
    // Read as root: a symlink planted at the path is not followed.
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path);
    let file = match file {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(State::default()),
        Err(err) => return Err(io("cannot open it", err)),
    };
    let mut bytes = Vec::new();
    file.take(MAX_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|err| io("cannot read it", err))?;
    let corrupt = |why| StateError::Corrupt {
        path: path.to_path_buf(),
        why,
    };
    if bytes.len() as u64 > MAX_BYTES {
        return Err(corrupt(format!("larger than {} MiB", MAX_BYTES >> 20)));
    }
    decode(&bytes).map_err(corrupt)
}

/// The state file in use: where it is, and the lock that keeps any other
/// knockd off it for as long as this one runs.
#[derive(Debug)]
pub(crate) struct Store {
    /// The state file.
    path: PathBuf,
    /// `PATH.lock`, open with an exclusive `flock`: released by the kernel
    /// when knockd exits, even by kill -9. Never replaced, unlike the state
    /// file (a lock on a file that is renamed over would lock nothing).
    _lock: fs::File,
    /// Whether the last write failed: a failure is logged once, and the
    /// recovery too, not every time.
    pub(crate) failing: bool,
}

impl Store {
    /// Takes the state file at `path`: makes its directory if missing (mode
    /// 0700, owned by `owner` so that the `user =` account can still rewrite
    /// the file after the drop) and takes its lock. As root, before the drop.
    pub(crate) fn open(
        path: &Path,
        owner: Option<(libc::uid_t, libc::gid_t)>,
    ) -> Result<Store, StateError> {
        let io = |what, source| StateError::Io {
            path: path.to_path_buf(),
            what,
            source,
        };
        let dir = crate::config::files::directory_of(path);
        match fs::DirBuilder::new().mode(0o700).create(dir) {
            Ok(()) => {
                if let Some((uid, gid)) = owner {
                    std::os::unix::fs::lchown(dir, Some(uid), Some(gid))
                        .map_err(|err| io("cannot give its new directory to the user", err))?;
                }
            }
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
            Err(err) => return Err(io("cannot make its directory", err)),
        }
        let lock_path = lock_path(path);
        let lock = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&lock_path)
            .map_err(|err| io("cannot open its lock file", err))?;
        if let Err(err) = lock_within(&lock, LOCK_WAIT) {
            if err.kind() == io::ErrorKind::WouldBlock {
                return Err(StateError::Locked {
                    path: path.to_path_buf(),
                    lock: lock_path,
                });
            }
            return Err(io("cannot lock it", err));
        }
        remove_stale_temporaries(path);
        Ok(Store {
            path: path.to_path_buf(),
            _lock: lock,
            failing: false,
        })
    }

    /// The state file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Replaces the file with `state` (mode 0600), atomically: a crash
    /// leaves the old state or the new one.
    pub(crate) fn save(&self, state: &State) -> io::Result<()> {
        crate::config::files::replace(&self.path, &encode(state), 0o600)
    }
}

/// Removes the temporaries a knockd killed in the middle of a write left
/// next to `path` (`.NAME.RANDOM.knockr-tmp`, see `config::files`): with the
/// lock held no other knockd is writing one. Best effort: one that stays is
/// only a small file.
fn remove_stale_temporaries(path: &Path) {
    let Some(name) = path.file_name() else { return };
    let prefix = format!(".{}.", name.to_string_lossy());
    let dir = crate::config::files::directory_of(path);
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name();
        let file = file.to_string_lossy();
        if file.starts_with(&prefix) && file.ends_with(".knockr-tmp") {
            // remove_file unlinks a symlink itself, never what it points to.
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// How long a start waits for the lock before it says another knockd has
/// it. A knockd killed a moment ago may still share its lock through a
/// command it was starting: the child holds a copy of every descriptor
/// between its fork and its exec (where close-on-exec drops it), and on a
/// loaded machine that lasts a while. A live knockd holds it for good.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Takes the exclusive lock on `lock`, trying again for up to `wait`
/// while another holds it; the error when it was not taken (WouldBlock:
/// still held).
fn lock_within(lock: &fs::File, wait: std::time::Duration) -> io::Result<()> {
    let until = std::time::Instant::now() + wait;
    loop {
        // SAFETY: flock on a descriptor we own; no memory is involved.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::WouldBlock || std::time::Instant::now() >= until {
            return Err(err);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The lock file next to the state file `path`.
fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn sample() -> State {
        State {
            open: vec![
                OpenKnocker {
                    door: "ssh \"main\"".into(),
                    src: "198.51.100.7".parse().unwrap(),
                    due: Duration::new(1_795_000_030, 123_456_789),
                },
                OpenKnocker {
                    door: "ssh".into(),
                    src: "2001:db8::7".parse().unwrap(),
                    due: secs(1_795_000_040),
                },
            ],
            used: vec![
                UsedSequence {
                    door: "team".into(),
                    client: Some("alice".into()),
                    step_secs: 30,
                    step: 59_833_334,
                    until: secs(59_833_336 * 30),
                },
                UsedSequence {
                    door: "solo".into(),
                    client: None,
                    step_secs: 60,
                    step: 29_916_667,
                    until: secs(29_916_669 * 60),
                },
            ],
        }
    }

    #[test]
    fn a_state_round_trips_through_its_file_to_the_nanosecond() {
        let state = sample();
        assert_eq!(decode(&encode(&state)).unwrap(), state);
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("knockd.state"), None).unwrap();
        store.save(&state).unwrap();
        assert_eq!(load(store.path()).unwrap(), state);
        use std::os::unix::fs::PermissionsExt as _;
        let mode = fs::metadata(store.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_missing_file_is_an_empty_state_and_its_directory_is_made_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("knockr").join("knockd.state");
        assert_eq!(load(&path).unwrap(), State::default());
        let store = Store::open(&path, None).unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        let mode = fs::metadata(dir.path().join("knockr"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        assert_eq!(load(store.path()).unwrap(), State::default());
    }

    #[test]
    fn a_corrupt_file_is_refused_saying_what_is_wrong_and_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("knockd.state");
        let full = encode(&sample());
        let cases: [(&[u8], &str); 4] = [
            (&full[..full.len() / 2], "EOF while parsing"),
            (b"{\"knockr_state\": 2, \"open\": [], \"used\": []}", "format version 2"),
            (
                b"{\"knockr_state\": 1, \"open\": [{\"door\": \"d\", \"src\": \"300.1.1.1\", \"due_ns\": 1}], \"used\": []}",
                "invalid IP address",
            ),
            (b"", "EOF while parsing"),
        ];
        for (bytes, why) in cases {
            fs::write(&path, bytes).unwrap();
            let err = load(&path).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("state file {} is corrupt (", path.display())),
                "{err}"
            );
            assert!(err.contains(why), "{err}");
            assert!(err.contains("move it aside or delete it"), "{err}");
        }
    }

    #[test]
    fn pruning_drops_the_used_sequences_whose_step_left_the_window() {
        let mut state = sample();
        state.prune(secs(59_833_336 * 30) - Duration::from_nanos(1));
        assert_eq!(state.used.len(), 2);
        state.prune(secs(59_833_336 * 30));
        assert_eq!(state.used.len(), 1);
        assert_eq!(state.used[0].door, "solo");
        assert_eq!(
            state.open.len(),
            2,
            "open knockers are never pruned: their stops run"
        );
    }

    #[test]
    fn the_file_is_bounded_keeping_the_first_due_knockers() {
        let mut state = State::default();
        for i in 0..MAX_OPEN as u64 + 3 {
            state.open.push(OpenKnocker {
                door: "d".into(),
                src: "10.0.0.1".parse().unwrap(),
                // The latest first: what is kept is chosen by due time.
                due: secs(2_000_000_000 - i),
            });
        }
        assert_eq!(state.bound(), 3);
        assert_eq!(state.open.len(), MAX_OPEN);
        assert!(state.open.iter().all(|o| o.due <= secs(2_000_000_000 - 3)));
        assert!(encode(&state).len() as u64 <= MAX_BYTES);
        // One more than written is refused on load: not a file of ours.
        let mut over = state.clone();
        over.open.push(over.open[0].clone());
        let err = decode(&encode(&over)).unwrap_err();
        assert!(err.contains("more than knockr writes"), "{err}");
    }

    #[test]
    fn temporaries_left_by_a_write_killed_midway_are_removed_when_the_file_is_taken() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("knockd.state");
        let stale = dir.path().join(".knockd.state.0123456789abcdef.knockr-tmp");
        let other = dir.path().join(".other.0123456789abcdef.knockr-tmp");
        fs::write(&stale, "{\"knockr_state\"").unwrap();
        fs::write(&other, "not ours").unwrap();
        let _store = Store::open(&path, None).unwrap();
        assert!(!stale.exists());
        assert!(other.exists(), "another file's temporary is left alone");
    }

    #[test]
    fn a_second_store_on_the_same_file_is_refused_while_the_first_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("knockd.state");
        let first = Store::open(&path, None).unwrap();
        let err = Store::open(&path, None).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!(
                "state file {} is in use by another knockd",
                path.display()
            )),
            "{err}"
        );
        drop(first);
        assert!(
            Store::open(&path, None).is_ok(),
            "the lock goes with its holder"
        );
    }
}
