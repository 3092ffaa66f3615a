//! The load generator's `GET`s: keep-alive HTTP/1 connections to the
//! gateway, driven by hyper directly.
//!
//! The generator shares the machine with the platform it measures, so
//! every microsecond it spends per request is one the platform does not
//! get. reqwest's layers around hyper (redirects, retries, its pool keyed
//! by URL) were a third of the generator's CPU at 10,000 pages/s; a page,
//! a search or an order's status needs none of them. Orders (a few per
//! second) still go through reqwest.
//!
//! Like reqwest's pool, a request takes an idle connection or opens one,
//! so connections grow with the requests in flight and are reused after.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{AUTHORIZATION, HOST, HeaderValue};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use reqwest::Url;
use tokio::net::TcpStream;

/// `GET`s to one `http://` origin.
pub(crate) struct Getter {
    /// `host:port`, to connect to.
    addr: String,
    /// The `Host` header.
    host: HeaderValue,
    idle: Mutex<Vec<SendRequest<Empty<Bytes>>>>,
    timeout: Duration,
}

impl Getter {
    /// For `origin`'s scheme, host and port; `None` unless it is plain
    /// `http` (the caller keeps reqwest for TLS).
    pub(crate) fn for_origin(origin: &Url, timeout: Duration) -> anyhow::Result<Option<Getter>> {
        if origin.scheme() != "http" {
            return Ok(None);
        }
        let Some(host) = origin.host_str() else {
            bail!("{origin} names no host");
        };
        let port = origin.port_or_known_default().unwrap_or(80);
        let authority = match origin.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        Ok(Some(Getter {
            addr: format!("{host}:{port}"),
            host: HeaderValue::from_str(&authority)
                .with_context(|| format!("{authority} is not a Host header"))?,
            idle: Mutex::new(Vec::new()),
            timeout,
        }))
    }

    /// `GET url` (this origin's): the status and the whole body, or why
    /// there is none; an error past the timeout.
    pub(crate) async fn get(
        &self,
        url: &Url,
        auth: Option<&HeaderValue>,
    ) -> Result<(StatusCode, Bytes), String> {
        let target = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        };
        match tokio::time::timeout(self.timeout, self.exchange(&target, auth)).await {
            Ok(answer) => answer,
            Err(_) => Err(format!("no answer within {:?}", self.timeout)),
        }
    }

    async fn exchange(
        &self,
        target: &str,
        auth: Option<&HeaderValue>,
    ) -> Result<(StatusCode, Bytes), String> {
        let mut request = self.request(target, auth)?;
        let mut sender = match self.take_idle() {
            Some(sender) => sender,
            None => self.connect().await?,
        };
        let response = loop {
            match sender.try_send_request(request).await {
                Ok(response) => break response,
                // An idle connection the gateway had closed: the request
                // never left, so it goes again on a new connection.
                Err(mut e) => match e.take_message() {
                    Some(unsent) => {
                        request = unsent;
                        sender = self.connect().await?;
                    }
                    None => return Err(e.into_error().to_string()),
                },
            }
        };
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("body: {e}"))?
            .to_bytes();
        if !sender.is_closed() {
            self.idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(sender);
        }
        Ok((status, body))
    }

    fn request(
        &self,
        target: &str,
        auth: Option<&HeaderValue>,
    ) -> Result<Request<Empty<Bytes>>, String> {
        let mut request = Request::get(target).header(HOST, &self.host);
        if let Some(auth) = auth {
            request = request.header(AUTHORIZATION, auth);
        }
        request.body(Empty::new()).map_err(|e| e.to_string())
    }

    fn take_idle(&self) -> Option<SendRequest<Empty<Bytes>>> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some(sender) = idle.pop() {
            if !sender.is_closed() {
                return Some(sender);
            }
        }
        None
    }

    async fn connect(&self) -> Result<SendRequest<Empty<Bytes>>, String> {
        let stream = TcpStream::connect(&self.addr)
            .await
            .map_err(|e| format!("cannot connect to {}: {e}", self.addr))?;
        let _ = stream.set_nodelay(true);
        let (mut sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("HTTP/1 handshake with {}: {e}", self.addr))?;
        // The connection's reads and writes, until either side closes it.
        tokio::spawn(async move {
            let _ = connection.await;
        });
        sender
            .ready()
            .await
            .map_err(|e| format!("{} closed at once: {e}", self.addr))?;
        Ok(sender)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::net::SocketAddr;
    use std::sync::Arc;

    use axum::extract::{ConnectInfo, Request as AxumRequest};
    use axum::routing::get;

    use super::*;

    /// A server that answers `GET /echo` with its path, query and
    /// authorization, and keeps the client addresses it saw (one per
    /// connection).
    async fn server() -> (Url, Arc<Mutex<HashSet<SocketAddr>>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let peers = Arc::new(Mutex::new(HashSet::new()));
        let seen = peers.clone();
        let app = axum::Router::new().route(
            "/echo",
            get(
                move |ConnectInfo(peer): ConnectInfo<SocketAddr>, req: AxumRequest| async move {
                    seen.lock().expect("never poisoned").insert(peer);
                    let auth = req
                        .headers()
                        .get(AUTHORIZATION)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-")
                        .to_owned();
                    format!("{} {auth}", req.uri())
                },
            ),
        );
        tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
        });
        (Url::parse(&format!("http://{addr}/")).expect("url"), peers)
    }

    #[tokio::test]
    async fn gets_path_query_and_token_and_reuses_one_connection() {
        let (origin, peers) = server().await;
        let getter = Getter::for_origin(&origin, Duration::from_secs(5))
            .expect("an http origin")
            .expect("plain http is ours");
        let url = origin.join("/echo?q=thai&limit=20").expect("url");
        let token = HeaderValue::from_static("Bearer t");
        for _ in 0..3 {
            let (status, body) = getter.get(&url, Some(&token)).await.expect("answered");
            assert_eq!(status, StatusCode::OK);
            assert_eq!(&body[..], b"/echo?q=thai&limit=20 Bearer t");
        }
        let (status, _) = getter
            .get(&origin.join("/nowhere").expect("url"), None)
            .await
            .expect("answered");
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (_, body) = getter.get(&url, None).await.expect("answered");
        assert_eq!(&body[..], b"/echo?q=thai&limit=20 -");
        assert_eq!(
            peers.lock().expect("never poisoned").len(),
            1,
            "one keep-alive connection served them all"
        );
    }

    #[tokio::test]
    async fn a_refused_connection_is_an_error_and_https_is_left_to_reqwest() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        let origin = Url::parse(&format!("http://{addr}/")).expect("url");
        let getter = Getter::for_origin(&origin, Duration::from_secs(5))
            .expect("an http origin")
            .expect("plain http is ours");
        let error = getter
            .get(&origin, None)
            .await
            .expect_err("nothing listens");
        assert!(error.contains("cannot connect"), "{error}");
        let https = Url::parse("https://example.org/").expect("url");
        assert!(
            Getter::for_origin(&https, Duration::from_secs(5))
                .expect("valid")
                .is_none()
        );
    }
}
