//! Loading shared secrets and router passwords, the one place that reads them: from a file that
//! root or the reading account owns and only its owner may read or write
//! (refused otherwise, as ssh refuses private keys: someone else could read
//! or change it), or from an environment variable. Never from argv; never into messages.
//! [`Secret`] holds a loaded one where it must be kept (the server's doors):
//! its `Debug` is redacted and its equality constant time.

use crate::config::account::Account;
use crate::core::otp;
use crate::core::secret::{Secret, SecretSource};

/// A fresh random 160-bit secret (the RFC 4226 recommendation), in base32
/// and hex ([`otp::spell_secret`]); drawn from the system's random source.
pub fn new_secret() -> Result<(String, String), String> {
    let mut bytes = [0u8; 20];
    getrandom::fill(&mut bytes)
        .map_err(|err| format!("the system's random source failed: {err}"))?;
    Ok(otp::spell_secret(&bytes))
}

/// Reads and decodes the secret at `source` into a [`Secret`], for `reader`
/// (the client: the invoking user; knockd: the account it runs as).
pub fn load_secret(source: &SecretSource, reader: &Account) -> Result<Secret, String> {
    load(source, reader).map(Secret::new)
}

/// Reads and decodes the secret. Errors name the file or variable, never the secret.
pub fn load(source: &SecretSource, reader: &Account) -> Result<Vec<u8>, String> {
    let (text, what) = read(source, "secret_env", reader)?;
    // The first non-comment line is the secret.
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .unwrap_or("");
    otp::parse_secret(line).map_err(|err| format!("{what}: {err}"))
}

/// Reads a password (a router's): the file's first line as written, or the
/// variable's whole value, without a line ending. Same refusals as [`load`].
pub fn load_password(source: &SecretSource, reader: &Account) -> Result<String, String> {
    let (text, what) = read(source, "password_env", reader)?;
    let line = text.lines().next().unwrap_or("").trim_end_matches('\r');
    if line.is_empty() {
        return Err(format!(
            "{what} holds an empty password: expected the password on its first line"
        ));
    }
    Ok(line.to_string())
}

/// The text behind `source` and how to name it in messages; `key` is the
/// setting that names an environment variable; a file must be fit for
/// `reader` ([`Account::refuses_secret`]).
fn read(source: &SecretSource, key: &str, reader: &Account) -> Result<(String, String), String> {
    match source {
        SecretSource::File(path) => {
            let what = format!("the secret file {}", path.display());
            // Checked on the file opened, so a swap between check and read cannot slip by.
            let mut file =
                std::fs::File::open(path).map_err(|err| format!("cannot read {what}: {err}"))?;
            let meta = file
                .metadata()
                .map_err(|err| format!("cannot read {what}: {err}"))?;
            if let Some(refusal) = reader.refuses_secret(&meta, path, &what) {
                return Err(refusal);
            }
            let mut text = String::new();
            std::io::Read::read_to_string(&mut file, &mut text)
                .map_err(|err| format!("cannot read {what}: {err}"))?;
            Ok((text, what))
        }
        SecretSource::Env(name) => {
            let text = std::env::var(name).map_err(|_| {
                format!("the environment variable {name} named by {key} is not set (or not UTF-8)")
            })?;
            Ok((text, format!("the environment variable {name}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> Account {
        Account::current()
    }

    #[test]
    fn a_new_secret_is_random_and_its_two_spellings_are_the_same_bytes() {
        let (b32, hex) = new_secret().unwrap();
        assert_eq!(
            otp::parse_secret(&b32).unwrap(),
            otp::parse_secret(&hex).unwrap()
        );
        assert_eq!(otp::parse_secret(&b32).unwrap().len(), 20);
        assert_ne!(new_secret().unwrap(), new_secret().unwrap());
    }
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn a_private_file_is_read_and_one_others_can_read_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "# door openSSH\nGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            load(&SecretSource::File(path.clone()), &me()).unwrap(),
            b"12345678901234567890"
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = load(&SecretSource::File(path.clone()), &me()).unwrap_err();
        assert!(
            err.contains("can be read by others (mode 644): refused; run chmod 600"),
            "{err}"
        );
        assert!(
            !err.contains("GEZD"),
            "the secret never appears in messages"
        );
    }

    #[test]
    fn a_loaded_secret_is_redacted_in_debug_and_compared_by_value() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let secret = crate::config::secret::load_secret(&SecretSource::File(path), &me()).unwrap();
        assert_eq!(secret.bytes(), b"12345678901234567890");
        assert_eq!(format!("{secret:?}"), "Secret(redacted)");
        assert_eq!(secret, secret.clone());
        assert_ne!(secret, Secret::new(b"12345678901234567891".to_vec()));
        assert_ne!(secret, Secret::new(b"1234567890123456789".to_vec()));
    }

    #[test]
    fn a_password_is_the_files_first_line_and_an_empty_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("router.pass");
        std::fs::write(&path, "  pa ss#word \r\nsecond line\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let source = SecretSource::File(path.clone());
        assert_eq!(
            load_password(&source, &me()).unwrap(),
            "  pa ss#word ",
            "kept as written"
        );
        std::fs::write(&path, "\n").unwrap();
        let err = load_password(&source, &me()).unwrap_err();
        assert!(err.contains("holds an empty password"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let err = load_password(&source, &me()).unwrap_err();
        assert!(
            err.contains("can be read by others (mode 640): refused"),
            "{err}"
        );
        let err = load_password(
            &SecretSource::Env("KNOCKR_TEST_UNSET_VARIABLE".into()),
            &me(),
        )
        .unwrap_err();
        assert!(err.contains("named by password_env is not set"), "{err}");
    }

    #[test]
    fn a_bad_secret_is_reported_without_its_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "hex:0011223344\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let err = load(&SecretSource::File(path), &me()).unwrap_err();
        assert!(err.contains("expected at least 16"), "{err}");
        assert!(!err.contains("0011223344"));
    }
}
