//! The edge cache: the restaurant pages (`GET /api/v1/restaurants/{id}`)
//! and lists (`GET /api/v1/restaurants?…`) answered by the gateway itself,
//! without a hop to restaurants, for as long as nothing they show changed.
//!
//! Freshness comes from restaurants' own events: every change to what a
//! page shows (a new restaurant, a menu item added or changed, a stock
//! count moved) commits a `restaurant.changed` event with it, and the
//! gateway follows restaurants' events (the feed, or NATS) and drops the
//! pages it names, and every list, when one arrives. Three guards keep a
//! page from outliving its truth:
//! - an answer is served from the cache only while the gateway is
//!   following restaurants' events (a follow that fails stops the hits);
//! - an answer read before an invalidation is never stored after it (a
//!   generation counter: a fill keeps the generation it started in);
//! - an entry lives at most `ttl` (10 s), whatever the events say.
//!
//! On the feed the follow polls restaurants itself, so its death stops
//! the hits at once; on NATS the follow outlives restaurants (nothing can
//! change a page while it is down), so hits go on until the ttl.
//!
//! So a change shows at the edge within the event's trip (milliseconds)
//! and never later than the ttl; a write through this gateway drops what
//! it touches before its answer leaves, so a writer reads its own write. When restaurants cannot answer, the last
//! copy of a page is served marked stale (`"stale": true` in the body,
//! `x-feastfast-stale: true` and a `Warning` header): browsing goes on
//! with yesterday's menu rather than a 503; ordering still checks stock
//! and prices at restaurants, so a stale page can never sell what is gone.
//!
//! Metrics: `gateway_edge_cache_total{result}` (`hit`, `miss`, `stale`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use contracts::events::{CloudEvent, Event};

use crate::AppState;
use crate::forward::forward;
use crate::routes::Auth;

/// How long an entry is trusted without an event saying otherwise.
const TTL: Duration = Duration::from_secs(10);
/// The most entries kept (pages and lists together).
const MAX_ENTRIES: usize = 10_000;
/// The largest answer kept.
const MAX_BODY: usize = 256 * 1024;

struct Entry {
    body: Bytes,
    content_type: Option<HeaderValue>,
    etag: Option<HeaderValue>,
    /// The restaurant a page shows; `None` for a list.
    restaurant: Option<String>,
    stored: Instant,
    /// Cleared by an invalidation; the entry stays as the stale copy.
    fresh: bool,
    /// The generation its read started in (set by `store`).
    read_in: u64,
}

/// The cache and what it knows of restaurants' events.
pub(crate) struct EdgeCache {
    entries: Mutex<HashMap<String, Entry>>,
    generation: AtomicU64,
    following: AtomicBool,
    ttl: Duration,
}

impl Default for EdgeCache {
    fn default() -> Self {
        Self::new(TTL)
    }
}

impl EdgeCache {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
            following: AtomicBool::new(false),
            ttl,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries
            .lock()
            .expect("the edge cache's lock is never held across a panic")
    }

    /// A fresh copy of `key`, if the cache may answer it.
    fn fresh(&self, key: &str) -> Option<Response> {
        if !self.following.load(Ordering::Acquire) {
            return None;
        }
        let entries = self.lock();
        let entry = entries.get(key)?;
        (entry.fresh && entry.stored.elapsed() < self.ttl).then(|| respond(entry, "hit"))
    }

    /// The last copy of `key`, however old, marked stale.
    fn stale(&self, key: &str) -> Option<Response> {
        let entries = self.lock();
        let entry = entries.get(key)?;
        let mut page: serde_json::Value = serde_json::from_slice(&entry.body).ok()?;
        page.as_object_mut()?
            .insert("stale".to_owned(), serde_json::Value::Bool(true));
        let mut response = respond(entry, "stale");
        *response.body_mut() = Body::from(serde_json::to_vec(&page).ok()?);
        let headers = response.headers_mut();
        headers.remove(header::ETAG);
        headers.insert("x-feastfast-stale", HeaderValue::from_static("true"));
        headers.insert(
            header::WARNING,
            HeaderValue::from_static("110 - \"Response is Stale\""),
        );
        Some(response)
    }

    /// Keeps an answer read in `generation`: fresh unless something changed
    /// since; if something did, still as the stale copy, unless a copy read
    /// later is kept already (the stale copy is the newest answer seen, and
    /// an answer read across a change is newer than what the cache held).
    fn store(&self, key: String, generation: u64, mut entry: Entry) {
        let mut entries = self.lock();
        let changed = self.generation.load(Ordering::Acquire) != generation;
        if changed
            && entries
                .get(&key)
                .is_some_and(|kept| kept.read_in > generation)
        {
            return;
        }
        entry.read_in = generation;
        entry.fresh = entry.fresh && !changed;
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(&key) {
            entries.retain(|_, e| e.fresh);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(key, entry);
    }

    /// Restaurant `id`'s page and every list are no longer fresh.
    pub(crate) fn invalidate(&self, id: &str) {
        let mut entries = self.lock();
        self.generation.fetch_add(1, Ordering::AcqRel);
        for entry in entries.values_mut() {
            if entry.restaurant.as_deref().is_none_or(|r| r == id) {
                entry.fresh = false;
            }
        }
    }

    /// Nothing is fresh any more (events may have been missed).
    fn invalidate_all(&self) {
        let mut entries = self.lock();
        self.generation.fetch_add(1, Ordering::AcqRel);
        for entry in entries.values_mut() {
            entry.fresh = false;
        }
    }
}

/// What the follow of restaurants' events tells the cache.
impl crate::follow::Listener for EdgeCache {
    fn event(&self, event: &CloudEvent) {
        if event.kind == contracts::catalog::RestaurantChanged::TYPE
            && let Some(id) = &event.subject
        {
            self.invalidate(id);
        }
    }

    fn connected(&self, resumed: bool) {
        // A follow that starts afresh (from the head, or a new NATS
        // subscription) may have missed changes meanwhile.
        if !resumed {
            self.invalidate_all();
        }
        self.following.store(true, Ordering::Release);
    }

    fn lost(&self) {
        self.following.store(false, Ordering::Release);
    }
}

/// Counts an answer in `gateway_edge_cache_total{result}`. The three
/// handles are made on first use (after the server installed its
/// recorder), not looked up by their label on every hit.
fn count(result: &'static str) {
    static HANDLES: [(&str, std::sync::OnceLock<metrics::Counter>); 3] = [
        ("hit", std::sync::OnceLock::new()),
        ("miss", std::sync::OnceLock::new()),
        ("stale", std::sync::OnceLock::new()),
    ];
    if let Some((_, handle)) = HANDLES.iter().find(|(name, _)| *name == result) {
        handle
            .get_or_init(|| metrics::counter!("gateway_edge_cache_total", "result" => result))
            .increment(1);
    }
}

fn respond(entry: &Entry, result: &'static str) -> Response {
    count(result);
    let mut response = Response::new(Body::from(entry.body.clone()));
    let headers = response.headers_mut();
    if let Some(v) = &entry.content_type {
        headers.insert(header::CONTENT_TYPE, v.clone());
    }
    if let Some(v) = &entry.etag {
        headers.insert(header::ETAG, v.clone());
    }
    headers.insert("x-cache", HeaderValue::from_static(result));
    response
}

/// `GET` of a restaurant page or list: from the cache when it may answer,
/// else from restaurants (kept for next time), else the stale copy.
pub(crate) async fn get(state: &AppState, service: &str, auth: Auth, req: Request) -> Response {
    let cache = &state.edge;
    let uri = req.uri();
    let key = uri
        .path_and_query()
        .map_or_else(|| uri.path(), |pq| pq.as_str());
    if let Some(hit) = cache.fresh(key) {
        return hit;
    }
    let key = key.to_owned();
    let generation = cache.generation.load(Ordering::Acquire);
    let response = forward(state, service, auth, req).await;
    match response.status() {
        StatusCode::OK => {
            let (mut parts, body) = response.into_parts();
            let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
                return Response::from_parts(parts, Body::empty());
            };
            count("miss");
            let restaurant = page_of(&key);
            cache.store(
                key,
                generation,
                Entry {
                    body: bytes.clone(),
                    content_type: parts.headers.get(header::CONTENT_TYPE).cloned(),
                    etag: parts.headers.get(header::ETAG).cloned(),
                    restaurant,
                    stored: Instant::now(),
                    fresh: true,
                    read_in: generation,
                },
            );
            parts
                .headers
                .insert("x-cache", HeaderValue::from_static("miss"));
            Response::from_parts(parts, Body::from(bytes))
        }
        status if status.is_server_error() => cache.stale(&key).unwrap_or(response),
        _ => response,
    }
}

/// A write to restaurants through this gateway (a new restaurant, a menu
/// change, a ticket): its page and every list are dropped as soon as the
/// answer is back, so the writer reads its own write at once; the event
/// that follows does the same for everyone else's gateway.
pub(crate) async fn write(state: &AppState, service: &str, auth: Auth, req: Request) -> Response {
    let restaurant = req
        .uri()
        .path()
        .strip_prefix("/api/v1/restaurants/")
        .map(|rest| rest.split('/').next().unwrap_or_default().to_owned())
        .unwrap_or_default();
    let response = forward(state, service, auth, req).await;
    state.edge.invalidate(&restaurant);
    response
}

/// The restaurant a cached path shows: `Some(id)` for
/// `/api/v1/restaurants/{id}`, `None` for a list.
fn page_of(key: &str) -> Option<String> {
    let path = key.split('?').next().unwrap_or(key);
    path.strip_prefix("/api/v1/restaurants/")
        .filter(|id| !id.is_empty() && !id.contains('/'))
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::follow::Listener;

    fn entry(restaurant: Option<&str>) -> Entry {
        Entry {
            body: Bytes::from_static(br#"{"name":"Sakura"}"#),
            content_type: Some(HeaderValue::from_static("application/json")),
            etag: None,
            restaurant: restaurant.map(str::to_owned),
            stored: Instant::now(),
            fresh: true,
            read_in: 0,
        }
    }

    fn filled() -> EdgeCache {
        let cache = EdgeCache::new(Duration::from_secs(60));
        cache.connected(false);
        let g = cache.generation.load(Ordering::Acquire);
        cache.store("/api/v1/restaurants/a".into(), g, entry(Some("a")));
        cache.store("/api/v1/restaurants/b".into(), g, entry(Some("b")));
        cache.store("/api/v1/restaurants?q=x".into(), g, entry(None));
        cache
    }

    #[test]
    fn a_change_drops_its_page_and_every_list_and_nothing_else() {
        let cache = filled();
        cache.invalidate("a");
        assert!(cache.fresh("/api/v1/restaurants/a").is_none());
        assert!(cache.fresh("/api/v1/restaurants?q=x").is_none());
        assert!(cache.fresh("/api/v1/restaurants/b").is_some());
        // The dropped page is still there as the stale copy.
        assert!(cache.stale("/api/v1/restaurants/a").is_some());
    }

    #[test]
    fn an_answer_read_before_a_change_is_not_kept_after_it() {
        let cache = filled();
        let before = cache.generation.load(Ordering::Acquire);
        cache.invalidate("c");
        cache.store("/api/v1/restaurants/c".into(), before, entry(Some("c")));
        assert!(cache.fresh("/api/v1/restaurants/c").is_none());
        // ... but it is the newest copy there is, for a stale answer.
        assert!(cache.stale("/api/v1/restaurants/c").is_some());
    }

    #[test]
    fn a_read_across_a_change_replaces_an_older_copy_never_a_newer_one() {
        let cache = filled();
        let key = "/api/v1/restaurants/a";
        let copy = |body: &'static [u8]| Entry {
            body: Bytes::from_static(body),
            ..entry(Some("a"))
        };
        let first = cache.generation.load(Ordering::Acquire);
        cache.invalidate("a");
        let second = cache.generation.load(Ordering::Acquire);
        cache.invalidate("a");
        // Read in `second`, answered after another change: newer than the
        // copy from `first`, so it becomes the stale copy.
        cache.store(key.into(), second, copy(br#"{"stock":4}"#));
        assert_eq!(kept_body(&cache, key), &br#"{"stock":4}"#[..]);
        // A slower read that started in `first` must not bring back its
        // older answer.
        cache.store(key.into(), first, copy(br#"{"stock":5}"#));
        assert_eq!(kept_body(&cache, key), &br#"{"stock":4}"#[..]);
    }

    fn kept_body(cache: &EdgeCache, key: &str) -> Bytes {
        cache.lock().get(key).expect("a copy").body.clone()
    }

    #[test]
    fn no_hits_while_the_events_are_not_followed_and_a_fresh_follow_forgets() {
        let cache = filled();
        cache.lost();
        assert!(cache.fresh("/api/v1/restaurants/b").is_none());
        cache.connected(true);
        assert!(
            cache.fresh("/api/v1/restaurants/b").is_some(),
            "resumed: nothing missed"
        );
        cache.lost();
        cache.connected(false);
        assert!(
            cache.fresh("/api/v1/restaurants/b").is_none(),
            "from the head: may have missed"
        );
    }

    #[test]
    fn entries_expire_after_the_ttl() {
        let cache = EdgeCache::new(Duration::from_millis(20));
        cache.connected(false);
        cache.store(
            "/api/v1/restaurants/a".into(),
            cache.generation.load(Ordering::Acquire),
            entry(Some("a")),
        );
        assert!(cache.fresh("/api/v1/restaurants/a").is_some());
        std::thread::sleep(Duration::from_millis(30));
        assert!(cache.fresh("/api/v1/restaurants/a").is_none());
    }

    #[test]
    fn a_stale_copy_says_so() {
        let cache = filled();
        let r = cache.stale("/api/v1/restaurants/a").expect("a copy");
        assert_eq!(r.headers()["x-feastfast-stale"], "true");
        assert!(r.headers().contains_key(header::WARNING));
    }

    #[test]
    fn pages_are_told_from_lists() {
        assert_eq!(page_of("/api/v1/restaurants/abc"), Some("abc".into()));
        assert_eq!(page_of("/api/v1/restaurants?cuisine=Thai"), None);
        assert_eq!(page_of("/api/v1/restaurants"), None);
    }
}
