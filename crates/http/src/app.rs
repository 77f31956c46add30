//! The router and its layers. Every route needs auth (API key on `/v1`, session on `/api`,
//! administrator on `/api/admin`) except the public ones: health, sign-up, login, and the
//! Stripe webhook (authenticated by its signature).

use crate::error::in_shape_of;
use crate::error::ErrorResponse;
use crate::request_id::{RequestIdLayer, REQUEST_ID};
use crate::routes::{anthropic, api, gemini, health, v1};
use axum::extract::{DefaultBodyLimit, OriginalUri, Request, State};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use axum::routing::future::RouteFuture;
use axum::routing::{any, get, post};
use axum::{Extension, Router};
use domain::ErrorCode;
use engine::Engine;
use futures_util::future::{CatchUnwind, FutureExt as _};
use pin_project_lite::pin_project;
use protocol::openai::Endpoint;
use protocol::Protocol;
use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use tower::{Service, ServiceBuilder};
use tower_http::trace::TraceLayer;

/// HTTP settings from configuration.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Mark the session cookie `Secure` (set when served over HTTPS).
    pub secure_cookies: bool,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            max_body_bytes: 10 * 1024 * 1024,
            secure_cookies: false,
        }
    }
}

/// The whole HTTP surface. `extra` routes (the dashboard's pages, later) are served under the
/// same layers and auth rules as everything else.
pub fn router(
    engine: Arc<Engine>,
    settings: HttpSettings,
    extra: Router<Arc<Engine>>,
) -> impl Service<Request, Response = Response, Error = Infallible, Future: Send + 'static>
       + Clone
       + Send
       + Sync
       + 'static {
    let settings = Arc::new(settings);
    let max_body = settings.max_body_bytes;
    // The relayed OpenAI endpoints: `Dispatch` calls them directly; the router has them for
    // their 405s (and would serve them the same way).
    let relayed = OPENAI_RELAYED
        .into_iter()
        .fold(Router::new(), |r, (path, endpoint)| {
            r.route(
                path,
                post(move |State(engine): State<Arc<Engine>>, req: Request| {
                    v1::relay::openai(engine, req, endpoint, max_body)
                }),
            )
        });
    // `/v1`'s routes sit in the top router rather than a nested one, which would rebuild
    // every request's URI without the prefix.
    let v1 = relayed
        .route("/v1/models", get(v1::models::list))
        .route("/v1/models/{id}", get(v1::models::get))
        .route(
            "/v1/messages",
            post(anthropic::messages).layer(axum::middleware::map_response(anthropic_shape)),
        )
        .route(
            "/v1/messages/count_tokens",
            post(anthropic::count_tokens).layer(axum::middleware::map_response(anthropic_shape)),
        )
        .route("/v1", any(v1_not_found))
        .route("/v1/", any(v1_not_found))
        .route("/v1/{*rest}", any(v1_not_found));

    let v1beta = Router::new()
        .route("/models", get(gemini::list))
        .route("/models/{*tail}", post(gemini::generate).get(gemini::get))
        .fallback(v1_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::map_response(gemini_shape));

    let api = Router::new()
        .route("/auth/signup", post(api::auth::signup))
        .route("/auth/login", post(api::auth::login))
        .route("/auth/logout", post(api::auth::logout))
        .route("/auth/me", get(api::auth::me))
        .route("/keys", post(api::keys::create).get(api::keys::list))
        .route(
            "/keys/{id}",
            get(api::keys::get)
                .patch(api::keys::update)
                .delete(api::keys::delete),
        )
        .route("/usage", get(api::usage::list))
        .route("/usage/summary", get(api::usage::summary))
        .route("/billing/balance", get(api::billing::balance))
        .route("/billing/transactions", get(api::billing::transactions))
        .route("/billing/topup", post(api::billing::topup))
        .route("/billing/checkout", post(api::billing::checkout))
        .route(
            "/billing/stripe/webhook",
            post(api::billing::stripe_webhook),
        )
        .route("/admin/plans", get(api::admin::list_plans))
        .route(
            "/admin/plans/{name}",
            axum::routing::put(api::admin::put_plan),
        )
        .route("/admin/accounts", get(api::admin::list_accounts))
        .route(
            "/admin/accounts/{id}",
            axum::routing::patch(api::admin::patch_account),
        )
        .route(
            "/admin/accounts/{id}/credits",
            post(api::admin::credit_account),
        )
        .route(
            "/admin/keys/{id}",
            axum::routing::patch(api::admin::patch_key),
        )
        .route("/admin/ledger/verify", get(api::admin::verify_ledger))
        .route("/admin/providers", get(api::admin::providers))
        .fallback(not_found)
        // Settings the handlers read (the session cookie's flags).
        .layer(Extension(settings.clone()));

    // Built only when DEBUG is on for this crate: with it off, the span would not be recorded
    // but the layer would still wrap every request. Its body is mapped back to axum's, so
    // the layer above sees one response type either way.
    let trace = tracing::enabled!(target: "http_api", tracing::Level::DEBUG).then(|| {
        ServiceBuilder::new()
            .map_response(|r: Response<_>| r.map(axum::body::Body::new))
            .layer(
                TraceLayer::new_for_http()
                    .make_span_with(|req: &Request| {
                        let id = req.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("");
                        tracing::debug_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
                    })
                    .on_failure(()),
            )
    });
    let router = Router::new()
        .route("/health", get(health::live))
        .route("/health/ready", get(health::ready))
        .merge(v1)
        .nest("/v1beta", v1beta)
        .nest("/api", api)
        .merge(extra.layer(Extension(settings.clone())))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(engine.clone())
        // Bodies past the limit fail extraction with 413 (axum's extractors read the limit
        // from the request; the relayed endpoints are given it).
        .layer(DefaultBodyLimit::max(max_body));
    // Outermost first. The layers wrap the dispatcher once, not each of the router's routes
    // (which `Router::layer` would do, boxing every route's stack anew per request).
    ServiceBuilder::new()
        // 1. Every request gets an id (a client's own is kept), echoed on its response.
        .layer(RequestIdLayer)
        // 2. With DEBUG logging on, one span per request: method, path, id; never bodies,
        // keys or queries. Nothing is logged inside a request that succeeds; a relayed
        // request's failures carry its request id (each failed upstream try, any 5xx
        // answer); storage errors and panics are logged where they happen.
        .option_layer(trace)
        // 3. The relayed endpoints straight to their handler, the rest through the router;
        // a panic in either becomes a 500 in the API's error shape, not a dropped connection.
        .service(Dispatch {
            router,
            engine,
            max_body,
        })
}

/// The relayed OpenAI endpoints (`POST`), by path.
const OPENAI_RELAYED: [(&str, Endpoint); 3] = [
    ("/v1/chat/completions", Endpoint::ChatCompletions),
    ("/v1/completions", Endpoint::Completions),
    ("/v1/embeddings", Endpoint::Embeddings),
];

/// Sends `POST /v1/chat/completions`, `/v1/completions` and `/v1/embeddings`, the hot path,
/// straight to their handler, and every other request through the router. The router would
/// match the path in its tree, file the original URI, the matched path, the path parameters
/// and the body limit in four extensions and clone the route's boxed layers for each
/// request; a relayed request needs none of them.
#[derive(Clone)]
struct Dispatch {
    router: Router,
    engine: Arc<Engine>,
    max_body: usize,
}

impl Dispatch {
    fn route(&mut self, req: Request) -> Route {
        let relayed = (req.method() == Method::POST)
            .then(|| OPENAI_RELAYED.iter().find(|(p, _)| *p == req.uri().path()))
            .flatten();
        let Some(&(_, endpoint)) = relayed else {
            return Route::Router {
                fut: self.router.call(req),
            };
        };
        let engine = self.engine.clone();
        Route::Handler {
            fut: Box::pin(v1::relay::openai(engine, req, endpoint, self.max_body)),
        }
    }
}

impl Service<Request> for Dispatch {
    type Response = Response;
    type Error = Infallible;
    type Future = DispatchFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let route = std::panic::catch_unwind(AssertUnwindSafe(|| self.route(req))).unwrap_or_else(
            |panic| Route::Ready {
                response: Some(panic_response(panic)),
            },
        );
        DispatchFuture {
            inner: AssertUnwindSafe(route).catch_unwind(),
        }
    }
}

pin_project! {
    #[project = RouteProj]
    enum Route {
        Handler { fut: Pin<Box<dyn Future<Output = Response> + Send>> },
        Router { #[pin] fut: RouteFuture<Infallible> },
        Ready { response: Option<Response> },
    }
}

impl Future for Route {
    type Output = Response;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Response> {
        match self.project() {
            RouteProj::Handler { fut } => fut.as_mut().poll(cx),
            RouteProj::Router { fut } => fut.poll(cx).map(|r| match r {
                Ok(resp) => resp,
                Err(never) => match never {},
            }),
            RouteProj::Ready { response } => Poll::Ready(response.take().unwrap_or_else(|| {
                ErrorResponse::new(ErrorCode::Internal, "response polled twice").into_response()
            })),
        }
    }
}

pin_project! {
    struct DispatchFuture {
        #[pin]
        inner: CatchUnwind<AssertUnwindSafe<Route>>,
    }
}

impl Future for DispatchFuture {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let done = ready!(self.project().inner.poll(cx));
        Poll::Ready(Ok(done.unwrap_or_else(panic_response)))
    }
}

async fn anthropic_shape(resp: Response) -> Response {
    in_shape_of(Protocol::Anthropic, resp)
}

async fn gemini_shape(resp: Response) -> Response {
    in_shape_of(Protocol::Gemini, resp)
}

async fn v1_not_found(method: Method, OriginalUri(uri): OriginalUri) -> ErrorResponse {
    ErrorResponse::new(
        ErrorCode::EndpointNotSupported,
        format!("{method} {} is not an endpoint of this gateway", uri.path()),
    )
}

async fn not_found(OriginalUri(uri): OriginalUri) -> ErrorResponse {
    ErrorResponse::new(ErrorCode::NotFound, format!("no route for {}", uri.path()))
}

async fn method_not_allowed(method: Method, OriginalUri(uri): OriginalUri) -> ErrorResponse {
    ErrorResponse::new(
        ErrorCode::MethodNotAllowed,
        format!("{method} is not allowed on {}", uri.path()),
    )
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    ErrorResponse::new(ErrorCode::Internal, "internal error; see the gateway's log").into_response()
}
