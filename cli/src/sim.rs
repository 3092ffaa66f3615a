//! The simulators of `feastfast up`: restaurants that cook and couriers
//! that ride, so a demo order completes by itself.
//!
//! They act only through the public API, as a person with the demo logins
//! would: the kitchen marks accepted tickets of its auto-accepting
//! restaurants ready after the prep time; each courier goes online, rides
//! toward the restaurant of its assignment, picks up, rides to the
//! customer and delivers, reporting its position as it goes. Time runs
//! `speed` times faster than real (movement and prep), so a demo order
//! takes about a minute at the default speed.

use std::time::Duration;

use contracts::catalog::Location;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

use crate::seed::DEMO_PASSWORD;

/// How fast simulated time runs, and the courier's real-world speed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SimConfig {
    pub(crate) speed: f64,
    pub(crate) courier_kmh: f64,
    /// Real-world preparation time of an order.
    pub(crate) prep: Duration,
    pub(crate) tick: Duration,
}

impl SimConfig {
    pub(crate) fn new(speed: f64) -> Self {
        Self {
            speed,
            courier_kmh: 25.0,
            prep: Duration::from_secs(60),
            tick: Duration::from_millis(500),
        }
    }

    fn prep_in_sim(&self) -> Duration {
        self.prep.div_f64(self.speed)
    }

    /// How far a courier gets in one tick, in km.
    fn step_km(&self) -> f64 {
        self.courier_kmh * self.speed * self.tick.as_secs_f64() / 3600.0
    }
}

/// Starts the simulators against the gateway at `gateway`.
pub(crate) fn start(gateway: String, config: SimConfig) {
    let couriers = [
        (
            "courier@feastfast.test",
            Location {
                lat: 52.5200,
                lng: 13.4050,
            },
        ),
        (
            "courier2@feastfast.test",
            Location {
                lat: 52.5050,
                lng: 13.4300,
            },
        ),
        (
            "courier3@feastfast.test",
            Location {
                lat: 52.5300,
                lng: 13.3900,
            },
        ),
    ];
    for (email, home) in couriers {
        let api = Api::new(&gateway, email);
        tokio::spawn(async move { courier(api, home, config).await });
    }
    let api = Api::new(&gateway, "owner@feastfast.test");
    tokio::spawn(async move { kitchen(api, config).await });
}

/// A logged-in client of the public API.
struct Api {
    client: Client,
    base: String,
    email: &'static str,
    token: Option<String>,
}

impl Api {
    fn new(gateway: &str, email: &'static str) -> Api {
        Api {
            client: Client::new(),
            base: format!("{gateway}/api/v1"),
            email,
            token: None,
        }
    }

    async fn login(&mut self) -> Option<String> {
        let body: Value = self
            .client
            .post(format!("{}/auth/login", self.base))
            .json(&json!({"email": self.email, "password": DEMO_PASSWORD}))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let token = body["access_token"].as_str()?.to_owned();
        self.token = Some(token.clone());
        Some(token)
    }

    /// Sends a request, logging in (again) when needed; `None` when the
    /// platform cannot answer right now.
    async fn call(
        &mut self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Option<(StatusCode, Value)> {
        for _ in 0..2 {
            let token = match &self.token {
                Some(t) => t.clone(),
                None => self.login().await?,
            };
            let mut req = self
                .client
                .request(method.clone(), format!("{}{path}", self.base))
                .bearer_auth(token);
            if let Some(b) = &body {
                req = req.json(b);
            }
            let response = req.timeout(Duration::from_secs(5)).send().await.ok()?;
            if response.status() == StatusCode::UNAUTHORIZED {
                self.token = None;
                continue;
            }
            let status = response.status();
            return Some((status, response.json().await.unwrap_or(Value::Null)));
        }
        None
    }
}

async fn kitchen(mut api: Api, config: SimConfig) {
    loop {
        tokio::time::sleep(config.tick).await;
        let Some((StatusCode::OK, mine)) = api
            .call(reqwest::Method::GET, "/restaurants/mine", None)
            .await
        else {
            continue;
        };
        let restaurants: Vec<String> = mine["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| r["auto_accept"] == true)
            .filter_map(|r| r["id"].as_str().map(str::to_owned))
            .collect();
        let cooked_before = platform::time::format(
            time_now()
                - time::Duration::try_from(config.prep_in_sim()).unwrap_or(time::Duration::ZERO),
        );
        for id in restaurants {
            let Some((StatusCode::OK, tickets)) = api
                .call(
                    reqwest::Method::GET,
                    &format!("/restaurants/{id}/tickets?status=ACCEPTED"),
                    None,
                )
                .await
            else {
                continue;
            };
            for ticket in tickets["items"].as_array().into_iter().flatten() {
                let accepted_at = ticket["updated_at"].as_str().unwrap_or_default();
                if accepted_at <= cooked_before.as_str() {
                    let order = ticket["order_id"].as_str().unwrap_or_default();
                    api.call(
                        reqwest::Method::POST,
                        &format!("/restaurants/{id}/tickets/{order}/ready"),
                        None,
                    )
                    .await;
                }
            }
        }
    }
}

fn time_now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

async fn courier(mut api: Api, home: Location, config: SimConfig) {
    let mut here = home;
    loop {
        tokio::time::sleep(config.tick).await;
        let Some((StatusCode::OK, mine)) = api
            .call(reqwest::Method::GET, "/couriers/me/deliveries", None)
            .await
        else {
            // Not known to delivery yet (or it is down): go online.
            api.call(
                reqwest::Method::PUT,
                "/couriers/me",
                Some(json!({"available": true, "location": here})),
            )
            .await;
            continue;
        };
        let active = mine["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|d| d["status"] == "ASSIGNED" || d["status"] == "PICKED_UP")
            .cloned();
        let Some(delivery) = active else {
            if mine["items"].as_array().is_some_and(Vec::is_empty) {
                api.call(
                    reqwest::Method::PUT,
                    "/couriers/me",
                    Some(json!({"available": true, "location": here})),
                )
                .await;
            }
            continue;
        };
        let picked_up = delivery["status"] == "PICKED_UP";
        let target_json = if picked_up {
            &delivery["dropoff"]
        } else {
            &delivery["pickup"]
        };
        let Ok(target) = serde_json::from_value::<Location>(target_json.clone()) else {
            continue;
        };
        here = toward(here, target, config.step_km());
        api.call(
            reqwest::Method::PUT,
            "/couriers/me",
            Some(json!({"available": true, "location": here})),
        )
        .await;
        if here.distance_km(&target) < 0.01 {
            let id = delivery["id"].as_str().unwrap_or_default();
            let action = if picked_up { "deliver" } else { "pickup" };
            api.call(
                reqwest::Method::POST,
                &format!("/deliveries/{id}/{action}"),
                None,
            )
            .await;
        }
    }
}

/// `km` along the straight line from `from` to `to` (or `to`, if closer).
fn toward(from: Location, to: Location, km: f64) -> Location {
    let distance = from.distance_km(&to);
    if distance <= km || distance == 0.0 {
        return to;
    }
    let f = km / distance;
    Location {
        lat: from.lat + (to.lat - from.lat) * f,
        lng: from.lng + (to.lng - from.lng) * f,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_courier_moves_a_step_and_arrives_without_overshooting() {
        let a = Location {
            lat: 52.50,
            lng: 13.40,
        };
        let b = Location {
            lat: 52.52,
            lng: 13.40,
        };
        let step = toward(a, b, 1.0);
        assert!((a.distance_km(&step) - 1.0).abs() < 0.01);
        assert_eq!(toward(step, b, 5.0), b);
    }
}
