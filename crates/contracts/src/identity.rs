//! Identity: users, roles, credentials and tokens.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::UserId;

/// What a user may do. Chosen at registration (`admin` is never self-chosen).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Customer,
    RestaurantOwner,
    Courier,
    Admin,
    /// Another FeastFast service calling an internal endpoint.
    Service,
}

impl Role {
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::RestaurantOwner => "restaurant_owner",
            Role::Courier => "courier",
            Role::Admin => "admin",
            Role::Service => "service",
        }
    }

    /// Whether anyone may register with this role.
    pub const fn self_service(self) -> bool {
        !matches!(self, Role::Admin | Role::Service)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Text that names no role.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be one of customer, restaurant_owner, courier")]
pub struct UnknownRole;

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "customer" => Ok(Role::Customer),
            "restaurant_owner" => Ok(Role::RestaurantOwner),
            "courier" => Ok(Role::Courier),
            "admin" => Ok(Role::Admin),
            "service" => Ok(Role::Service),
            _ => Err(UnknownRole),
        }
    }
}

/// An e-mail address in a plausible shape, lower-cased.
///
/// Deliverability is not checked (nothing is mailed); the shape check keeps
/// obvious typos and junk out of the unique index.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Email(String);

/// Why text is not an e-mail address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be an e-mail address like name@example.com")]
pub struct InvalidEmail;

impl Email {
    pub const MAX_LEN: usize = 254;

    pub fn parse(s: &str) -> Result<Self, InvalidEmail> {
        let s = s.trim();
        if s.len() > Self::MAX_LEN || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(InvalidEmail);
        }
        let (local, domain) = s.split_once('@').ok_or(InvalidEmail)?;
        let domain_ok = !domain.contains('@')
            && domain.contains('.')
            && domain
                .split('.')
                .all(|label| !label.is_empty() && !label.starts_with('-') && !label.ends_with('-'));
        if local.is_empty() || local.len() > 64 || !domain_ok {
            return Err(InvalidEmail);
        }
        Ok(Self(s.to_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `POST /auth/register`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RegisterRequest {
    pub email: String,
    pub password: String,
    pub name: String,
    /// `customer`, `restaurant_owner` or `courier`.
    pub role: String,
}

/// `POST /auth/login`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

/// A user as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub name: String,
    pub role: Role,
}

/// A bearer token for the API.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the token expires.
    pub expires_in: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_lowercases_plausible_addresses() {
        assert_eq!(
            Email::parse(" Ada@Example.COM ").map(|e| e.as_str().to_owned()),
            Ok("ada@example.com".to_owned())
        );
        assert!(Email::parse("first.last+tag@sub.example.co.uk").is_ok());
    }

    #[test]
    fn refuses_implausible_addresses() {
        for bad in [
            "",
            "plain",
            "@example.com",
            "ada@",
            "ada@localhost",
            "ada@@example.com",
            "ada@exa mple.com",
            "ada@.example.com",
            "ada@example..com",
            "ada@-example.com",
        ] {
            assert_eq!(Email::parse(bad), Err(InvalidEmail), "{bad:?}");
        }
        let long = format!("{}@example.com", "a".repeat(65));
        assert_eq!(Email::parse(&long), Err(InvalidEmail));
    }

    #[test]
    fn roles_round_trip_and_admin_is_not_self_service() {
        for role in [
            Role::Customer,
            Role::RestaurantOwner,
            Role::Courier,
            Role::Admin,
        ] {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
            assert_eq!(
                serde_json::to_value(role).expect("serialises"),
                serde_json::json!(role.as_str())
            );
        }
        assert!(!Role::Admin.self_service());
        assert!(!Role::Service.self_service());
        assert!(Role::Courier.self_service());
        assert_eq!("chef".parse::<Role>(), Err(UnknownRole));
    }
}
