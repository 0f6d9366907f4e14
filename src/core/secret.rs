//! Secrets as values: where one is kept ([`SecretSource`]) and a loaded one
//! ([`Secret`]), whose `Debug` is redacted and whose equality is constant
//! time. Loading them from files or the environment is `config::secret`'s job.

use std::path::PathBuf;

/// Where a secret is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    File(PathBuf),
    Env(String),
}

/// A loaded secret. `Debug` prints no byte of it, so a logged or snapshotted
/// configuration gives nothing away; `==` takes the same time wherever the
/// bytes differ.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// A secret already decoded (tests, and secrets from elsewhere than a file).
    pub fn new(bytes: Vec<u8>) -> Secret {
        Secret(bytes)
    }

    /// The bytes, for the derivation only.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(redacted)")
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Secret) -> bool {
        use subtle::ConstantTimeEq as _;
        // Lengths are not secret (every secret is at least 16 bytes); the bytes are.
        self.0.len() == other.0.len() && bool::from(self.0.ct_eq(&other.0))
    }
}

impl Eq for Secret {}
