//! The public list: search, filter and pages.

use std::collections::HashSet;

use platform::testing::assert_problem;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, id_of, invalid_fields, names};

/// An app with a small catalog, created out of name order.
async fn app_with_catalog() -> TestApp {
    let app = TestApp::spawn().await;
    let owner = app.owner();
    for (name, cuisine) in [
        ("Trattoria Roma", "Italian"),
        ("Sushi Bar", "Japanese"),
        ("Pizza Palace", "italian"),
        ("Burger Joint", "American"),
        ("Pasta e Basta", "Italian Fusion"),
    ] {
        app.seed_restaurant(&owner, name, cuisine).await;
    }
    app
}

#[tokio::test]
async fn an_empty_catalog_is_one_empty_page() {
    let app = TestApp::spawn().await;
    let r = app.list("").await;
    assert_eq!(r.status(), StatusCode::OK);
    let page: Value = r.json().await.expect("json");
    assert_eq!(page, json!({"items": [], "next_cursor": null}));
}

#[tokio::test]
async fn anyone_lists_restaurants_in_name_order() {
    let app = app_with_catalog().await;

    let r = app.list("").await;

    assert_eq!(r.status(), StatusCode::OK);
    let page: Value = r.json().await.expect("json");
    assert_eq!(
        names(&page),
        [
            "Burger Joint",
            "Pasta e Basta",
            "Pizza Palace",
            "Sushi Bar",
            "Trattoria Roma"
        ]
    );
    assert_eq!(page["next_cursor"], Value::Null);
    let first = &page["items"][0];
    assert_eq!(first["cuisine"], "American");
    assert_eq!(first["open"], true);
    assert!(first["location"]["lat"].is_number());
    assert!(first.get("menu").is_none());
}

#[tokio::test]
async fn q_matches_a_name_or_a_cuisine_in_any_case() {
    let app = app_with_catalog().await;

    assert_eq!(app.list_names("q=PIZZA").await, ["Pizza Palace"]);
    assert_eq!(app.list_names("q=bAr").await, ["Sushi Bar"]);
    // "ital" is in three cuisines, spelt in two cases.
    assert_eq!(
        app.list_names("q=ital").await,
        ["Pasta e Basta", "Pizza Palace", "Trattoria Roma"]
    );
    // "asta" is only in a name.
    assert_eq!(app.list_names("q=ASTA").await, ["Pasta e Basta"]);
    assert!(app.list_names("q=thai").await.is_empty());
    // A blank q filters nothing.
    assert_eq!(app.list_names("q=%20").await.len(), 5);
}

#[tokio::test]
async fn q_matches_wildcard_characters_literally() {
    let app = TestApp::spawn().await;
    let owner = app.owner();
    app.seed_restaurant(&owner, "100% Vegan", "Vegan").await;
    app.seed_restaurant(&owner, "Snake_Case Diner", "Diner")
        .await;
    app.seed_restaurant(&owner, "Back\\Slash", "Bistro").await;
    app.seed_restaurant(&owner, "Plain", "Bistro").await;

    assert_eq!(app.list_names("q=%25").await, ["100% Vegan"]);
    assert_eq!(app.list_names("q=_").await, ["Snake_Case Diner"]);
    assert_eq!(app.list_names("q=%5C").await, ["Back\\Slash"]);
}

#[tokio::test]
async fn cuisine_is_an_exact_match_in_any_case() {
    let app = app_with_catalog().await;

    assert_eq!(
        app.list_names("cuisine=ITALIAN").await,
        ["Pizza Palace", "Trattoria Roma"]
    );
    assert!(app.list_names("cuisine=ital").await.is_empty());
    assert_eq!(
        app.list_names("cuisine=italian%20fusion").await,
        ["Pasta e Basta"]
    );
    // Both filters at once.
    assert_eq!(
        app.list_names("cuisine=italian&q=roma").await,
        ["Trattoria Roma"]
    );
}

#[tokio::test]
async fn pages_of_two_visit_every_restaurant_once_in_name_order() {
    let app = TestApp::spawn().await;
    let owner = app.owner();
    // Two restaurants share a name: the id breaks the tie, so neither is
    // skipped or repeated at a page boundary.
    let mut created = Vec::new();
    for name in ["Delta", "Bravo", "Alpha", "Bravo", "Echo"] {
        created.push(app.seed_restaurant(&owner, name, "Any").await);
    }

    let mut seen_ids = Vec::new();
    let mut seen_names = Vec::new();
    let mut pages = 0;
    let mut query = "limit=2".to_owned();
    loop {
        let r = app.list(&query).await;
        assert_eq!(r.status(), StatusCode::OK);
        let page: Value = r.json().await.expect("json");
        pages += 1;
        let items = page["items"].as_array().expect("items");
        assert!(items.len() <= 2);
        seen_ids.extend(items.iter().map(id_of));
        seen_names.extend(names(&page));
        match page["next_cursor"].as_str() {
            Some(cursor) => query = format!("limit=2&cursor={cursor}"),
            None => break,
        }
        assert!(pages < 10, "the pages never end");
    }

    assert_eq!(pages, 3);
    assert_eq!(seen_names, ["Alpha", "Bravo", "Bravo", "Delta", "Echo"]);
    let unique: HashSet<&String> = seen_ids.iter().collect();
    assert_eq!(unique.len(), 5);
    let all: HashSet<String> = created.iter().map(id_of).collect();
    assert_eq!(seen_ids.into_iter().collect::<HashSet<_>>(), all);
}

#[tokio::test]
async fn a_page_that_ends_exactly_at_the_limit_is_the_last() {
    let app = TestApp::spawn().await;
    let owner = app.owner();
    for name in ["A", "B", "C", "D"] {
        app.seed_restaurant(&owner, name, "Any").await;
    }
    let first: Value = app.list("limit=2").await.json().await.expect("json");
    let cursor = first["next_cursor"].as_str().expect("a second page");
    let second: Value = app
        .list(&format!("limit=2&cursor={cursor}"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(names(&second), ["C", "D"]);
    assert_eq!(second["next_cursor"], Value::Null);
}

#[tokio::test]
async fn filters_apply_on_every_page() {
    let app = app_with_catalog().await;
    let first: Value = app
        .list("q=a&cuisine=italian&limit=1")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(names(&first), ["Pizza Palace"]);
    let cursor = first["next_cursor"].as_str().expect("a second page");
    let second: Value = app
        .list(&format!("q=a&cuisine=italian&limit=1&cursor={cursor}"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(names(&second), ["Trattoria Roma"]);
    assert_eq!(second["next_cursor"], Value::Null);
}

#[tokio::test]
async fn a_limit_outside_1_to_100_is_422() {
    let app = app_with_catalog().await;
    for limit in ["0", "101", "-1", "abc", ""] {
        let r = app.list(&format!("limit={limit}")).await;
        let problem = assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(invalid_fields(&problem), ["limit"], "limit={limit}");
    }
    assert_eq!(app.list_names("limit=1").await.len(), 1);
    assert_eq!(app.list_names("limit=100").await.len(), 5);
}

#[tokio::test]
async fn an_overlong_q_is_422() {
    let app = TestApp::spawn().await;
    let r = app.list(&format!("q={}", "x".repeat(101))).await;
    let problem = assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(invalid_fields(&problem), ["q"]);
}

#[tokio::test]
async fn a_malformed_cursor_is_400() {
    let app = app_with_catalog().await;
    for cursor in ["garbage!", "bm90IGpzb24", "WyJhIiwiNDIiXQ"] {
        let r = app.list(&format!("cursor={cursor}")).await;
        assert_problem(r, StatusCode::BAD_REQUEST).await;
    }
}
