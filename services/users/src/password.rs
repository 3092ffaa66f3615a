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
    /// Each argon2 run holds ~19 MiB and keeps a core busy; this bounds
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
                    Argon2::default()
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

fn hash_now(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("argon2 failed: {e}"))
}
