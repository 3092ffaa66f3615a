//! The listener every service serves from: each connection with
//! `TCP_NODELAY`, and at most `MAX_CONNECTIONS` of them at once if set.
//!
//! axum accepts as many connections as clients open, and each holds
//! buffers and a task: an overloaded gateway held 4,096 of a load
//! generator's connections and about 100 MB. Past a limit, `accept`
//! waits for a connection to close, and new ones wait in the kernel's
//! accept queue: memory stays bounded and the connections already served
//! keep their speed. The limit is off by default, because a slot is held
//! by an idle keep-alive connection as much as by a busy one, and
//! `axum::serve` cannot close idle connections to make room: a client
//! with a large pool (the load generator at 16,000 pages/s) then had new
//! connections wait for its idle ones to time out, 10 s. Set it where the
//! clients' pools are known to be smaller than the limit.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A TCP listener that serves at most `limit` connections at once.
pub struct Capped {
    inner: TcpListener,
    permits: Arc<Semaphore>,
}

impl Capped {
    pub fn new(inner: TcpListener, limit: usize) -> Self {
        Self {
            inner,
            permits: Arc::new(Semaphore::new(limit.clamp(1, Semaphore::MAX_PERMITS))),
        }
    }
}

/// An accepted connection; its slot frees when it is dropped.
pub struct CappedStream {
    stream: TcpStream,
    _slot: OwnedSemaphorePermit,
}

/// The peer of a connection, for `ConnectInfo<PeerAddr>` (the gateway's
/// per-client rate limit).
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

impl Listener for Capped {
    type Io = CappedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let slot = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .expect("the connection semaphore is never closed");
        // axum's accept retries (and backs off on) accept errors itself.
        let (stream, addr) = Listener::accept(&mut self.inner).await;
        // Answers are written whole; waiting to coalesce them only adds
        // latency on a request/response connection.
        let _ = stream.set_nodelay(true);
        (
            CappedStream {
                stream,
                _slot: slot,
            },
            addr,
        )
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

impl Connected<IncomingStream<'_, Capped>> for PeerAddr {
    fn connect_info(stream: IncomingStream<'_, Capped>) -> Self {
        PeerAddr(*stream.remote_addr())
    }
}

impl AsyncRead for CappedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for CappedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// Serves an echo of one byte per connection on a capped listener.
    async fn echo_server(limit: usize) -> SocketAddr {
        let inner = TcpListener::bind("127.0.0.1:0").await.expect("binds");
        let addr = inner.local_addr().expect("addr");
        let mut listener = Capped::new(inner, limit);
        tokio::spawn(async move {
            loop {
                let (mut io, _) = listener.accept().await;
                tokio::spawn(async move {
                    let mut byte = [0u8; 1];
                    while io.read_exact(&mut byte).await.is_ok() {
                        if io.write_all(&byte).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        addr
    }

    async fn echoes(stream: &mut TcpStream) -> bool {
        let mut byte = [0u8; 1];
        stream.write_all(b"x").await.is_ok()
            && tokio::time::timeout(Duration::from_millis(300), stream.read_exact(&mut byte))
                .await
                .is_ok_and(|r| r.is_ok())
    }

    #[tokio::test]
    async fn a_connection_past_the_limit_waits_until_one_closes() {
        let addr = echo_server(2).await;
        let mut first = TcpStream::connect(addr).await.expect("connects");
        let mut second = TcpStream::connect(addr).await.expect("connects");
        assert!(echoes(&mut first).await && echoes(&mut second).await);

        // The kernel completes the handshake, but nobody serves it yet.
        let mut third = TcpStream::connect(addr).await.expect("queued");
        assert!(!echoes(&mut third).await, "served past the limit");

        drop(first);
        let mut byte = [0u8; 1];
        tokio::time::timeout(Duration::from_secs(5), third.read_exact(&mut byte))
            .await
            .expect("served once a slot frees")
            .expect("echoed");
        assert!(echoes(&mut second).await, "the others kept being served");
    }
}
