//! The web UI: the files under the repository's `web/`, served at `/`.
//!
//! The files are compiled into the gateway's binary (one table below), so
//! the UI needs nothing at run time: no CDN, no build step, no directory to
//! deploy next to the binary. With `FEASTFAST_WEB_DIR` set, the same files
//! are read from that directory on each request instead, so the UI can be
//! edited without rebuilding.
//!
//! Architecture invariant: only the paths in [`FILES`] are served, all of
//! them outside `/api/`; an unknown path under `/api/` stays a problem+json
//! 404 (the server's fallback), never the HTML page. The UI routes by the
//! URL's fragment (`#/orders/{id}`), so deep links need no server fallback.

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use platform::ApiError;

/// One file of the UI: its path below `web/`, content type and bytes.
struct File {
    path: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

macro_rules! files {
    ($($path:literal => $type:expr),* $(,)?) => {
        &[$(File {
            path: $path,
            content_type: $type,
            bytes: include_bytes!(concat!("../../../web/", $path)),
        }),*]
    };
}

const JS: &str = "text/javascript; charset=utf-8";

static FILES: &[File] = files![
    "index.html" => "text/html; charset=utf-8",
    "style.css" => "text/css; charset=utf-8",
    "favicon.svg" => "image/svg+xml",
    "js/app.js" => JS,
    "js/api.js" => JS,
    "js/dom.js" => JS,
    "js/map.js" => JS,
    "js/sse.js" => JS,
    "js/views/signin.js" => JS,
    "js/views/customer.js" => JS,
    "js/views/order.js" => JS,
    "js/views/owner.js" => JS,
    "js/views/courier.js" => JS,
    "js/views/ops.js" => JS,
];

/// Where the UI's files come from.
#[derive(Clone)]
struct Source {
    /// `FEASTFAST_WEB_DIR`: read the files from disk on each request.
    dir: Option<Arc<PathBuf>>,
}

/// `GET /` (the page) and `GET /web/{path}` (everything it loads).
pub(crate) fn routes<S: Clone + Send + Sync + 'static>(dir: Option<PathBuf>) -> Router<S> {
    let source = Source {
        dir: dir.map(Arc::new),
    };
    let index = source.clone();
    Router::new()
        .route(
            "/",
            get(move |headers: HeaderMap| {
                let source = index.clone();
                async move { serve(&source, "index.html", &headers).await }
            }),
        )
        .route(
            "/web/{*path}",
            get(move |Path(path): Path<String>, headers: HeaderMap| {
                let source = source.clone();
                async move { serve(&source, &path, &headers).await }
            }),
        )
}

async fn serve(source: &Source, path: &str, headers: &HeaderMap) -> Response {
    let Some(file) = FILES.iter().find(|f| f.path == path) else {
        return ApiError::not_found(format!("the web UI has no file {path:?}")).into_response();
    };
    let bytes: Vec<u8> = match &source.dir {
        Some(dir) => match tokio::fs::read(dir.join(file.path)).await {
            Ok(bytes) => bytes,
            Err(e) => {
                return ApiError::internal(anyhow::anyhow!(
                    "cannot read {} from FEASTFAST_WEB_DIR: {e}",
                    file.path
                ))
                .into_response();
            }
        },
        None => file.bytes.to_vec(),
    };
    let etag = format!("\"{:016x}\"", fnv1a(&bytes));
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag));
    // `no-cache`: the browser keeps the file but asks each time (a cheap
    // 304), so a new gateway binary is never hidden behind a stale module.
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(file.content_type),
            )],
            bytes,
        )
            .into_response()
    };
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(value) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, value);
    }
    h.insert(
        header::HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// FNV-1a, 64 bits: a content hash for the `ETag`, not for security.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_is_in_the_table_once_and_outside_the_api() {
        let mut paths: Vec<&str> = FILES.iter().map(|f| f.path).collect();
        paths.sort_unstable();
        let before = paths.len();
        paths.dedup();
        assert_eq!(paths.len(), before, "a file is listed twice");
        assert!(paths.iter().all(|p| !p.starts_with("api")));
        assert!(FILES.iter().all(|f| !f.bytes.is_empty()));
    }

    /// A file added to `web/` but not to the table would be a 404 in the
    /// browser; the browser tests under `web/e2e/` are not served.
    #[test]
    fn every_file_of_the_ui_is_served() {
        fn walk(dir: &std::path::Path, root: &std::path::Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).expect("web/ is readable") {
                let path = entry.expect("entry").path();
                let relative = path.strip_prefix(root).expect("below web/");
                if relative.starts_with("e2e") {
                    continue;
                }
                if path.is_dir() {
                    walk(&path, root, out);
                } else {
                    out.push(relative.to_string_lossy().replace('\\', "/"));
                }
            }
        }
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web");
        let mut on_disk = Vec::new();
        walk(&root, &root, &mut on_disk);
        for file in on_disk {
            assert!(
                FILES.iter().any(|f| f.path == file),
                "web/{file} is not in web.rs's FILES table"
            );
        }
    }

    #[test]
    fn the_etag_follows_the_content() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_ne!(fnv1a(b"a"), fnv1a(b"b"));
    }
}
