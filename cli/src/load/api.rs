//! The FeastFast public API as a load target: the customers' operations
//! through the gateway, and the setup they need before the clock starts.
//!
//! Setup (not measured): log in (or register, once) a small pool of load
//! customers, since every login costs an argon2 hash by design; discover
//! the restaurants and menus through the API; and give every customer an
//! order to track. Orders go only to auto-accepting, open restaurants and
//! to items without a stock limit, so the order operation measures the
//! saga's happy path (reserve, authorize, auto-accept) and never fails
//! for lack of stock or waits for a human. The demo restaurants of
//! `feastfast up` qualify (all but Burger Werk, which accepts by hand);
//! its simulators then cook and deliver the orders.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError, RwLock};
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use contracts::catalog::{Location, Page, Restaurant, RestaurantDetail};
use contracts::identity::{LoginRequest, RegisterRequest, TokenResponse};
use contracts::kitchen::OrderLine;
use contracts::orders::{DeliveryAddress, OrderStatus, PlaceOrder};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use reqwest::{Client, Method, StatusCode, Url};
use serde::Deserialize;
use tokio::time::Instant;

use super::http1::Getter;

use super::engine::Target;
use super::mix::{Mix, Op};
use super::stats::Outcome;

/// The password of the load customers (their e-mails are
/// `load<i>@load.feastfast.test`).
const PASSWORD: &str = "load-generator";
/// How many of a customer's recent orders `track` picks from.
const TRACKED_PER_CUSTOMER: usize = 32;
/// At most this many restaurants are browsed (the first, in name order).
const MAX_RESTAURANTS: usize = 200;

/// How the load connects and who it plays.
#[derive(Debug, Clone)]
pub(crate) struct Setup {
    /// The gateway's base URL, e.g. `http://127.0.0.1:8080`.
    pub(crate) gateway: String,
    pub(crate) customers: usize,
    pub(crate) timeout: Duration,
}

struct Customer {
    email: String,
    auth: RwLock<HeaderValue>,
    logged_in: Mutex<Instant>,
    /// Recent orders, the newest last.
    orders: Mutex<Vec<String>>,
}

/// The platform behind a gateway, ready to be loaded.
pub(crate) struct FeastFast {
    client: Client,
    /// The `GET`s, where the gateway speaks plain HTTP (`http1.rs`).
    getter: Option<Getter>,
    api: String,
    /// `GET` URLs of restaurant pages, and of searches, parsed once (a
    /// URL given as text is parsed again for every request).
    pages: Vec<Url>,
    searches: Vec<Url>,
    /// Ready-made bodies of orders to happy-path restaurants.
    order_bodies: Vec<Bytes>,
    customers: Vec<Customer>,
    /// Makes idempotency keys unique across runs with the same customers.
    run_id: String,
    /// Numbers this run's orders: `n` restarts with every `--find-max`
    /// step, and a repeated key would replay an earlier order instead of
    /// placing one.
    orders_placed: AtomicU64,
}

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What the load reads from a placed order.
#[derive(Deserialize)]
struct Placed {
    id: String,
    status: OrderStatus,
}

#[derive(Deserialize)]
struct Listed {
    id: String,
}

impl FeastFast {
    /// Prepares everything `mix` needs; fails with a reason a person can act on.
    pub(crate) async fn connect(setup: &Setup, mix: &Mix) -> anyhow::Result<FeastFast> {
        let client = Client::builder()
            .timeout(setup.timeout)
            .tcp_nodelay(true)
            .build()
            .context("cannot build the HTTP client")?;
        let api = format!("{}/api/v1", setup.gateway.trim_end_matches('/'));

        let listed = list_restaurants(&client, &api).await?;
        let mut pages = Vec::new();
        let mut cuisines: Vec<String> = Vec::new();
        let mut order_bodies = Vec::new();
        for r in &listed {
            let url = format!("{api}/restaurants/{}", r.id);
            let detail: RestaurantDetail = get_json(&client, &url, None).await?;
            pages.push(Url::parse(&url).with_context(|| format!("not a URL: {url}"))?);
            let cuisine = r.cuisine.to_lowercase();
            if !cuisine.is_empty() && !cuisines.contains(&cuisine) {
                cuisines.push(cuisine);
            }
            if let Some(body) = happy_path_order(&detail)? {
                order_bodies.push(body);
            }
        }
        let searches = cuisines
            .iter()
            .map(|c| {
                let url = format!("{api}/restaurants?q={}&limit=20", encode(c));
                Url::parse(&url).with_context(|| format!("not a URL: {url}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        if (mix.has(Op::Browse) || mix.has(Op::Search)) && pages.is_empty() {
            bail!("the gateway lists no restaurants to browse: is this a seeded `feastfast up`?");
        }
        if mix.has(Op::Search) && searches.is_empty() {
            bail!("no restaurant has a cuisine to search for");
        }
        if mix.has(Op::Order) && order_bodies.is_empty() {
            bail!(
                "no open, auto-accepting restaurant has an available item without a stock limit \
                 to order: the load measures the happy path only"
            );
        }

        let mut customers = Vec::new();
        let mut logins = tokio::task::JoinSet::new();
        for i in 0..setup.customers.max(1) {
            let (client, api) = (client.clone(), api.clone());
            logins.spawn(async move {
                let email = format!("load{i}@load.feastfast.test");
                let token = login_or_register(&client, &api, &email).await?;
                anyhow::Ok((i, email, token))
            });
        }
        let mut logged_in = logins
            .join_all()
            .await
            .into_iter()
            .collect::<anyhow::Result<Vec<_>>>()?;
        logged_in.sort_by_key(|(i, _, _)| *i);
        for (_, email, token) in logged_in {
            customers.push(Customer {
                email,
                auth: RwLock::new(bearer(&token)?),
                logged_in: Mutex::new(Instant::now()),
                orders: Mutex::new(Vec::new()),
            });
        }

        let getter = Getter::for_origin(
            &Url::parse(&api).with_context(|| format!("not a URL: {api}"))?,
            setup.timeout,
        )?;
        let target = FeastFast {
            client,
            api,
            getter,
            pages,
            searches,
            order_bodies,
            customers,
            run_id: run_id(),
            orders_placed: AtomicU64::new(0),
        };
        if mix.has(Op::Track) {
            target.give_every_customer_an_order().await?;
        }
        Ok(target)
    }

    /// A one-line account of what the setup found.
    pub(crate) fn describe(&self) -> String {
        format!(
            "{} customers, {} restaurant pages, {} searches, {} happy-path order kinds",
            self.customers.len(),
            self.pages.len(),
            self.searches.len(),
            self.order_bodies.len()
        )
    }

    /// Logs in again every customer whose token is older than `age`, so a
    /// long `--find-max` never runs into expired tokens.
    pub(crate) async fn refresh_logins(&self, age: Duration) -> anyhow::Result<()> {
        for c in &self.customers {
            if locked(&c.logged_in).elapsed() < age {
                continue;
            }
            let token = login_or_register(&self.client, &self.api, &c.email).await?;
            *c.auth.write().unwrap_or_else(PoisonError::into_inner) = bearer(&token)?;
            *locked(&c.logged_in) = Instant::now();
        }
        Ok(())
    }

    async fn give_every_customer_an_order(&self) -> anyhow::Result<()> {
        for (i, c) in self.customers.iter().enumerate() {
            let auth = self.auth(c);
            let mine: Page<Listed> = get_json(
                &self.client,
                &format!("{}/orders?limit=20", self.api),
                Some(auth),
            )
            .await?;
            let mut ids: Vec<String> = mine.items.into_iter().map(|o| o.id).collect();
            ids.reverse();
            if ids.is_empty() {
                if self.order_bodies.is_empty() {
                    bail!(
                        "{} has no order to track and there is no happy-path restaurant to place one",
                        c.email
                    );
                }
                let outcome = self.order(c, u64::try_from(i).unwrap_or(0)).await;
                if !outcome.ok {
                    bail!(
                        "placing a first order for {} failed: {}",
                        c.email,
                        outcome.detail.unwrap_or_default()
                    );
                }
            } else {
                *locked(&c.orders) = ids;
            }
        }
        Ok(())
    }

    fn auth(&self, c: &Customer) -> HeaderValue {
        c.auth
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn customer(&self, n: u64) -> &Customer {
        &self.customers[pick(n, self.customers.len())]
    }

    async fn get(&self, url: &Url, auth: Option<HeaderValue>) -> Outcome {
        if let Some(getter) = &self.getter {
            return match getter.get(url, auth.as_ref()).await {
                Ok((StatusCode::OK, _)) => Outcome::ok(200),
                Ok((status, body)) => unexpected_body(Method::GET, url.as_str(), status, &body),
                Err(e) => Outcome::failed(None, format!("GET {url}: {e}")),
            };
        }
        let mut request = self.client.get(url.clone());
        if let Some(auth) = auth {
            request = request.header(AUTHORIZATION, auth);
        }
        match request.send().await {
            Ok(r) if r.status() == StatusCode::OK => match r.bytes().await {
                Ok(_) => Outcome::ok(200),
                Err(e) => Outcome::failed(Some(200), format!("GET {url}: body: {e}")),
            },
            Ok(r) => unexpected(Method::GET, url.as_str(), r).await,
            Err(e) => Outcome::failed(None, format!("GET {url}: {e}")),
        }
    }

    async fn track(&self, n: u64) -> Outcome {
        let c = self.customer(n);
        let order = {
            let orders = locked(&c.orders);
            if orders.is_empty() {
                None
            } else {
                let round = n / self.customers.len() as u64;
                Some(orders[pick(round, orders.len())].clone())
            }
        };
        let Some(order) = order else {
            return Outcome::failed(None, format!("{} has no order to track", c.email));
        };
        match Url::parse(&format!("{}/orders/{order}", self.api)) {
            Ok(url) => self.get(&url, Some(self.auth(c))).await,
            Err(e) => Outcome::failed(None, format!("no URL for order {order}: {e}")),
        }
    }

    async fn order(&self, c: &Customer, n: u64) -> Outcome {
        let round = n / self.customers.len() as u64;
        let body = self.order_bodies[pick(round, self.order_bodies.len())].clone();
        let url = format!("{}/orders", self.api);
        let key = self.orders_placed.fetch_add(1, Ordering::Relaxed);
        let sent = self
            .client
            .post(&url)
            .header(AUTHORIZATION, self.auth(c))
            .header(CONTENT_TYPE, "application/json")
            .header("idempotency-key", format!("{}-{key}", self.run_id))
            .body(body)
            .send()
            .await;
        let response = match sent {
            Ok(r) if r.status() == StatusCode::CREATED || r.status() == StatusCode::ACCEPTED => r,
            Ok(r) => return unexpected(Method::POST, &url, r).await,
            Err(e) => return Outcome::failed(None, format!("POST {url}: {e}")),
        };
        let status = response.status().as_u16();
        match response.json::<Placed>().await {
            Ok(placed) => {
                let mut orders = locked(&c.orders);
                if orders.len() >= TRACKED_PER_CUSTOMER {
                    orders.remove(0);
                }
                orders.push(placed.id);
                Outcome {
                    label: Some(placed.status.as_str()),
                    ..Outcome::ok(status)
                }
            }
            Err(e) => Outcome::failed(Some(status), format!("POST {url}: not an order: {e}")),
        }
    }
}

impl Target for FeastFast {
    async fn call(&self, op: Op, n: u64) -> Outcome {
        match op {
            Op::Browse => self.get(&self.pages[pick(n, self.pages.len())], None).await,
            Op::Search => {
                self.get(&self.searches[pick(n, self.searches.len())], None)
                    .await
            }
            Op::Track => self.track(n).await,
            Op::Order => self.order(self.customer(n), n).await,
        }
    }
}

/// `n` spread over `len` slots (`len` > 0).
fn pick(n: u64, len: usize) -> usize {
    usize::try_from(n % len.max(1) as u64).unwrap_or(0)
}

async fn unexpected(method: Method, url: &str, r: reqwest::Response) -> Outcome {
    let status = r.status();
    let body = r.bytes().await.unwrap_or_default();
    unexpected_body(method, url, status, &body)
}

fn unexpected_body(method: Method, url: &str, status: StatusCode, body: &[u8]) -> Outcome {
    let excerpt: String = String::from_utf8_lossy(body).chars().take(300).collect();
    let status = status.as_u16();
    Outcome::failed(Some(status), format!("{method} {url}: {status} {excerpt}"))
}

/// An order of up to two items (one each) of `detail`, if it is a
/// happy-path restaurant: open, auto-accepting, items available without a
/// stock limit.
fn happy_path_order(detail: &RestaurantDetail) -> anyhow::Result<Option<Bytes>> {
    let r = &detail.restaurant;
    if !(r.open && r.auto_accept) {
        return Ok(None);
    }
    let items: Vec<OrderLine> = detail
        .menu
        .iter()
        .filter(|item| item.available && item.stock.is_none())
        .take(2)
        .map(|item| OrderLine {
            menu_item_id: item.id,
            quantity: 1,
        })
        .collect();
    if items.is_empty() {
        return Ok(None);
    }
    let order = PlaceOrder {
        restaurant_id: r.id,
        items,
        delivery_address: DeliveryAddress {
            line1: "Alexanderplatz 1".to_owned(),
            city: "Berlin".to_owned(),
            location: Location {
                lat: 52.5219,
                lng: 13.4132,
            },
        },
        payment_method: "pm_card_visa".to_owned(),
    };
    Ok(Some(Bytes::from(serde_json::to_vec(&order)?)))
}

async fn list_restaurants(client: &Client, api: &str) -> anyhow::Result<Vec<Restaurant>> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{api}/restaurants?limit=100");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={}", encode(c)));
        }
        let page: Page<Restaurant> = get_json(client, &url, None).await?;
        all.extend(page.items);
        cursor = page.next_cursor;
        if cursor.is_none() || all.len() >= MAX_RESTAURANTS {
            break;
        }
    }
    all.truncate(MAX_RESTAURANTS);
    Ok(all)
}

async fn get_json<T: serde::de::DeserializeOwned>(
    client: &Client,
    url: &str,
    auth: Option<HeaderValue>,
) -> anyhow::Result<T> {
    let mut request = client.get(url);
    if let Some(auth) = auth {
        request = request.header(AUTHORIZATION, auth);
    }
    let response = request.send().await.with_context(|| format!("GET {url}"))?;
    let status = response.status();
    if status != StatusCode::OK {
        bail!(
            "GET {url} answered {status}: {}",
            response.text().await.unwrap_or_default()
        );
    }
    response
        .json()
        .await
        .with_context(|| format!("GET {url}: unexpected answer"))
}

async fn login(client: &Client, api: &str, email: &str) -> anyhow::Result<Option<String>> {
    let r = client
        .post(format!("{api}/auth/login"))
        .json(&LoginRequest {
            email: email.to_owned(),
            password: PASSWORD.to_owned(),
        })
        .send()
        .await
        .with_context(|| format!("logging in {email}"))?;
    match r.status() {
        StatusCode::OK => Ok(Some(r.json::<TokenResponse>().await?.access_token)),
        StatusCode::UNAUTHORIZED => Ok(None),
        other => bail!(
            "logging in {email} answered {other}: {}",
            r.text().await.unwrap_or_default()
        ),
    }
}

/// Logs a load customer in, registering the account on first use.
async fn login_or_register(client: &Client, api: &str, email: &str) -> anyhow::Result<String> {
    if let Some(token) = login(client, api, email).await? {
        return Ok(token);
    }
    let r = client
        .post(format!("{api}/auth/register"))
        .json(&RegisterRequest {
            email: email.to_owned(),
            password: PASSWORD.to_owned(),
            name: "Load Customer".to_owned(),
            role: "customer".to_owned(),
        })
        .send()
        .await
        .with_context(|| format!("registering {email}"))?;
    match r.status() {
        StatusCode::CREATED => {}
        StatusCode::CONFLICT => bail!("{email} exists with another password"),
        other => bail!(
            "registering {email} answered {other}: {}",
            r.text().await.unwrap_or_default()
        ),
    }
    login(client, api, email)
        .await?
        .with_context(|| format!("{email} was registered but cannot log in"))
}

fn bearer(token: &str) -> anyhow::Result<HeaderValue> {
    HeaderValue::from_str(&format!("Bearer {token}")).context("a token fits in a header")
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("load-{nanos:x}-{:x}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;
    use contracts::catalog::MenuItem;
    use contracts::{MenuItemId, RestaurantId};

    fn item(available: bool, stock: Option<i64>) -> MenuItem {
        MenuItem {
            id: MenuItemId::new(),
            name: "Dish".into(),
            description: String::new(),
            price_cents: 900,
            available,
            stock,
        }
    }

    fn detail(auto_accept: bool, menu: Vec<MenuItem>) -> RestaurantDetail {
        RestaurantDetail {
            restaurant: Restaurant {
                id: RestaurantId::new(),
                name: "Kitchen".into(),
                cuisine: "Test".into(),
                address: "1 Test St".into(),
                location: Location {
                    lat: 52.5,
                    lng: 13.4,
                },
                open: true,
                auto_accept,
            },
            menu,
        }
    }

    #[test]
    fn orders_go_only_to_auto_accepting_restaurants_with_unlimited_items() {
        let unlimited = item(true, None);
        let d = detail(
            true,
            vec![item(false, None), item(true, Some(5)), unlimited.clone()],
        );
        let body: PlaceOrder =
            serde_json::from_slice(&happy_path_order(&d).expect("ok").expect("orderable"))
                .expect("a PlaceOrder");
        assert_eq!(body.restaurant_id, d.restaurant.id);
        assert_eq!(body.items.len(), 1);
        assert_eq!(body.items[0].menu_item_id, unlimited.id);
        assert_eq!(body.payment_method, "pm_card_visa");

        assert!(
            happy_path_order(&detail(false, vec![item(true, None)]))
                .expect("ok")
                .is_none(),
            "a restaurant accepting by hand is not the happy path"
        );
        assert!(
            happy_path_order(&detail(true, vec![item(true, Some(1000))]))
                .expect("ok")
                .is_none(),
            "stock runs out"
        );
    }

    #[test]
    fn search_terms_are_percent_encoded() {
        assert_eq!(encode("fish & chips"), "fish%20%26%20chips");
        assert_eq!(encode("vegan"), "vegan");
        assert_eq!(encode("café"), "caf%C3%A9");
    }
}
