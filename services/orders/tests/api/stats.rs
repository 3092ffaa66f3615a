//! The ops view's counts of orders by status.

use contracts::identity::Role;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{TestWorld, order_body};

#[tokio::test]
async fn status_counts_follow_the_orders_and_need_a_service_token() {
    let w = TestWorld::spawn().await;
    let (_, restaurant, pizza, salad) = w.restaurant(true).await;
    let customer = w.token(Role::Customer);
    let counts = |token: String| {
        let api = &w.api;
        async move {
            api.get("/internal/orders/status-counts", Some(&token))
                .await
        }
    };

    let empty: Value = counts(w.service_token()).await.json().await.expect("json");
    assert_eq!(empty["CONFIRMED"], 0, "{empty:#}");
    assert_eq!(empty.as_object().expect("object").len(), 10, "{empty:#}");

    for (key, method) in [
        ("a", "pm_card_visa"),
        ("b", "pm_card_visa"),
        ("c", "pm_card_chargeDeclined"),
    ] {
        let r = w
            .place(
                &customer,
                key,
                &order_body(&restaurant, &pizza, &salad, 1, method),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let counted: Value = counts(w.service_token()).await.json().await.expect("json");
    assert_eq!(counted["CONFIRMED"], 2, "{counted:#}");
    assert_eq!(counted["REJECTED"], 1, "{counted:#}");
    assert_eq!(counted["DELIVERED"], 0, "{counted:#}");

    let r = counts(customer).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}
