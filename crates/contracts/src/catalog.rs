//! The catalog: restaurants and their menus.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{MenuItemId, RestaurantId};

/// A point on the map (WGS 84 degrees).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Location {
    pub lat: f64,
    pub lng: f64,
}

impl Location {
    /// The great-circle distance to `other`, in kilometres (haversine).
    pub fn distance_km(&self, other: &Location) -> f64 {
        const EARTH_RADIUS_KM: f64 = 6371.0;
        let (lat1, lat2) = (self.lat.to_radians(), other.lat.to_radians());
        let dlat = lat2 - lat1;
        let dlng = (other.lng - self.lng).to_radians();
        let a = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlng / 2.0).sin().powi(2);
        2.0 * EARTH_RADIUS_KM * a.sqrt().asin()
    }

    /// Whether both coordinates are finite and within their ranges.
    pub fn is_valid(&self) -> bool {
        self.lat.is_finite()
            && self.lng.is_finite()
            && (-90.0..=90.0).contains(&self.lat)
            && (-180.0..=180.0).contains(&self.lng)
    }
}

/// A restaurant as listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Restaurant {
    pub id: RestaurantId,
    pub name: String,
    pub cuisine: String,
    pub address: String,
    pub location: Location,
    pub open: bool,
    /// Whether new orders are accepted without the owner's action.
    pub auto_accept: bool,
}

/// A restaurant with its menu.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RestaurantDetail {
    #[serde(flatten)]
    pub restaurant: Restaurant,
    pub menu: Vec<MenuItem>,
}

/// One item on a menu.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MenuItem {
    pub id: MenuItemId,
    pub name: String,
    pub description: String,
    pub price_cents: i64,
    pub available: bool,
    /// Units left; `null` means unlimited.
    pub stock: Option<i64>,
}

/// `POST /restaurants`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NewRestaurant {
    pub name: String,
    pub cuisine: String,
    pub address: String,
    pub location: Location,
    #[serde(default)]
    pub auto_accept: Option<bool>,
}

/// `POST /restaurants/{id}/menu`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NewMenuItem {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub price_cents: i64,
    #[serde(default)]
    pub available: Option<bool>,
    /// Units in stock; absent or `null` means unlimited.
    #[serde(default)]
    pub stock: Option<i64>,
}

/// `PATCH /restaurants/{id}/menu/{item_id}`: every field optional; `stock: null`
/// makes the stock unlimited.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct MenuItemPatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_cents: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available: Option<bool>,
    #[serde(
        default,
        deserialize_with = "crate::patch::present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<i64>)]
    pub stock: Option<Option<i64>>,
}

/// One page of a list, with the cursor of the next page (`null` on the last).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_is_the_great_circle() {
        let alexanderplatz = Location {
            lat: 52.5219,
            lng: 13.4132,
        };
        let brandenburg_gate = Location {
            lat: 52.5163,
            lng: 13.3777,
        };
        let d = alexanderplatz.distance_km(&brandenburg_gate);
        assert!((2.3..2.6).contains(&d), "{d}");
        assert_eq!(alexanderplatz.distance_km(&alexanderplatz), 0.0);
    }
}

/// What a restaurant's public page shows changed: the restaurant was
/// added, or its menu or an item's stock changed. Caches of the page (the
/// gateway's edge cache) drop it on this.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RestaurantChanged {
    pub restaurant_id: RestaurantId,
}

impl crate::events::Event for RestaurantChanged {
    const TYPE: &'static str = "feastfast.restaurant.changed.v1";
    const SOURCE: &'static str = "restaurants";
    fn subject(&self) -> String {
        self.restaurant_id.to_string()
    }
}
