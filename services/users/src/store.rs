//! The users service's SQL, next to the functions that run it.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use contracts::UserId;
use contracts::identity::{Email, Role, User};
use platform::Db;
use platform::auth::SigningKey;
use platform::db::parse_column;

pub(crate) struct StoredUser {
    pub(crate) user: User,
    pub(crate) password_hash: String,
}

#[derive(sqlx::FromRow)]
struct UserRow {
    id: String,
    email: String,
    name: String,
    role: String,
    password_hash: String,
}

impl TryFrom<UserRow> for StoredUser {
    type Error = sqlx::Error;
    fn try_from(row: UserRow) -> Result<Self, Self::Error> {
        Ok(StoredUser {
            user: User {
                id: parse_column(&row.id, "id")?,
                email: row.email,
                name: row.name,
                role: parse_column::<Role>(&row.role, "role")?,
            },
            password_hash: row.password_hash,
        })
    }
}

/// Inserts a user; a taken e-mail is a unique violation.
pub(crate) async fn insert_user(
    db: &Db,
    email: &Email,
    name: &str,
    role: Role,
    password_hash: &str,
) -> Result<User, sqlx::Error> {
    let id = UserId::new();
    sqlx::query(
        "INSERT INTO users (id, email, name, role, password_hash, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id.to_string())
    .bind(email.as_str())
    .bind(name)
    .bind(role.as_str())
    .bind(password_hash)
    .bind(platform::time::now())
    .execute(db)
    .await?;
    Ok(User {
        id,
        email: email.as_str().to_owned(),
        name: name.to_owned(),
        role,
    })
}

pub(crate) async fn user_by_email(db: &Db, email: &str) -> Result<Option<StoredUser>, sqlx::Error> {
    sqlx::query_as::<_, UserRow>(
        "SELECT id, email, name, role, password_hash FROM users WHERE email = $1",
    )
    .bind(email)
    .fetch_optional(db)
    .await?
    .map(StoredUser::try_from)
    .transpose()
}

pub(crate) async fn user_by_id(db: &Db, id: UserId) -> Result<Option<User>, sqlx::Error> {
    sqlx::query_as::<_, UserRow>(
        "SELECT id, email, name, role, password_hash FROM users WHERE id = $1",
    )
    .bind(id.to_string())
    .fetch_optional(db)
    .await?
    .map(|row| StoredUser::try_from(row).map(|s| s.user))
    .transpose()
}

#[derive(sqlx::FromRow)]
struct KeyRow {
    kid: String,
    pkcs8: String,
}

fn key_from_row(row: KeyRow) -> anyhow::Result<SigningKey> {
    let der = STANDARD.decode(&row.pkcs8)?;
    SigningKey::from_pkcs8(row.kid, &der)
}

/// Every signing key, oldest first.
pub(crate) async fn all_signing_keys(db: &Db) -> anyhow::Result<Vec<SigningKey>> {
    sqlx::query_as::<_, KeyRow>("SELECT kid, pkcs8 FROM signing_keys ORDER BY created_at, kid")
        .fetch_all(db)
        .await?
        .into_iter()
        .map(key_from_row)
        .collect()
}

/// The key that signs new tokens: the oldest stored one, created on first
/// start. Choosing the oldest (not "the one I made") means replicas that
/// start together on an empty database still agree on one key.
pub(crate) async fn current_signing_key(db: &Db) -> anyhow::Result<SigningKey> {
    if all_signing_keys(db).await?.is_empty() {
        let key = SigningKey::generate();
        sqlx::query("INSERT INTO signing_keys (kid, pkcs8, created_at) VALUES ($1, $2, $3)")
            .bind(key.kid())
            .bind(STANDARD.encode(key.pkcs8()))
            .bind(platform::time::now())
            .execute(db)
            .await?;
    }
    all_signing_keys(db)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("no signing key after creating one"))
}
