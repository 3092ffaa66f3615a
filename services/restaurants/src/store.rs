//! The restaurants service's SQL, next to the functions that run it.
//!
//! Flags are read through `CAST(... AS INTEGER)`: sqlx's `Any` driver
//! refuses a column declared `BOOLEAN` on SQLite (sqlx issues #2657, #2778),
//! while an expression has no declared type and reads as an integer on
//! both engines. Writing a `bool` works on both as it is.

use contracts::catalog::{Location, MenuItem, Restaurant};
use contracts::{MenuItemId, PriceCents, RestaurantId, UserId};
use platform::Db;
use platform::db::parse_column;
use sqlx::AssertSqlSafe;

use crate::cursor::Cursor;

/// The columns of a [`RestaurantRow`]; a macro so `concat!` can build
/// `&'static str` queries from it.
macro_rules! restaurant_columns {
    () => {
        "id, name, cuisine, address, lat, lng, \
         CAST(open AS INTEGER) AS open, CAST(auto_accept AS INTEGER) AS auto_accept"
    };
}

/// The columns of a [`MenuItemRow`].
macro_rules! menu_item_columns {
    () => {
        "id, name, description, price_cents, CAST(available AS INTEGER) AS available, stock"
    };
}

#[derive(sqlx::FromRow)]
struct RestaurantRow {
    id: String,
    name: String,
    cuisine: String,
    address: String,
    lat: f64,
    lng: f64,
    open: i64,
    auto_accept: i64,
}

impl TryFrom<RestaurantRow> for Restaurant {
    type Error = sqlx::Error;
    fn try_from(row: RestaurantRow) -> Result<Self, Self::Error> {
        Ok(Restaurant {
            id: parse_column(&row.id, "id")?,
            name: row.name,
            cuisine: row.cuisine,
            address: row.address,
            location: Location {
                lat: row.lat,
                lng: row.lng,
            },
            open: row.open != 0,
            auto_accept: row.auto_accept != 0,
        })
    }
}

#[derive(sqlx::FromRow)]
struct MenuItemRow {
    id: String,
    name: String,
    description: String,
    price_cents: i64,
    available: i64,
    stock: Option<i64>,
}

impl TryFrom<MenuItemRow> for MenuItem {
    type Error = sqlx::Error;
    fn try_from(row: MenuItemRow) -> Result<Self, Self::Error> {
        Ok(MenuItem {
            id: parse_column(&row.id, "id")?,
            name: row.name,
            description: row.description,
            price_cents: row.price_cents,
            available: row.available != 0,
            stock: row.stock,
        })
    }
}

/// A restaurant to insert, already validated.
pub(crate) struct RestaurantInput {
    pub(crate) owner: UserId,
    pub(crate) name: String,
    pub(crate) cuisine: String,
    pub(crate) address: String,
    pub(crate) location: Location,
    pub(crate) auto_accept: bool,
}

/// Announces, in the caller's transaction, that restaurant `id`'s public
/// page changed (caches of it drop it).
pub(crate) async fn announce_change(
    tx: &mut sqlx::AnyConnection,
    id: RestaurantId,
) -> Result<(), sqlx::Error> {
    platform::events::enqueue(
        tx,
        &contracts::catalog::RestaurantChanged { restaurant_id: id },
    )
    .await
    .map(|_| ())
}

/// Inserts a restaurant; a new one is open.
pub(crate) async fn insert_restaurant(
    db: &Db,
    input: RestaurantInput,
) -> Result<Restaurant, sqlx::Error> {
    let id = RestaurantId::new();
    let now = platform::time::now();
    let mut tx = platform::db::begin_write(db).await?;
    sqlx::query(
        "INSERT INTO restaurants \
         (id, owner_id, name, cuisine, address, lat, lng, open, auto_accept, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(id.to_string())
    .bind(input.owner.to_string())
    .bind(&input.name)
    .bind(&input.cuisine)
    .bind(&input.address)
    .bind(input.location.lat)
    .bind(input.location.lng)
    .bind(true)
    .bind(input.auto_accept)
    .bind(&now)
    .bind(&now)
    .execute(&mut *tx)
    .await?;
    announce_change(&mut tx, id).await?;
    tx.commit().await?;
    Ok(Restaurant {
        id,
        name: input.name,
        cuisine: input.cuisine,
        address: input.address,
        location: input.location,
        open: true,
        auto_accept: input.auto_accept,
    })
}

/// What the public list is filtered by.
pub(crate) struct Search {
    /// A substring of the name or the cuisine, any case.
    pub(crate) text: Option<String>,
    /// The cuisine, any case.
    pub(crate) cuisine: Option<String>,
    /// Resume after this restaurant.
    pub(crate) after: Option<Cursor>,
    /// At most this many rows.
    pub(crate) limit: i64,
}

/// Restaurants matching `search`, in (name, id) order.
///
/// Case-insensitivity is `LOWER(column)` against a pattern lower-cased here.
/// SQLite's `LOWER` folds only ASCII letters, so on SQLite a search for
/// "é" does not find "É"; PostgreSQL folds all of Unicode.
pub(crate) async fn search_restaurants(
    db: &Db,
    search: &Search,
) -> Result<Vec<Restaurant>, sqlx::Error> {
    // Adds a value and answers its placeholder number, so the numbers stay
    // contiguous whichever filters are present.
    fn next(binds: &mut Vec<String>, value: String) -> usize {
        binds.push(value);
        binds.len()
    }

    // Only the WHERE clause varies. It is built from the literals below and
    // numbered placeholders; every value the caller sent is bound, never
    // spliced in, which is what makes `AssertSqlSafe` true.
    let mut sql = String::from(concat!(
        "SELECT ",
        restaurant_columns!(),
        " FROM restaurants WHERE 1 = 1"
    ));
    let mut binds: Vec<String> = Vec::new();
    if let Some(text) = &search.text {
        let pattern = format!("%{}%", escape_like(&text.to_lowercase()));
        let a = next(&mut binds, pattern.clone());
        let b = next(&mut binds, pattern);
        sql.push_str(&format!(
            " AND (LOWER(name) LIKE ${a} ESCAPE '\\' OR LOWER(cuisine) LIKE ${b} ESCAPE '\\')"
        ));
    }
    if let Some(cuisine) = &search.cuisine {
        let a = next(&mut binds, cuisine.to_lowercase());
        sql.push_str(&format!(" AND LOWER(cuisine) = ${a}"));
    }
    if let Some(after) = &search.after {
        let a = next(&mut binds, after.name.clone());
        let b = next(&mut binds, after.name.clone());
        let c = next(&mut binds, after.id.to_string());
        sql.push_str(&format!(
            " AND (name > ${a} OR (name = ${b} AND id > ${c}))"
        ));
    }
    let limit = binds.len() + 1;
    sql.push_str(&format!(" ORDER BY name, id LIMIT ${limit}"));

    let mut query = sqlx::query_as::<_, RestaurantRow>(AssertSqlSafe(sql));
    for value in binds {
        query = query.bind(value);
    }
    query
        .bind(search.limit)
        .fetch_all(db)
        .await?
        .into_iter()
        .map(Restaurant::try_from)
        .collect()
}

/// Escapes LIKE's wildcards (and the escape character itself), so the
/// user's text matches literally under `ESCAPE '\'`.
fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Every restaurant of `owner`, in (name, id) order.
pub(crate) async fn restaurants_of(db: &Db, owner: UserId) -> Result<Vec<Restaurant>, sqlx::Error> {
    sqlx::query_as::<_, RestaurantRow>(concat!(
        "SELECT ",
        restaurant_columns!(),
        " FROM restaurants WHERE owner_id = $1 ORDER BY name, id"
    ))
    .bind(owner.to_string())
    .fetch_all(db)
    .await?
    .into_iter()
    .map(Restaurant::try_from)
    .collect()
}

pub(crate) async fn restaurant(
    db: &Db,
    id: RestaurantId,
) -> Result<Option<Restaurant>, sqlx::Error> {
    sqlx::query_as::<_, RestaurantRow>(concat!(
        "SELECT ",
        restaurant_columns!(),
        " FROM restaurants WHERE id = $1"
    ))
    .bind(id.to_string())
    .fetch_optional(db)
    .await?
    .map(Restaurant::try_from)
    .transpose()
}

/// Who owns restaurant `id`, if it exists.
pub(crate) async fn owner_of(db: &Db, id: RestaurantId) -> Result<Option<UserId>, sqlx::Error> {
    let owner: Option<String> =
        sqlx::query_scalar("SELECT owner_id FROM restaurants WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(db)
            .await?;
    owner.map(|o| parse_column(&o, "owner_id")).transpose()
}

/// A restaurant's whole menu, unavailable items included, in (name, id)
/// order.
pub(crate) async fn menu(db: &Db, restaurant: RestaurantId) -> Result<Vec<MenuItem>, sqlx::Error> {
    sqlx::query_as::<_, MenuItemRow>(concat!(
        "SELECT ",
        menu_item_columns!(),
        " FROM menu_items WHERE restaurant_id = $1 ORDER BY name, id"
    ))
    .bind(restaurant.to_string())
    .fetch_all(db)
    .await?
    .into_iter()
    .map(MenuItem::try_from)
    .collect()
}

/// A menu item to insert, already validated.
pub(crate) struct MenuItemInput {
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) price: PriceCents,
    pub(crate) available: bool,
    pub(crate) stock: Option<i64>,
}

pub(crate) async fn insert_menu_item(
    db: &Db,
    restaurant: RestaurantId,
    input: MenuItemInput,
) -> Result<MenuItem, sqlx::Error> {
    let id = MenuItemId::new();
    let now = platform::time::now();
    let mut tx = platform::db::begin_write(db).await?;
    sqlx::query(
        "INSERT INTO menu_items \
         (id, restaurant_id, name, description, price_cents, available, stock, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(id.to_string())
    .bind(restaurant.to_string())
    .bind(&input.name)
    .bind(&input.description)
    .bind(input.price.cents())
    .bind(input.available)
    .bind(input.stock)
    .bind(&now)
    .bind(&now)
    .execute(&mut *tx)
    .await?;
    announce_change(&mut tx, restaurant).await?;
    tx.commit().await?;
    Ok(MenuItem {
        id,
        name: input.name,
        description: input.description,
        price_cents: input.price.cents(),
        available: input.available,
        stock: input.stock,
    })
}

/// Item `id` of `restaurant`, if it is on that restaurant's menu.
pub(crate) async fn menu_item(
    db: &Db,
    restaurant: RestaurantId,
    id: MenuItemId,
) -> Result<Option<MenuItem>, sqlx::Error> {
    sqlx::query_as::<_, MenuItemRow>(concat!(
        "SELECT ",
        menu_item_columns!(),
        " FROM menu_items WHERE id = $1 AND restaurant_id = $2"
    ))
    .bind(id.to_string())
    .bind(restaurant.to_string())
    .fetch_optional(db)
    .await?
    .map(MenuItem::try_from)
    .transpose()
}

/// A validated change: `None` leaves a field as it is; `stock: Some(None)`
/// makes the stock unlimited.
#[derive(Default)]
pub(crate) struct MenuItemChange {
    pub(crate) name: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) price: Option<PriceCents>,
    pub(crate) available: Option<bool>,
    pub(crate) stock: Option<Option<i64>>,
}

impl MenuItemChange {
    fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.description.is_none()
            && self.price.is_none()
            && self.available.is_none()
            && self.stock.is_none()
    }
}

/// Applies `change` to item `id` of `restaurant` in one statement, so a
/// concurrent change never sees half of it; `None` if there is no such
/// item on that menu. An empty change touches nothing.
pub(crate) async fn update_menu_item(
    db: &Db,
    restaurant: RestaurantId,
    id: MenuItemId,
    change: MenuItemChange,
) -> Result<Option<MenuItem>, sqlx::Error> {
    if change.is_empty() {
        return menu_item(db, restaurant, id).await;
    }
    // `stock` needs a flag of its own: COALESCE cannot tell "set to NULL"
    // from "leave alone".
    let mut tx = platform::db::begin_write(db).await?;
    let changed = sqlx::query_as::<_, MenuItemRow>(concat!(
        "UPDATE menu_items SET \
         name = COALESCE($1, name), \
         description = COALESCE($2, description), \
         price_cents = COALESCE($3, price_cents), \
         available = COALESCE($4, available), \
         stock = CASE WHEN $5 THEN $6 ELSE stock END, \
         updated_at = $7 \
         WHERE id = $8 AND restaurant_id = $9 \
         RETURNING ",
        menu_item_columns!()
    ))
    .bind(change.name)
    .bind(change.description)
    .bind(change.price.map(PriceCents::cents))
    .bind(change.available)
    .bind(change.stock.is_some())
    .bind(change.stock.flatten())
    .bind(platform::time::now())
    .bind(id.to_string())
    .bind(restaurant.to_string())
    .fetch_optional(&mut *tx)
    .await?
    .map(MenuItem::try_from)
    .transpose()?;
    if changed.is_some() {
        announce_change(&mut tx, restaurant).await?;
    }
    tx.commit().await?;
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_wildcards_match_literally() {
        assert_eq!(escape_like("100%_off\\"), "100\\%\\_off\\\\");
        assert_eq!(escape_like("plain"), "plain");
    }
}
