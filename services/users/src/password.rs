//! Password hashing with argon2id, off the async threads.
//!
//! Verifying a login for an unknown e-mail runs the same argon2 work against
//! a dummy hash, so the answer's timing does not tell which e-mails have
//! accounts.

use std::sync::Arc;

use anyhow::Context;
use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use tokio::sync::Semaphore;

#[derive(Clone)]
pub(crate) struct Passwords {
    /// Each argon2 run holds its memory cost and keeps a core busy; this bounds
    /// how many run at once to the cores there are: more would add memory,
    /// not throughput (measured in docs/PERFORMANCE.md).
    permits: Arc<Semaphore>,
    dummy: Arc<str>,
}

impl Passwords {
    pub(crate) fn new() -> Self {
        let parallel = std::thread::available_parallelism().map_or(2, |n| n.get());
        let dummy = hash_now("feastfast-dummy-password")
            .expect("hashing a constant with default parameters succeeds");
        Self {
            permits: Arc::new(Semaphore::new(parallel)),
            dummy: dummy.into(),
        }
    }

    pub(crate) async fn hash(&self, password: String) -> anyhow::Result<String> {
        let _permit = self.permits.acquire().await.context("hasher closed")?;
        tokio::task::spawn_blocking(move || hash_now(&password))
            .await
            .context("the hashing task failed")?
    }

    /// Whether `password` matches `stored`; with no stored hash, does the
    /// same work and answers false.
    pub(crate) async fn verify(
        &self,
        password: String,
        stored: Option<String>,
    ) -> anyhow::Result<bool> {
        let _permit = self.permits.acquire().await.context("hasher closed")?;
        let known = stored.is_some();
        let hash = stored.unwrap_or_else(|| self.dummy.to_string());
        let matches = tokio::task::spawn_blocking(move || {
            PasswordHash::new(&hash)
                .map(|parsed| {
                    // The stored hash names its own parameters.
                    hasher()
                        .verify_password(password.as_bytes(), &parsed)
                        .is_ok()
                })
                .unwrap_or(false)
        })
        .await
        .context("the verifying task failed")?;
        Ok(known && matches)
    }
}

/// argon2id at 9 MiB and 4 passes: one of OWASP's equivalent minimum
/// configurations (the crate's default is 19 MiB and 2 passes; the work is
/// the same). A run's memory is what a login storm multiplies, and with one
/// run per core on a 2-core machine the smaller block keeps users within
/// its 40 MB budget under load. Hashes made with other parameters (earlier
/// builds) still verify: a stored hash carries its own.
fn hasher() -> Argon2<'static> {
    const MEMORY_KIB: u32 = 9 * 1024;
    const PASSES: u32 = 4;
    let params = argon2::Params::new(MEMORY_KIB, PASSES, 1, None)
        .expect("constant argon2 parameters are valid");
    Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
}

fn hash_now(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("argon2 failed: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn new_hashes_use_the_small_block_and_old_ones_still_verify() {
        let passwords = Passwords::new();
        let new = passwords
            .hash("correct horse".to_owned())
            .await
            .expect("hashes");
        assert!(new.starts_with("$argon2id$v=19$m=9216,t=4,p=1$"), "{new}");
        // A hash an earlier build stored (the crate's default parameters).
        let salt = SaltString::generate(&mut OsRng);
        let old = Argon2::default()
            .hash_password(b"correct horse", &salt)
            .expect("hashes")
            .to_string();
        assert!(old.contains("m=19456,t=2"), "{old}");

        for stored in [new, old] {
            for (password, matches) in [("correct horse", true), ("wrong horse", false)] {
                let verified = passwords
                    .verify(password.to_owned(), Some(stored.clone()))
                    .await
                    .expect("verifies");
                assert_eq!(verified, matches, "{password} against {stored}");
            }
        }
    }
}
