//! The baseline: a minimal hyper reverse proxy. It forwards method, path, headers and body
//! to one upstream over pooled keep-alive connections and streams the answer back, with
//! TCP_NODELAY on both sides: the least a proxy hop can cost.

use crate::{serve_http1, Body, BoxError};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::net::SocketAddr;

pub async fn run(listen: SocketAddr, upstream: SocketAddr) -> anyhow::Result<()> {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: Client<HttpConnector, Incoming> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(usize::MAX)
        .build(connector);
    serve_http1(listen, move |req| {
        let client = client.clone();
        async move { Ok(forward(&client, upstream, req).await) }
    })
    .await
}

async fn forward(
    client: &Client<HttpConnector, Incoming>,
    upstream: SocketAddr,
    req: Request<Incoming>,
) -> Response<Body> {
    let (mut parts, body) = req.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    match format!("http://{upstream}{path}").parse::<Uri>() {
        Ok(uri) => parts.uri = uri,
        Err(_) => return bad_gateway(),
    }
    match client.request(Request::from_parts(parts, body)).await {
        Ok(resp) => resp.map(|b| b.map_err(|e| Box::new(e) as BoxError).boxed_unsync()),
        Err(_) => bad_gateway(),
    }
}

fn bad_gateway() -> Response<Body> {
    let mut r = Response::new(
        Full::new(bytes::Bytes::from_static(b"bad gateway"))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *r.status_mut() = StatusCode::BAD_GATEWAY;
    r
}
