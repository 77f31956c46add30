//! Kept-alive HTTP/1.1 connections to one plain-`http://` upstream (a self-hosted model
//! server), reused last-in first-out.
//!
//! hyper-util's pooled client (still used over TLS, where HTTP/2 may be negotiated) keys its
//! pool by scheme and authority and hashes that key with SipHash on every checkout and every
//! return, behind a lock, with its own checkout futures around hyper's: about 6% of the
//! gateway's instructions per relayed request. An upstream here is one authority, so its
//! pool is one stack of idle connections.
//!
//! A connection goes back on the stack when the response body it carried has been read to
//! its end (`Lease::release`), and not when the body was dropped before (the client went
//! away, a limit passed): hyper closes that connection. A request that could not be written
//! on a kept connection, because the server had closed it meanwhile, is retried on a new one;
//! one that was written is never sent twice.

use crate::UpstreamError;
use bytes::Bytes;
use domain::time::monotonic_coarse;
use http::Request;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Idle connections kept per upstream, at most; more are closed when returned.
const MAX_IDLE: usize = 1024;

type Sender = SendRequest<Full<Bytes>>;

struct Idle {
    tx: Sender,
    /// When it was given back, by `monotonic_coarse` (a connection is kept for a minute;
    /// the precise clock would cost more than the check is worth on every request).
    since: Duration,
}

impl Idle {
    fn expired(&self, now: Duration, timeout: Duration) -> bool {
        now.saturating_sub(self.since) >= timeout
    }
}

pub(crate) struct Http1Pool {
    inner: Arc<Inner>,
}

struct Inner {
    host: String,
    port: u16,
    connect_timeout: Duration,
    idle_timeout: Duration,
    idle: Mutex<Vec<Idle>>,
}

/// A connection that carried a request; `release` puts it back for the next one.
pub(crate) struct Lease {
    tx: Sender,
    pool: Arc<Inner>,
}

impl Lease {
    /// The response body was read to its end: the connection can carry another request.
    pub(crate) fn release(self) {
        self.pool.put(self.tx);
    }
}

impl Http1Pool {
    pub(crate) fn new(
        host: &str,
        port: u16,
        connect_timeout: Duration,
        idle_timeout: Duration,
    ) -> Self {
        Http1Pool {
            inner: Arc::new(Inner {
                // `[::1]` as a URL writes it; `TcpStream::connect` wants the bare address.
                host: host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_owned(),
                port,
                connect_timeout,
                idle_timeout,
                idle: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Sends `req` (its URI in origin form, its `Host` header set) on a kept connection, or
    /// on a new one when none is left or a kept one turns out closed before it was written.
    pub(crate) async fn send(
        &self,
        mut req: Request<Full<Bytes>>,
    ) -> Result<(http::Response<Incoming>, Lease), UpstreamError> {
        loop {
            let (mut tx, kept) = match self.inner.take() {
                Some(tx) => (tx, true),
                None => (self.inner.connect().await?, false),
            };
            if kept && tx.ready().await.is_err() {
                continue;
            }
            match tx.try_send_request(req).await {
                Ok(resp) => {
                    let lease = Lease {
                        tx,
                        pool: self.inner.clone(),
                    };
                    return Ok((resp, lease));
                }
                Err(mut e) => match e.take_message() {
                    // Not written: the server closed the kept connection first.
                    Some(back) if kept => req = back,
                    _ => {
                        return Err(UpstreamError::Transport(crate::client::root_cause(
                            e.error(),
                        )))
                    }
                },
            }
        }
    }

    /// Idle connections held now.
    #[cfg(test)]
    fn idle(&self) -> usize {
        self.inner.idle.lock().map_or(0, |v| v.len())
    }
}

impl Inner {
    /// The most recently returned connection that is still open and not idle too long.
    fn take(&self) -> Option<Sender> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let now = monotonic_coarse();
        while let Some(c) = idle.pop() {
            if !c.tx.is_closed() && !c.expired(now, self.idle_timeout) {
                return Some(c.tx);
            }
        }
        None
    }

    fn put(&self, tx: Sender) {
        if tx.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let (now, timeout) = (monotonic_coarse(), self.idle_timeout);
        // The oldest are at the bottom: once one has idled too long, close all such.
        if idle.first().is_some_and(|c| c.expired(now, timeout)) {
            idle.retain(|c| !c.tx.is_closed() && !c.expired(now, timeout));
        }
        if idle.len() < MAX_IDLE {
            idle.push(Idle { tx, since: now });
        }
    }

    async fn connect(&self) -> Result<Sender, UpstreamError> {
        let addr = (self.host.as_str(), self.port);
        let stream =
            match tokio::time::timeout(self.connect_timeout, tokio::net::TcpStream::connect(addr))
                .await
            {
                Err(_) => {
                    return Err(UpstreamError::Connect(format!(
                        "no connection within {:?}",
                        self.connect_timeout
                    )))
                }
                Ok(Err(e)) => return Err(UpstreamError::Connect(e.to_string())),
                Ok(Ok(s)) => s,
            };
        let _ = stream.set_nodelay(true);
        let (tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| UpstreamError::Connect(crate::client::root_cause(&e)))?;
        // The connection's driver: it ends when the connection closes (the server closed
        // it, or its sender was dropped: not returned, or closed as idle). Like hyper-util's
        // client, it runs as a task of its own; it holds no usage or money to drain.
        #[allow(clippy::disallowed_methods)]
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(tx)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// What the fake server does after answering a request.
    #[derive(Clone, Copy)]
    pub(crate) enum After {
        KeepOpen,
        /// Close the connection a moment after answering (a keep-alive timeout).
        Close,
    }

    /// A bare HTTP/1.1 server that answers every request with `ok` (a 4,000-byte body when
    /// the path is `/big`; a chunked event stream ending in `[DONE]` when the request
    /// accepts `text/event-stream`), counts
    /// connections, and records each request's head.
    pub(crate) async fn server(after: After) -> (u16, Arc<AtomicUsize>, Arc<Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let heads = Arc::new(Mutex::new(Vec::new()));
        let (count, seen) = (accepted.clone(), heads.clone());
        #[allow(clippy::disallowed_methods)]
        tokio::spawn(async move {
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                count.fetch_add(1, Ordering::SeqCst);
                let seen = seen.clone();
                #[allow(clippy::disallowed_methods)]
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                            match s.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                            continue;
                        };
                        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                        let length = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length: "))
                            .map_or(0, |n| n.trim().parse::<usize>().unwrap());
                        while buf.len() < end + 4 + length {
                            let n = s.read(&mut chunk).await.unwrap();
                            buf.extend_from_slice(&chunk[..n]);
                        }
                        buf.drain(..end + 4 + length);
                        let body = if head.starts_with("POST /big ") {
                            "x".repeat(4000)
                        } else {
                            "ok".to_owned()
                        };
                        let resp = if head.contains("accept: text/event-stream") {
                            // The last event and the chunked body's end in one write.
                            let events = ["data: {\"n\":1}\n\n", "data: [DONE]\n\n"];
                            let mut r = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                                         transfer-encoding: chunked\r\n\r\n"
                                .to_owned();
                            for e in events {
                                r.push_str(&format!("{:x}\r\n{e}\r\n", e.len()));
                            }
                            r.push_str("0\r\n\r\n");
                            r
                        } else {
                            format!(
                                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                                body.len()
                            )
                        };
                        seen.lock().unwrap().push(head);
                        if s.write_all(resp.as_bytes()).await.is_err() {
                            return;
                        }
                        if let After::Close = after {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            return;
                        }
                    }
                });
            }
        });
        (port, accepted, heads)
    }

    fn pool(port: u16) -> Http1Pool {
        Http1Pool::new(
            "127.0.0.1",
            port,
            Duration::from_secs(5),
            Duration::from_secs(60),
        )
    }

    fn post(path: &str, port: u16) -> Request<Full<Bytes>> {
        let mut req = Request::new(Full::new(Bytes::from_static(b"{}")));
        *req.method_mut() = http::Method::POST;
        *req.uri_mut() = path.parse().unwrap();
        req.headers_mut().insert(
            http::header::HOST,
            format!("127.0.0.1:{port}").parse().unwrap(),
        );
        req
    }

    /// Sends, reads the whole body, returns the connection; the body's text.
    async fn round_trip(p: &Http1Pool, path: &str, port: u16) -> String {
        let (resp, lease) = p.send(post(path, port)).await.unwrap();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        lease.release();
        String::from_utf8(body.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn requests_one_after_another_share_one_connection() {
        let (port, accepted, heads) = server(After::KeepOpen).await;
        let p = pool(port);
        for _ in 0..5 {
            assert_eq!(round_trip(&p, "/v1/chat/completions", port).await, "ok");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        assert_eq!(p.idle(), 1);
        assert_eq!(heads.lock().unwrap().len(), 5);
    }

    #[tokio::test]
    async fn concurrent_requests_open_connections_that_are_then_reused() {
        let (port, accepted, _) = server(After::KeepOpen).await;
        let p = pool(port);
        let (a, b, c) = tokio::join!(
            p.send(post("/a", port)),
            p.send(post("/b", port)),
            p.send(post("/c", port))
        );
        for (resp, lease) in [a.unwrap(), b.unwrap(), c.unwrap()] {
            resp.into_body().collect().await.unwrap();
            lease.release();
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
        assert_eq!(p.idle(), 3);
        for _ in 0..6 {
            round_trip(&p, "/d", port).await;
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 3, "no new connection");
    }

    #[tokio::test]
    async fn a_connection_the_server_closed_is_replaced_without_an_error() {
        let (port, accepted, heads) = server(After::Close).await;
        let p = pool(port);
        assert_eq!(round_trip(&p, "/one", port).await, "ok");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(round_trip(&p, "/two", port).await, "ok");
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
        assert_eq!(heads.lock().unwrap().len(), 2, "each request sent once");
    }

    #[tokio::test]
    async fn a_body_not_read_to_its_end_does_not_give_its_connection_back() {
        let (port, accepted, _) = server(After::KeepOpen).await;
        let p = pool(port);
        let (resp, lease) = p.send(post("/big", port)).await.unwrap();
        let mut body = resp.into_body();
        let _first = body.frame().await.unwrap().unwrap();
        drop((body, lease));
        assert_eq!(p.idle(), 0);
        assert_eq!(round_trip(&p, "/next", port).await, "ok");
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn connections_idle_past_the_timeout_are_closed_not_reused() {
        let (port, accepted, _) = server(After::KeepOpen).await;
        let p = Http1Pool::new(
            "127.0.0.1",
            port,
            Duration::from_secs(5),
            Duration::from_millis(50),
        );
        round_trip(&p, "/one", port).await;
        tokio::time::sleep(Duration::from_millis(80)).await;
        round_trip(&p, "/two", port).await;
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn nothing_listening_is_a_connect_error() {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            l.local_addr().unwrap().port()
        };
        let err = pool(port).send(post("/x", port)).await.err().unwrap();
        assert!(matches!(err, UpstreamError::Connect(_)), "{err:?}");
    }
}
