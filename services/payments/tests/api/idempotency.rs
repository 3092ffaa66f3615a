//! Idempotency keys: a repeat gets the first answer and changes nothing.

use platform::testing::assert_problem;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, authorize_body, new_order};

/// Status, `content-type` and body bytes of an answer.
async fn parts(r: reqwest::Response) -> (StatusCode, String, Vec<u8>) {
    let status = r.status();
    let content_type = r.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let body = r.bytes().await.expect("body").to_vec();
    (status, content_type, body)
}

#[tokio::test]
async fn a_repeated_authorization_gets_the_first_answer_byte_for_byte() {
    let app = TestApp::spawn().await;
    let order = new_order();
    let first = parts(app.authorize(&order, 1234, "pm_card_visa").await).await;

    let again = app.authorize(&order, 1234, "pm_card_visa").await;
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again = parts(again).await;

    assert_eq!(first.0, StatusCode::OK);
    assert_eq!(again, first);
    assert_eq!(app.ledger(&order).await, [("authorize".to_owned(), 1234)]);
    assert_eq!(app.count("payments").await, 1);
    assert_eq!(app.count("outbox").await, 1);
}

#[tokio::test]
async fn a_repeated_decline_is_replayed_not_tried_again() {
    let app = TestApp::spawn().await;
    let order = new_order();
    let first = parts(app.authorize(&order, 900, "pm_card_chargeDeclined").await).await;
    let again = parts(app.authorize(&order, 900, "pm_card_chargeDeclined").await).await;
    assert_eq!(again, first);
    assert_eq!(app.ledger(&order).await, [("decline".to_owned(), 900)]);
}

#[tokio::test]
async fn a_repeat_gets_the_first_answer_even_after_later_changes() {
    let app = TestApp::spawn().await;
    let order = app.authorized_order(1000).await;
    let first = parts(
        app.capture(&order, "capture", &json!({"amount_cents": 800}))
            .await,
    )
    .await;
    let r = app
        .refund(&order, "refund", &json!({"amount_cents": 300}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);

    // The saga, recovering from a crash, repeats its capture step: it gets
    // the capture's answer, not a 409 and not today's state.
    let again = parts(
        app.capture(&order, "capture", &json!({"amount_cents": 800}))
            .await,
    )
    .await;

    assert_eq!(again, first);
    let captured: Value = serde_json::from_slice(&first.2).expect("json");
    assert_eq!(captured["status"], "captured");
    assert_eq!(app.payment(&order).await["status"], "partially_refunded");
    assert_eq!(
        app.ledger(&order).await,
        [
            ("authorize".to_owned(), 1000),
            ("capture".to_owned(), 800),
            ("refund".to_owned(), 300)
        ]
    );
}

#[tokio::test]
async fn every_command_is_replayed() {
    let app = TestApp::spawn().await;
    let voided = app.authorized_order(500).await;
    let first = parts(app.void(&voided, "void").await).await;
    assert_eq!(parts(app.void(&voided, "void").await).await, first);

    let refunded = app.captured_order(500).await;
    let first = parts(app.refund(&refunded, "refund", &json!({})).await).await;
    assert_eq!(first.0, StatusCode::OK);
    assert_eq!(
        parts(app.refund(&refunded, "refund", &json!({})).await).await,
        first
    );

    assert_eq!(app.ledger(&voided).await.len(), 2);
    assert_eq!(app.ledger(&refunded).await.len(), 3);
}

#[tokio::test]
async fn the_same_key_with_another_request_is_refused() {
    let app = TestApp::spawn().await;
    let order = app.authorized_order(1000).await;
    let key = format!("{order}:authorize");
    let before = app.payment(&order).await;

    // Another amount, another method, another order, another endpoint.
    let other_order = new_order();
    let attempts = [
        (
            "/internal/payments/authorize".to_owned(),
            authorize_body(&order, 999, "pm_card_visa"),
        ),
        (
            "/internal/payments/authorize".to_owned(),
            authorize_body(&order, 1000, "pm_card_chargeDeclined"),
        ),
        (
            "/internal/payments/authorize".to_owned(),
            authorize_body(&other_order, 1000, "pm_card_visa"),
        ),
        (format!("/internal/payments/{order}/capture"), json!({})),
    ];
    for (path, body) in attempts {
        let r = app.command(&path, &key, &body).await;
        let problem = assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert!(
            problem["detail"]
                .as_str()
                .is_some_and(|d| d.contains("different request")),
            "{problem}"
        );
    }

    assert_eq!(app.payment(&order).await, before);
    assert_eq!(app.count("payments").await, 1);
    assert_eq!(app.count("ledger_entries").await, 1);
}

#[tokio::test]
async fn spacing_and_field_order_do_not_make_another_request() {
    let app = TestApp::spawn().await;
    let order = new_order();
    let first = parts(app.authorize(&order, 700, "pm_card_visa").await).await;

    let body = format!(
        "{{ \"payment_method\" : \"pm_card_visa\",\n \"amount_cents\": 700, \"order_id\": \"{order}\" }}"
    );
    let r = app
        .api
        .request(
            Method::POST,
            "/internal/payments/authorize",
            Some(&app.token),
        )
        .header("Idempotency-Key", format!("{order}:authorize"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("request");

    assert_eq!(parts(r).await, first);
    assert_eq!(app.count("ledger_entries").await, 1);
}

#[tokio::test]
async fn a_refused_command_leaves_its_key_free() {
    let app = TestApp::spawn().await;
    let order = app.authorized_order(1000).await;

    // Too much: refused, nothing recorded, so the key is still free...
    let r = app
        .capture(&order, "capture", &json!({"amount_cents": 5000}))
        .await;
    assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    // ...and the corrected command under the same key applies.
    let r = app.capture(&order, "capture", &json!({})).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(app.payment(&order).await["captured_cents"], 1000);

    // A void of an order with no payment yet is a 404 that decides nothing:
    // once the payment exists, the same key voids it.
    let late = crate::helpers::new_order();
    assert_problem(app.void(&late, "void").await, StatusCode::NOT_FOUND).await;
    let r = app.authorize(&late, 300, "pm_card_visa").await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = app.void(&late, "void").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(app.payment(&late).await["status"], "voided");
}

#[tokio::test]
async fn concurrent_requests_with_one_key_have_one_effect() {
    let app = TestApp::spawn().await;
    let order = new_order();
    let body = authorize_body(&order, 4200, "pm_card_visa");

    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let api = app.api.clone();
        let token = app.token.clone();
        let (body, key) = (body.clone(), format!("{order}:authorize"));
        tasks.spawn(async move {
            let r = api
                .request(Method::POST, "/internal/payments/authorize", Some(&token))
                .header("Idempotency-Key", key)
                .json(&body)
                .send()
                .await
                .expect("request");
            let replayed = r.headers().contains_key("idempotent-replayed");
            (replayed, parts(r).await)
        });
    }
    let results = tasks.join_all().await;
    let replayed = results.iter().filter(|(replayed, _)| *replayed).count();
    let answers: Vec<_> = results.into_iter().map(|(_, answer)| answer).collect();

    // One request applied; the other nine waited for it and got its answer.
    assert_eq!(replayed, 9);
    assert_eq!(answers.len(), 10);
    assert_eq!(answers[0].0, StatusCode::OK);
    assert!(answers.iter().all(|a| *a == answers[0]), "{answers:?}");
    assert_eq!(app.ledger(&order).await, [("authorize".to_owned(), 4200)]);
    assert_eq!(app.count("payments").await, 1);
    assert_eq!(app.count("idempotency_keys").await, 1);
    assert_eq!(app.count("outbox").await, 1);
}

#[tokio::test]
async fn concurrent_captures_with_different_keys_capture_once() {
    let app = TestApp::spawn().await;
    let order = app.authorized_order(1000).await;

    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..10 {
        let api = app.api.clone();
        let token = app.token.clone();
        let order = order.clone();
        tasks.spawn(async move {
            api.request(
                Method::POST,
                &format!("/internal/payments/{order}/capture"),
                Some(&token),
            )
            .header("Idempotency-Key", format!("{order}:capture-{i}"))
            .json(&json!({}))
            .send()
            .await
            .expect("request")
            .status()
        });
    }
    let statuses = tasks.join_all().await;

    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let conflicts = statuses
        .iter()
        .filter(|s| **s == StatusCode::CONFLICT)
        .count();
    assert_eq!((ok, conflicts), (1, 9), "{statuses:?}");
    assert_eq!(
        app.ledger(&order).await,
        [("authorize".to_owned(), 1000), ("capture".to_owned(), 1000)]
    );
}
