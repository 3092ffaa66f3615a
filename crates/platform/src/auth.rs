//! Authentication: EdDSA-signed JWTs, issued by the users service and
//! verified by every service itself.
//!
//! [`SigningKey`] signs (the users service, and tests). [`Verifier`] checks a
//! token against public keys it fetched from the users service's JWKS and
//! caches; an unknown key id triggers one refresh (rate-limited), so a key
//! rotation needs no restart and an outage of users does not stop tokens
//! already issued from working.
//!
//! Architecture invariant: no service trusts an identity it did not verify.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::extract::FromRequestParts;
use axum::http::{header, request::Parts};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use contracts::UserId;
use contracts::identity::Role;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, Jwk, KeyAlgorithm,
    OctetKeyPairParameters, OctetKeyPairType, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

pub use jsonwebtoken::jwk::JwkSet;

use crate::client::HttpClient;
use crate::error::ApiError;

/// Who issues tokens.
pub const ISSUER: &str = "feastfast-users";
/// Who tokens are for.
pub const AUDIENCE: &str = "feastfast";

/// What a token says.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: Role,
    pub iss: String,
    pub aud: String,
    pub iat: u64,
    pub exp: u64,
    /// For a service token: the calling service's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub svc: Option<String>,
}

/// A verified caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    pub user_id: UserId,
    pub role: Role,
}

impl Identity {
    /// 403 unless the caller has `role`.
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.role == role {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "this needs the {role} role; you are a {}",
                self.role
            )))
        }
    }
}

/// An Ed25519 signing key with its key id.
#[derive(Clone)]
pub struct SigningKey {
    kid: String,
    pkcs8: Vec<u8>,
    encoding: EncodingKey,
    public: [u8; 32],
}

impl SigningKey {
    /// A new random key.
    pub fn generate() -> Self {
        let seed: [u8; 32] = rand::random();
        let kid = uuid::Uuid::now_v7().simple().to_string();
        Self::from_seed(kid, seed)
    }

    fn from_seed(kid: String, seed: [u8; 32]) -> Self {
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        let pkcs8 = key
            .to_pkcs8_der()
            .expect("an Ed25519 key always encodes as PKCS#8")
            .as_bytes()
            .to_vec();
        Self {
            encoding: EncodingKey::from_ed_der(&pkcs8),
            public: key.verifying_key().to_bytes(),
            kid,
            pkcs8,
        }
    }

    /// A key stored earlier with [`SigningKey::pkcs8`].
    pub fn from_pkcs8(kid: String, pkcs8: &[u8]) -> anyhow::Result<Self> {
        use ed25519_dalek::pkcs8::DecodePrivateKey;
        let key = ed25519_dalek::SigningKey::from_pkcs8_der(pkcs8)
            .map_err(|e| anyhow::anyhow!("stored signing key {kid} is not PKCS#8 Ed25519: {e}"))?;
        Ok(Self::from_seed(kid, key.to_bytes()))
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The private key, PKCS#8 DER, for storage.
    pub fn pkcs8(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The public half as a JWK.
    pub fn jwk(&self) -> Jwk {
        Jwk {
            common: CommonParameters {
                public_key_use: Some(PublicKeyUse::Signature),
                key_algorithm: Some(KeyAlgorithm::EdDSA),
                key_id: Some(self.kid.clone()),
                ..Default::default()
            },
            algorithm: AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
                key_type: OctetKeyPairType::OctetKeyPair,
                curve: EllipticCurve::Ed25519,
                x: URL_SAFE_NO_PAD.encode(self.public),
            }),
        }
    }

    /// A token for `user_id` with `role`, valid for `ttl`.
    pub fn issue(&self, user_id: UserId, role: Role, ttl: Duration) -> anyhow::Result<String> {
        self.sign(user_id, role, None, ttl)
    }

    /// A service token for the service `name`, valid for `ttl`.
    pub fn issue_service(&self, name: &str, ttl: Duration) -> anyhow::Result<String> {
        self.sign(UserId::new(), Role::Service, Some(name.to_owned()), ttl)
    }

    fn sign(
        &self,
        user_id: UserId,
        role: Role,
        svc: Option<String>,
        ttl: Duration,
    ) -> anyhow::Result<String> {
        let now = unix_now();
        let claims = Claims {
            sub: user_id.to_string(),
            role,
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            iat: now,
            exp: now + ttl.as_secs(),
            svc,
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.encoding).context("cannot sign a token")
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// Why a token was refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token")]
    Missing,
    #[error("invalid token: {0}")]
    Invalid(String),
    #[error("the signing keys are unavailable: {0}")]
    KeysUnavailable(String),
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::KeysUnavailable(detail) => {
                ApiError::unavailable("users", format!("cannot verify tokens right now: {detail}"))
            }
            other => ApiError::unauthorized(other.to_string()),
        }
    }
}

/// Checks tokens; cheap to clone.
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

struct Inner {
    keys: RwLock<HashMap<String, DecodingKey>>,
    remote: Option<Remote>,
    validation: Validation,
    verified: Verified,
}

/// Tokens this verifier checked lately, with their claims. A token is
/// signed once and presented many times (a service's token on every call
/// it makes, a customer's on every page), and checking an EdDSA signature
/// costs tens of microseconds: with several calls per order it was the
/// largest single cost of a call in the profile (docs/PERFORMANCE.md).
/// A remembered token is taken only while it has not expired (without the
/// leeway a fresh check allows), and only byte for byte: any other string,
/// a tampered one included, is checked in full. Tokens are never revoked
/// (they are short-lived), so nothing else can make a checked token bad.
struct Verified {
    tokens: Mutex<HashMap<Box<str>, Claims>>,
}

/// The most tokens remembered; a full cache starts over (a few hundred
/// bytes each, so at most about half a megabyte).
const VERIFIED_CAPACITY: usize = 1024;

impl Verified {
    fn new() -> Self {
        Self {
            tokens: Mutex::new(HashMap::new()),
        }
    }

    /// The claims of `token`, if it was verified and is still valid at `now`
    /// (Unix seconds).
    fn get(&self, token: &str, now: u64) -> Option<Claims> {
        let tokens = self
            .tokens
            .lock()
            .expect("the verified tokens lock is never poisoned");
        tokens.get(token).filter(|claims| claims.exp > now).cloned()
    }

    fn remember(&self, token: &str, claims: &Claims) {
        let mut tokens = self
            .tokens
            .lock()
            .expect("the verified tokens lock is never poisoned");
        if tokens.len() >= VERIFIED_CAPACITY {
            tokens.clear();
        }
        tokens.insert(token.into(), claims.clone());
    }
}

struct Remote {
    client: HttpClient,
    jwks_url: String,
    /// Serialises refreshes and remembers the last one, so a flood of
    /// tokens with unknown key ids costs one fetch per interval.
    last_refresh: tokio::sync::Mutex<Option<Instant>>,
}

const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(2);

impl Verifier {
    /// Verifies with keys fetched from `jwks_url` (the users service).
    pub fn remote(client: HttpClient, jwks_url: String) -> Self {
        Self::build(
            HashMap::new(),
            Some(Remote {
                client,
                jwks_url,
                last_refresh: tokio::sync::Mutex::new(None),
            }),
        )
    }

    /// Verifies with a fixed set of keys (the users service itself, tests).
    pub fn with_keys(keys: &JwkSet) -> anyhow::Result<Self> {
        Ok(Self::build(decoding_keys(keys)?, None))
    }

    fn build(keys: HashMap<String, DecodingKey>, remote: Option<Remote>) -> Self {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.leeway = 5;
        Self {
            inner: Arc::new(Inner {
                keys: RwLock::new(keys),
                remote,
                validation,
                verified: Verified::new(),
            }),
        }
    }

    /// Adds keys (the users service, after generating one).
    pub fn add_keys(&self, keys: &JwkSet) -> anyhow::Result<()> {
        let new = decoding_keys(keys)?;
        self.inner
            .keys
            .write()
            .expect("the key cache lock is never poisoned")
            .extend(new);
        Ok(())
    }

    /// The identity a bearer token proves.
    pub async fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        let claims = self.verify_claims(token).await?;
        let user_id = UserId::parse(&claims.sub)
            .map_err(|_| AuthError::Invalid("malformed subject".to_owned()))?;
        Ok(Identity {
            user_id,
            role: claims.role,
        })
    }

    /// Everything a valid bearer token says.
    pub async fn verify_claims(&self, token: &str) -> Result<Claims, AuthError> {
        if let Some(claims) = self.inner.verified.get(token, unix_now()) {
            return Ok(claims);
        }
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| AuthError::Invalid(e.to_string()))?;
        if header.alg != Algorithm::EdDSA {
            return Err(AuthError::Invalid("unexpected algorithm".to_owned()));
        }
        let kid = header
            .kid
            .ok_or_else(|| AuthError::Invalid("no key id".to_owned()))?;
        let key = match self.cached(&kid) {
            Some(key) => key,
            None => {
                self.refresh().await?;
                self.cached(&kid)
                    .ok_or_else(|| AuthError::Invalid("unknown signing key".to_owned()))?
            }
        };
        let claims = jsonwebtoken::decode::<Claims>(token, &key, &self.inner.validation)
            .map(|data| data.claims)
            .map_err(|e| AuthError::Invalid(e.to_string()))?;
        self.inner.verified.remember(token, &claims);
        Ok(claims)
    }

    fn cached(&self, kid: &str) -> Option<DecodingKey> {
        self.inner
            .keys
            .read()
            .expect("the key cache lock is never poisoned")
            .get(kid)
            .cloned()
    }

    async fn refresh(&self) -> Result<(), AuthError> {
        let Some(remote) = &self.inner.remote else {
            return Ok(());
        };
        let mut last = remote.last_refresh.lock().await;
        if last.is_some_and(|at| at.elapsed() < MIN_REFRESH_INTERVAL) {
            return Ok(());
        }
        let fetched: Result<JwkSet, String> = async {
            let response = remote
                .client
                .get(&remote.jwks_url)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            if !response.status().is_success() {
                return Err(format!("JWKS answered {}", response.status()));
            }
            response.json::<JwkSet>().await.map_err(|e| e.to_string())
        }
        .await;
        *last = Some(Instant::now());
        let set = fetched.map_err(AuthError::KeysUnavailable)?;
        self.add_keys(&set)
            .map_err(|e| AuthError::KeysUnavailable(e.to_string()))
    }

    /// The identity in a request's `Authorization: Bearer` header.
    pub async fn verify_header(&self, parts: &Parts) -> Result<Identity, AuthError> {
        let token = bearer_token(parts).ok_or(AuthError::Missing)?;
        self.verify(token).await
    }
}

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer_token(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

fn decoding_keys(set: &JwkSet) -> anyhow::Result<HashMap<String, DecodingKey>> {
    set.keys
        .iter()
        .filter_map(|jwk| jwk.common.key_id.clone().map(|kid| (kid, jwk)))
        .map(|(kid, jwk)| {
            DecodingKey::from_jwk(jwk)
                .map(|k| (kid.clone(), k))
                .with_context(|| format!("JWK {kid} is not usable"))
        })
        .collect()
}

/// Another FeastFast service, proven by a service token: what `/internal`
/// endpoints (and the event feed) require. A user's token is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceCaller {
    pub name: String,
}

impl<S: Send + Sync> FromRequestParts<S> for ServiceCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let verifier = parts.extensions.get::<Verifier>().cloned().ok_or_else(|| {
            ApiError::internal(anyhow::anyhow!("no Verifier in the request extensions"))
        })?;
        let token = bearer_token(parts).ok_or(AuthError::Missing)?;
        let claims = verifier.verify_claims(token).await?;
        match (claims.role, claims.svc) {
            (Role::Service, Some(name)) => Ok(ServiceCaller { name }),
            _ => Err(ApiError::forbidden(
                "this internal endpoint needs a service token",
            )),
        }
    }
}

/// Where a service gets the token it presents on internal calls: from the
/// users service in exchange for the shared secret (cached until shortly
/// before it expires, so internal calls keep working through a users
/// outage), or a fixed token in tests.
#[derive(Clone)]
pub struct ServiceTokens {
    inner: Arc<TokenSource>,
}

enum TokenSource {
    Fixed(String),
    Users {
        client: HttpClient,
        url: String,
        service: String,
        secret: String,
        cached: tokio::sync::Mutex<Option<(String, Instant)>>,
    },
}

/// `POST /internal/token` on the users service.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceTokenRequest {
    pub service: String,
    pub secret: String,
}

impl ServiceTokens {
    /// Tokens for `service` from the users service at `users_url`.
    pub fn from_users(client: HttpClient, users_url: &str, service: &str, secret: &str) -> Self {
        Self {
            inner: Arc::new(TokenSource::Users {
                client,
                url: format!("{}/internal/token", users_url.trim_end_matches('/')),
                service: service.to_owned(),
                secret: secret.to_owned(),
                cached: tokio::sync::Mutex::new(None),
            }),
        }
    }

    /// Always the same token (tests).
    pub fn fixed(token: String) -> Self {
        Self {
            inner: Arc::new(TokenSource::Fixed(token)),
        }
    }

    /// A valid service token.
    pub async fn token(&self) -> Result<String, ApiError> {
        let (client, url, service, secret, cached) = match &*self.inner {
            TokenSource::Fixed(token) => return Ok(token.clone()),
            TokenSource::Users {
                client,
                url,
                service,
                secret,
                cached,
            } => (client, url, service, secret, cached),
        };
        let mut cached = cached.lock().await;
        if let Some((token, refresh_at)) = &*cached
            && Instant::now() < *refresh_at
        {
            return Ok(token.clone());
        }
        let unavailable = |e: &dyn std::fmt::Display| {
            ApiError::unavailable("users", format!("cannot get a service token: {e}"))
        };
        let answer = client
            .post(url)
            .json(&ServiceTokenRequest {
                service: service.clone(),
                secret: secret.clone(),
            })
            .send()
            .await
            .map_err(|e| unavailable(&e))?;
        if !answer.status().is_success() {
            return Err(ApiError::internal(anyhow::anyhow!(
                "the users service refused a service token for {service}: {}",
                answer.status()
            )));
        }
        let body: contracts::identity::TokenResponse =
            answer.json().await.map_err(|e| unavailable(&e))?;
        // Refresh at 80% of the lifetime, so a token never expires in flight.
        let refresh_at = Instant::now() + Duration::from_secs(body.expires_in * 4 / 5);
        *cached = Some((body.access_token.clone(), refresh_at));
        Ok(body.access_token)
    }
}

/// Services put their [`Verifier`] in the request extensions (a layer), so
/// the [`Identity`] extractor works with any router state.
impl<S: Send + Sync> FromRequestParts<S> for Identity {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let verifier = parts.extensions.get::<Verifier>().cloned().ok_or_else(|| {
            ApiError::internal(anyhow::anyhow!("no Verifier in the request extensions"))
        })?;
        Ok(verifier.verify_header(parts).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verifier_for(key: &SigningKey) -> Verifier {
        Verifier::with_keys(&JwkSet {
            keys: vec![key.jwk()],
        })
        .expect("valid keys")
    }

    #[tokio::test]
    async fn a_token_proves_its_user_and_role() {
        let key = SigningKey::generate();
        let user = UserId::new();
        let token = key
            .issue(user, Role::Courier, Duration::from_secs(60))
            .expect("signs");
        let id = verifier_for(&key).verify(&token).await.expect("valid");
        assert_eq!(
            id,
            Identity {
                user_id: user,
                role: Role::Courier
            }
        );
    }

    /// `token` with its payload's role changed to admin, signature kept.
    fn made_admin(token: &str) -> String {
        let mut parts: Vec<&str> = token.split('.').collect();
        let admin_payload = URL_SAFE_NO_PAD.encode(
            String::from_utf8(URL_SAFE_NO_PAD.decode(parts[1]).expect("b64"))
                .expect("utf8")
                .replace("customer", "admin"),
        );
        parts[1] = &admin_payload;
        parts.join(".")
    }

    #[tokio::test]
    async fn refuses_foreign_expired_and_tampered_tokens() {
        let key = SigningKey::generate();
        let verifier = verifier_for(&key);
        let other = SigningKey::generate();
        let foreign = other
            .issue(UserId::new(), Role::Admin, Duration::from_secs(60))
            .expect("signs");
        assert!(verifier.verify(&foreign).await.is_err());

        let expired = key
            .issue(UserId::new(), Role::Customer, Duration::ZERO)
            .expect("signs");
        // Issued with exp = now; past the 5 s leeway it must be refused.
        let mut claims: Claims = jsonwebtoken::dangerous::insecure_decode(&expired)
            .expect("decodes")
            .claims;
        claims.exp -= 60;
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(key.kid().to_owned());
        let expired = jsonwebtoken::encode(&header, &claims, &key.encoding).expect("signs");
        assert!(verifier.verify(&expired).await.is_err());

        let good = key
            .issue(UserId::new(), Role::Customer, Duration::from_secs(60))
            .expect("signs");
        assert!(verifier.verify(&made_admin(&good)).await.is_err());
    }

    #[tokio::test]
    async fn a_remembered_token_is_taken_only_as_is_and_only_until_it_expires() {
        let key = SigningKey::generate();
        let verifier = verifier_for(&key);
        let good = key
            .issue(UserId::new(), Role::Customer, Duration::from_secs(60))
            .expect("signs");
        let claims = verifier.verify_claims(&good).await.expect("valid");
        let verified = &verifier.inner.verified;
        assert!(verified.get(&good, claims.exp - 1).is_some(), "remembered");
        assert!(
            verified.get(&good, claims.exp).is_none(),
            "not past its expiry, even within the leeway"
        );

        // The signature of a remembered token does not vouch for another
        // payload under it.
        assert!(verifier.verify(&made_admin(&good)).await.is_err());

        // A full cache starts over rather than growing.
        for _ in 0..VERIFIED_CAPACITY {
            let token = key
                .issue(UserId::new(), Role::Customer, Duration::from_secs(60))
                .expect("signs");
            verifier.verify(&token).await.expect("valid");
        }
        let held = verified.tokens.lock().expect("lock").len();
        assert!(held <= VERIFIED_CAPACITY, "{held} tokens held");
        assert!(
            verifier.verify(&good).await.is_ok(),
            "still valid when forgotten"
        );
    }

    #[tokio::test]
    async fn a_stored_key_signs_tokens_the_old_jwk_verifies() {
        let key = SigningKey::generate();
        let restored = SigningKey::from_pkcs8(key.kid().to_owned(), key.pkcs8()).expect("restores");
        let token = restored
            .issue(UserId::new(), Role::Customer, Duration::from_secs(60))
            .expect("signs");
        assert!(verifier_for(&key).verify(&token).await.is_ok());
    }
}
