//! Demo data, created through the public API like any client would.
//!
//! Seeding creates only what is missing (accounts that do not exist yet, the
//! demo owner's restaurants if they have none), so it is safe on every start
//! and never duplicates data.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// How long seeding waits out a 503. The gateway fails fast while its
/// breaker to a service is open, and calls made while `up` was starting
/// (a browser, a script polling the gateway) open it for a second.
const PATIENCE: Duration = Duration::from_secs(5);

/// Sends `request`, again after a pause while it is answered 503, for up to
/// [`PATIENCE`]; the first other answer, or the last 503. Only for requests
/// that are safe to repeat (a sign-in, a read, a registration that answers
/// 409 once done): a 503 may come from a service that acted on the request
/// and failed to answer. Creations are sent once, after the owner's
/// restaurants were read, which closes any breaker on the way.
async fn send(request: reqwest::RequestBuilder) -> anyhow::Result<reqwest::Response> {
    let started = Instant::now();
    let mut pause = Duration::from_millis(100);
    loop {
        let attempt = request
            .try_clone()
            .context("a seeding request can be sent again")?;
        let response = attempt.send().await?;
        if response.status() != StatusCode::SERVICE_UNAVAILABLE
            || started.elapsed() + pause > PATIENCE
        {
            return Ok(response);
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(1));
    }
}

/// The password of every demo account.
pub(crate) const DEMO_PASSWORD: &str = "feastfast";

/// `(role, email, name)` of the demo accounts.
pub(crate) const DEMO_ACCOUNTS: &[(&str, &str, &str)] = &[
    ("customer", "customer@feastfast.test", "Casey Customer"),
    ("restaurant_owner", "owner@feastfast.test", "Olive Owner"),
    ("courier", "courier@feastfast.test", "Cody Courier"),
    ("courier", "courier2@feastfast.test", "Robin Rider"),
    ("courier", "courier3@feastfast.test", "Sam Scooter"),
];

struct DemoRestaurant {
    name: &'static str,
    cuisine: &'static str,
    address: &'static str,
    lat: f64,
    lng: f64,
    auto_accept: bool,
    menu: &'static [(&'static str, &'static str, i64)],
}

/// Around Berlin Mitte, so couriers have real distances to cover.
const RESTAURANTS: &[DemoRestaurant] = &[
    DemoRestaurant {
        name: "Trattoria Nonna Lucia",
        cuisine: "Italian",
        address: "Torstraße 120, Berlin",
        lat: 52.5291,
        lng: 13.4011,
        auto_accept: true,
        menu: &[
            ("Margherita", "Tomato, fior di latte, basil", 950),
            ("Diavola", "Spicy salami, tomato, mozzarella", 1150),
            (
                "Tagliatelle al ragù",
                "Slow-cooked beef and pork ragù",
                1390,
            ),
            ("Risotto ai funghi", "Porcini, parmesan, thyme", 1450),
            ("Tiramisù", "Mascarpone, espresso, cocoa", 650),
            ("San Pellegrino", "Sparkling water, 0.5 l", 350),
        ],
    },
    DemoRestaurant {
        name: "Sakura Sushi Bar",
        cuisine: "Japanese",
        address: "Kastanienallee 45, Berlin",
        lat: 52.5384,
        lng: 13.4107,
        auto_accept: true,
        menu: &[
            (
                "Salmon nigiri (2 pcs)",
                "Norwegian salmon on seasoned rice",
                590,
            ),
            ("California roll", "Crab, avocado, cucumber, tobiko", 890),
            ("Spicy tuna roll", "Tuna, sriracha mayo, spring onion", 990),
            (
                "Chicken katsu curry",
                "Panko chicken, Japanese curry, rice",
                1350,
            ),
            ("Miso soup", "Tofu, wakame, spring onion", 390),
            ("Matcha mochi", "Two pieces", 450),
        ],
    },
    DemoRestaurant {
        name: "Curry Corner",
        cuisine: "Indian",
        address: "Oranienstraße 12, Berlin",
        lat: 52.5012,
        lng: 13.4197,
        auto_accept: true,
        menu: &[
            (
                "Butter chicken",
                "Tandoori chicken in tomato-butter sauce",
                1290,
            ),
            (
                "Chana masala",
                "Chickpeas, onion, tomato, garam masala",
                990,
            ),
            (
                "Lamb rogan josh",
                "Kashmiri chilli, yoghurt, slow-cooked lamb",
                1490,
            ),
            ("Garlic naan", "From the tandoor", 350),
            ("Mango lassi", "Yoghurt, mango, cardamom", 420),
        ],
    },
    DemoRestaurant {
        name: "Taquería La Paloma",
        cuisine: "Mexican",
        address: "Weserstraße 200, Berlin",
        lat: 52.4869,
        lng: 13.4363,
        auto_accept: true,
        menu: &[
            (
                "Tacos al pastor (3)",
                "Marinated pork, pineapple, coriander",
                1090,
            ),
            (
                "Burrito de pollo",
                "Chicken, rice, black beans, salsa verde",
                1190,
            ),
            ("Quesadilla", "Oaxaca cheese, poblano, corn tortilla", 890),
            ("Guacamole & totopos", "Made to order", 690),
            ("Horchata", "Rice, cinnamon, vanilla", 390),
        ],
    },
    DemoRestaurant {
        name: "Burger Werk",
        cuisine: "American",
        address: "Warschauer Straße 33, Berlin",
        lat: 52.5075,
        lng: 13.4508,
        auto_accept: false,
        menu: &[
            (
                "Classic cheeseburger",
                "Dry-aged beef, cheddar, pickles",
                1190,
            ),
            ("Smoky BBQ burger", "Bacon, onion rings, BBQ sauce", 1390),
            (
                "Veggie burger",
                "Black bean patty, avocado, chipotle mayo",
                1150,
            ),
            ("Fries", "Hand-cut, sea salt", 450),
            ("Chocolate shake", "Vanilla ice cream, cocoa", 590),
        ],
    },
    DemoRestaurant {
        name: "Green Bowl",
        cuisine: "Vegan",
        address: "Friedrichstraße 68, Berlin",
        lat: 52.5106,
        lng: 13.3889,
        auto_accept: true,
        menu: &[
            ("Buddha bowl", "Quinoa, roast squash, hummus, tahini", 1190),
            ("Falafel wrap", "Falafel, pickled cabbage, herbs", 890),
            ("Tofu pad thai", "Rice noodles, peanuts, lime", 1250),
            ("Lentil soup", "Red lentils, cumin, lemon", 650),
            ("Carrot cake", "Walnuts, cashew frosting", 550),
        ],
    },
];

/// Makes sure the demo accounts and restaurants exist.
pub(crate) async fn ensure_demo_data(gateway: &str) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    for (role, email, name) in DEMO_ACCOUNTS {
        let r =
            send(client.post(format!("{gateway}/api/v1/auth/register")).json(
                &json!({"email": email, "password": DEMO_PASSWORD, "name": name, "role": role}),
            ))
            .await?;
        match r.status() {
            StatusCode::CREATED | StatusCode::CONFLICT => {}
            other => bail!("registering {email} answered {other}: {}", r.text().await?),
        }
    }

    let token = login(&client, gateway, "owner@feastfast.test").await?;
    let mine: Value = send(
        client
            .get(format!("{gateway}/api/v1/restaurants/mine"))
            .bearer_auth(&token),
    )
    .await?
    .error_for_status()?
    .json()
    .await?;
    if mine["items"]
        .as_array()
        .is_some_and(|items| !items.is_empty())
    {
        return Ok(());
    }
    for r in RESTAURANTS {
        let created: Value = client
            .post(format!("{gateway}/api/v1/restaurants"))
            .bearer_auth(&token)
            .json(&json!({
                "name": r.name, "cuisine": r.cuisine, "address": r.address,
                "location": {"lat": r.lat, "lng": r.lng}, "auto_accept": r.auto_accept,
            }))
            .send()
            .await?
            .error_for_status()
            .with_context(|| format!("creating {}", r.name))?
            .json()
            .await?;
        let id = created["id"]
            .as_str()
            .context("a created restaurant has an id")?;
        for (name, description, price) in r.menu {
            client
                .post(format!("{gateway}/api/v1/restaurants/{id}/menu"))
                .bearer_auth(&token)
                .json(&json!({"name": name, "description": description, "price_cents": price}))
                .send()
                .await?
                .error_for_status()
                .with_context(|| format!("adding {name} to {}", r.name))?;
        }
    }
    Ok(())
}

async fn login(client: &reqwest::Client, gateway: &str, email: &str) -> anyhow::Result<String> {
    let body: Value = send(
        client
            .post(format!("{gateway}/api/v1/auth/login"))
            .json(&json!({"email": email, "password": DEMO_PASSWORD})),
    )
    .await?
    .error_for_status()
    .with_context(|| format!("logging in as {email}"))?
    .json()
    .await?;
    body["access_token"]
        .as_str()
        .map(str::to_owned)
        .context("a login answer has an access token")
}

pub(crate) fn print_logins() {
    println!("Demo logins (password: {DEMO_PASSWORD}):");
    for (role, email, _) in DEMO_ACCOUNTS {
        println!("  {role:<17} {email}");
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use axum::http::StatusCode as Status;

    use super::*;

    /// A gateway that answers 503 to the first `unavailable` calls, then
    /// 201; and how many calls it had.
    async fn gateway(unavailable: u32) -> (String, Arc<AtomicU32>) {
        let calls = Arc::new(AtomicU32::new(0));
        let counted = calls.clone();
        let app = axum::Router::new().route(
            "/",
            axum::routing::post(move || {
                let calls = counted.clone();
                async move {
                    if calls.fetch_add(1, Ordering::SeqCst) < unavailable {
                        Status::SERVICE_UNAVAILABLE
                    } else {
                        Status::CREATED
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds");
        let url = format!("http://{}/", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, calls)
    }

    #[tokio::test]
    async fn seeding_waits_out_a_gateway_that_answers_503_for_a_moment() {
        let (url, calls) = gateway(2).await;
        let client = reqwest::Client::new();
        let answer = send(client.post(&url).json(&json!({"name": "x"})))
            .await
            .expect("answered");
        assert_eq!(answer.status(), StatusCode::CREATED);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn seeding_gives_up_on_a_503_that_outlasts_its_patience() {
        let (url, calls) = gateway(u32::MAX).await;
        let started = Instant::now();
        let answer = send(reqwest::Client::new().post(&url))
            .await
            .expect("answered");
        assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(started.elapsed() <= PATIENCE + Duration::from_secs(1));
        assert!(calls.load(Ordering::SeqCst) > 3);
    }
}
