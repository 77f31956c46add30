//! The load generator: raw hyper HTTP/1.1 client connections (keep-alive, TCP_NODELAY), one
//! per worker, so the generator costs little next to what it measures.

use anyhow::{anyhow, Context, Result};
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderValue, ACCEPT_ENCODING, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::Request;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Where requests go and how they look.
#[derive(Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub path: String,
    pub key: Option<String>,
    /// Send `Accept-Encoding: gzip, br` as the SDKs do.
    pub gzip: bool,
}

impl Target {
    fn request(&self, body: &Bytes) -> Result<Request<Full<Bytes>>> {
        let mut b = Request::post(self.path.as_str())
            .header(HOST, self.addr.to_string())
            .header(CONTENT_TYPE, "application/json");
        if let Some(k) = &self.key {
            b = b.header(AUTHORIZATION, format!("Bearer {k}"));
        }
        if self.gzip {
            b = b.header(ACCEPT_ENCODING, HeaderValue::from_static("gzip, br"));
        }
        Ok(b.body(Full::new(body.clone()))?)
    }
}

type Sender = SendRequest<Full<Bytes>>;

async fn connect(addr: SocketAddr) -> Result<Sender> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// One request, body read to the end; fails unless 200.
async fn call(sender: &mut Sender, req: Request<Full<Bytes>>) -> Result<()> {
    sender.ready().await?;
    let resp = sender.send_request(req).await?;
    let status = resp.status();
    let body = resp.into_body().collect().await?.to_bytes();
    if status != 200 {
        return Err(anyhow!(
            "HTTP {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(300)])
        ));
    }
    Ok(())
}

/// One request, its latency counted from `since`; a failed connection is replaced.
async fn send_and_record(
    t: &Target,
    sender: &mut Sender,
    body: &Bytes,
    since: Instant,
    m: &mut Measured,
) -> Result<()> {
    let r = call(sender, t.request(body)?).await;
    let failed = r.is_err();
    m.record(r, since.elapsed());
    if failed {
        *sender = connect(t.addr).await?;
    }
    Ok(())
}

#[allow(clippy::expect_used)] // constant bounds, valid by construction
fn histogram() -> Histogram<u64> {
    // Nanoseconds, from 1 µs to 100 s, 3 significant digits.
    Histogram::new_with_bounds(1_000, 100_000_000_000, 3).expect("valid histogram bounds")
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// What a run measured.
pub struct Measured {
    pub requests: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub elapsed: Duration,
    /// Latency in nanoseconds.
    pub latency: Histogram<u64>,
}

impl Measured {
    fn new() -> Self {
        Self {
            requests: 0,
            errors: 0,
            first_error: None,
            elapsed: Duration::ZERO,
            latency: histogram(),
        }
    }

    fn merge(&mut self, other: Measured) {
        self.requests += other.requests;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        let _ = self.latency.add(&other.latency);
    }

    fn record(&mut self, result: Result<()>, took: Duration) {
        match result {
            Ok(()) => {
                self.requests += 1;
                let _ = self.latency.record(nanos(took).max(1_000));
            }
            Err(e) => {
                self.errors += 1;
                if self.first_error.is_none() {
                    self.first_error = Some(e.to_string());
                }
            }
        }
    }

    pub fn rps(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// A latency quantile in microseconds.
    pub fn us(&self, q: f64) -> f64 {
        self.latency.value_at_quantile(q) as f64 / 1_000.0
    }
}

/// `conns` connections, each sending its next request as soon as the last is answered.
pub async fn closed(
    target: &Target,
    body: Bytes,
    conns: usize,
    duration: Duration,
) -> Result<Measured> {
    let started = Instant::now();
    let until = started + duration;
    let mut workers = Vec::new();
    for _ in 0..conns {
        let t = target.clone();
        let body = body.clone();
        workers.push(tokio::spawn(async move {
            let mut m = Measured::new();
            let mut sender = connect(t.addr).await?;
            while Instant::now() < until {
                send_and_record(&t, &mut sender, &body, Instant::now(), &mut m).await?;
            }
            Ok::<_, anyhow::Error>(m)
        }));
    }
    let mut all = Measured::new();
    for w in workers {
        all.merge(w.await??);
    }
    all.elapsed = started.elapsed();
    Ok(all)
}

/// Requests released at a fixed `rate` whether or not earlier ones are done, spread over
/// `conns` connections; latency counts from each request's release, so a stall shows.
pub async fn open(
    target: &Target,
    body: Bytes,
    rate: u32,
    duration: Duration,
    conns: usize,
) -> Result<Measured> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Instant>(100_000);
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let mut workers = Vec::new();
    for _ in 0..conns {
        let t = target.clone();
        let body = body.clone();
        let rx = rx.clone();
        let mut sender = connect(t.addr).await?;
        workers.push(tokio::spawn(async move {
            let mut m = Measured::new();
            loop {
                let released = { rx.lock().await.recv().await };
                let Some(released) = released else {
                    break;
                };
                send_and_record(&t, &mut sender, &body, released, &mut m).await?;
            }
            Ok::<_, anyhow::Error>(m)
        }));
    }
    let started = Instant::now();
    let period = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let total = (duration.as_secs_f64() * f64::from(rate)) as u64;
    for i in 0..total {
        let at = started + period.mul_f64(i as f64);
        tokio::time::sleep_until(at).await;
        if tx.send(Instant::now()).await.is_err() {
            break;
        }
    }
    drop(tx);
    let mut all = Measured::new();
    for w in workers {
        all.merge(w.await??);
    }
    all.elapsed = started.elapsed();
    Ok(all)
}

/// What `streams` saw.
pub struct StreamStats {
    /// Time to the first body byte, nanoseconds.
    pub ttfb: Histogram<u64>,
    /// The longest silence between two chunks of one stream, over all streams.
    pub max_gap: Duration,
    pub chunks_per_stream: usize,
}

/// `count` streaming requests one after another on one keep-alive connection.
pub async fn streams(target: &Target, body: Bytes, count: usize) -> Result<StreamStats> {
    let mut sender = connect(target.addr).await?;
    let mut ttfb = histogram();
    let mut max_gap = Duration::ZERO;
    let mut chunks = 0;
    for _ in 0..count {
        let req = target.request(&body)?;
        let at = Instant::now();
        sender.ready().await?;
        let resp = sender.send_request(req).await?;
        if resp.status() != 200 {
            let text = resp.into_body().collect().await?.to_bytes();
            return Err(anyhow!(
                "stream refused: {}",
                String::from_utf8_lossy(&text)
            ));
        }
        let mut body = resp.into_body();
        let mut last: Option<Instant> = None;
        let mut n = 0;
        while let Some(frame) = body.frame().await {
            let frame = frame?;
            if frame.data_ref().is_some_and(|d| !d.is_empty()) {
                let now = Instant::now();
                match last {
                    None => {
                        let _ = ttfb.record(nanos(now - at).max(1_000));
                    }
                    Some(prev) => max_gap = max_gap.max(now - prev),
                }
                last = Some(now);
                n += 1;
            }
        }
        chunks = n;
    }
    Ok(StreamStats {
        ttfb,
        max_gap,
        chunks_per_stream: chunks,
    })
}

/// Streams held open until told to let go.
pub struct Held {
    pub opened: usize,
    stop: Arc<tokio::sync::Notify>,
    workers: Vec<tokio::task::JoinHandle<()>>,
}

impl Held {
    /// Drops every stream (closing its connection).
    pub async fn release(self) {
        for w in &self.workers {
            w.abort();
        }
        self.stop.notify_waiters();
        for w in self.workers {
            let _ = w.await;
        }
    }
}

/// Opens `count` slow streams, each on its own connection, and returns once each has
/// received its first chunk (or `wait` has passed).
pub async fn hold(target: &Target, body: Bytes, count: usize, wait: Duration) -> Result<Held> {
    let ready = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(tokio::sync::Notify::new());
    let mut workers = Vec::with_capacity(count);
    for i in 0..count {
        // Connect in waves so the listen backlog never overflows.
        if i % 250 == 249 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let t = target.clone();
        let body = body.clone();
        let ready = ready.clone();
        let stop = stop.clone();
        workers.push(tokio::spawn(async move {
            let Ok(mut sender) = connect(t.addr).await else {
                return;
            };
            let Ok(req) = t.request(&body) else {
                return;
            };
            if sender.ready().await.is_err() {
                return;
            }
            let Ok(resp) = sender.send_request(req).await else {
                return;
            };
            if resp.status() != 200 {
                return;
            }
            let mut body = resp.into_body();
            let mut counted = false;
            loop {
                tokio::select! {
                    () = stop.notified() => return,
                    frame = body.frame() => match frame {
                        Some(Ok(_)) if !counted => {
                            counted = true;
                            ready.fetch_add(1, Ordering::SeqCst);
                        }
                        Some(Ok(_)) => {}
                        _ => return,
                    },
                }
            }
        }));
    }
    let deadline = Instant::now() + wait;
    while ready.load(Ordering::SeqCst) < count && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(Held {
        opened: ready.load(Ordering::SeqCst),
        stop,
        workers,
    })
}
