//! Identifiers: UUID v7 rendered as lowercase hyphenated text.
//!
//! v7 ids sort by creation time, which keeps B-tree inserts local and lets a
//! keyset cursor double as a time order.

use std::fmt;
use std::str::FromStr;

/// The error for text that is not a UUID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid id: expected a UUID")]
pub struct InvalidId;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(uuid::Uuid);

        impl $name {
            /// A new, time-ordered id.
            pub fn new() -> Self {
                Self(uuid::Uuid::now_v7())
            }

            /// Parses the text form; anything but a UUID is refused.
            pub fn parse(s: &str) -> Result<Self, InvalidId> {
                uuid::Uuid::parse_str(s).map(Self).map_err(|_| InvalidId)
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                        utoipa::openapi::KnownFormat::Uuid,
                    )))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

id_type!(
    /// A user of any role.
    UserId
);
id_type!(
    /// A restaurant.
    RestaurantId
);
id_type!(
    /// One item on a restaurant's menu.
    MenuItemId
);
id_type!(
    /// An order (also the key of its reservation, ticket, payment and
    /// delivery in the other services).
    OrderId
);
id_type!(
    /// A payment: the authorization of one order and what became of it.
    PaymentId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_text() {
        let id = UserId::new();
        assert_eq!(UserId::parse(&id.to_string()), Ok(id));
    }

    #[test]
    fn refuses_text_that_is_not_a_uuid() {
        assert_eq!(RestaurantId::parse("42"), Err(InvalidId));
        assert_eq!(RestaurantId::parse(""), Err(InvalidId));
        assert_eq!(RestaurantId::parse("../etc/passwd"), Err(InvalidId));
    }

    #[test]
    fn new_ids_sort_by_creation() {
        let a = MenuItemId::new();
        let b = MenuItemId::new();
        assert!(a < b);
        assert!(a.to_string() < b.to_string());
    }

    #[test]
    fn serialises_as_a_plain_string() {
        let id = UserId::parse("0190f2a4-5d1e-7c3b-9a61-2f0e4b8c1d2e").expect("valid");
        assert_eq!(
            serde_json::to_string(&id).expect("serialises"),
            "\"0190f2a4-5d1e-7c3b-9a61-2f0e4b8c1d2e\""
        );
    }
}
