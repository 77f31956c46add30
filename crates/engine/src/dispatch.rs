//! Walking a route plan: try candidates in order until one answers, retrying what is worth
//! retrying (connect errors, timeouts and failures before the first byte, 404/408/429/5xx,
//! a refused key) with jittered backoff under one deadline, and passing a client error
//! straight back. Nothing reaches the client until an answer has started, so every retry is
//! invisible to it.

use crate::billing::Meter;
use crate::relay::{read_body, rejected};
use crate::routing::{Candidate, Lease, Passed, Router};
use bytes::Bytes;
use domain::{ApiError, ErrorCode};
use futures_util::StreamExt;
use protocol::openai::ClientResponse;
use protocol::translate::{self, Inbound, Reply};
use protocol::Protocol;
use std::time::{Duration, Instant};
use upstream::{BodyStream, UpstreamError, UpstreamRequest, UpstreamResponse};

/// What the request sends and expects, the same for every try.
pub(crate) struct Outbound<'a, 'b> {
    /// The client's request; written for each try's deployment.
    pub inbound: &'a mut Inbound<'b>,
    pub max_response_bytes: usize,
}

/// An answer that has started.
pub(crate) struct Answer {
    pub candidate: Candidate,
    pub lease: Lease,
    pub body: AnswerBody,
    /// The answer carries JSON output in Anthropic's JSON tool.
    pub json_tool: bool,
}

pub(crate) enum AnswerBody {
    Json(ClientResponse),
    /// The first chunk (already read, so a stream that dies before it can be retried) and
    /// the rest.
    Stream {
        first: Bytes,
        rest: BodyStream,
    },
}

/// A try that did not produce an answer.
struct Failure {
    error: ApiError,
    /// For the usage event's attempt list: `timeout`, `connect_error`, `http_503`, ...
    outcome: String,
    timeout: bool,
    rate_limited: bool,
    /// The deployment cannot serve this request at all (it does not know the model): no
    /// further tries go to it.
    exclude: bool,
}

enum TryError {
    /// Worth trying elsewhere.
    Retry(Failure),
    /// The request itself was refused; the client gets this.
    Final(ApiError),
}

pub(crate) async fn dispatch(
    router: &Router,
    candidates: &[Candidate],
    out: Outbound<'_, '_>,
    meter: &mut Meter,
) -> Result<Answer, ApiError> {
    let settings = &router.settings;
    let deadline = tokio::time::Instant::now() + settings.deadline;
    let mut failures: Vec<Failure> = Vec::new();
    let mut passed: Vec<Passed> = Vec::new();
    let mut cursor = 0usize;
    let mut tries = 0u32;
    let mut excluded = vec![false; candidates.len()];
    let Outbound {
        inbound,
        max_response_bytes,
    } = out;
    let created = crate::relay::now_secs();
    while tries < settings.max_attempts && !candidates.is_empty() {
        if tries > 0 {
            let pause = router.backoff(tries);
            if tokio::time::Instant::now() + pause >= deadline {
                break;
            }
            tokio::time::sleep(pause).await;
        }
        // The next candidate that can take a try now, going round the plan.
        let mut lease = None;
        for _ in 0..candidates.len() {
            let at = cursor % candidates.len();
            cursor += 1;
            if excluded[at] {
                continue;
            }
            match router.enter(&candidates[at], Instant::now()) {
                Ok(l) => {
                    lease = Some((at, l));
                    break;
                }
                Err(p) => passed.push(p),
            }
        }
        let Some((at, mut lease)) = lease else {
            break;
        };
        tries += 1;
        let candidate = &candidates[at];
        let d = candidate.deployment();
        meter.set_deployment(
            &candidate.model.name,
            &d.provider.0,
            &d.upstream_model,
            candidate.model.price_for(d),
        );
        let target = candidate.provider.upstream.protocol();
        // Checked when the plan was made; a refusal here would be the same for every try.
        let sent = inbound
            .body_for(
                target,
                &d.upstream_model,
                u64::from(candidate.model.max_output_tokens),
            )
            .map_err(|m| ApiError::new(ErrorCode::InvalidBody, m))?;
        meter.set_prompt(sent.body.clone());
        let req = UpstreamRequest {
            endpoint: inbound.endpoint,
            model: d.upstream_model.clone(),
            body: sent.body,
            stream: inbound.facts.stream,
            api_key: lease.api_key(),
        };
        let shape = Shape {
            client: inbound.protocol,
            json_tool: sent.json_tool,
            created,
            max_response_bytes,
        };
        let attempt = try_once(candidate, &mut lease, req, &shape, settings.key_cooldown);
        let result = match tokio::time::timeout_at(deadline, attempt).await {
            Ok(r) => r,
            Err(_) => {
                lease.neutral();
                Err(TryError::Retry(Failure {
                    error: ApiError::new(
                        ErrorCode::UpstreamTimeout,
                        format!(
                            "no answer from any deployment of `{}` within {:?}",
                            candidate.model.name, settings.deadline
                        ),
                    ),
                    outcome: "timeout".to_owned(),
                    timeout: true,
                    rate_limited: false,
                    exclude: false,
                }))
            }
        };
        let latency = lease.elapsed();
        let name = d.key();
        match result {
            Ok(body) => {
                meter.attempt(name, "ok", latency);
                return Ok(Answer {
                    candidate: candidate.clone(),
                    lease,
                    body,
                    json_tool: shape.json_tool,
                });
            }
            Err(TryError::Final(e)) => {
                meter.attempt(name, "rejected", latency);
                return Err(e);
            }
            Err(TryError::Retry(f)) => {
                tracing::warn!(
                    request_id = meter.request_id(),
                    deployment = %name,
                    error = %f.error.message,
                    "upstream try failed"
                );
                meter.attempt(name, &f.outcome, latency);
                let out_of_time = f.timeout && tokio::time::Instant::now() >= deadline;
                excluded[at] |= f.exclude;
                failures.push(f);
                if out_of_time {
                    break;
                }
            }
        }
    }
    let model = candidates
        .first()
        .map_or("the model", |c| c.model.name.as_str());
    Err(give_up(model, failures, &passed))
}

/// The error when no try produced an answer.
fn give_up(model: &str, failures: Vec<Failure>, passed: &[Passed]) -> ApiError {
    let now = Instant::now();
    let soonest = passed
        .iter()
        .filter_map(|p| match p {
            Passed::BreakerOpen(u) => *u,
            Passed::CoolingDown(u) => Some(*u),
            Passed::Busy => Some(now + Duration::from_secs(1)),
        })
        .min()
        .map(|u| crate::routing::health::secs_until(now, u).max(1));
    let n = failures.len();
    let Some(last) = failures.last() else {
        let why = if passed.iter().all(|p| matches!(p, Passed::Busy)) {
            "every deployment is at its concurrency limit"
        } else if passed.iter().all(|p| matches!(p, Passed::CoolingDown(_))) {
            "every deployment is cooling down after a rate limit or a refused key"
        } else {
            "no deployment is healthy (circuit breakers open)"
        };
        let mut e = ApiError::new(
            ErrorCode::UpstreamUnavailable,
            format!("`{model}` is unavailable: {why}; try again later"),
        );
        e.retry_after = soonest.or(Some(1));
        return e;
    };
    let mut e = if failures.iter().all(|f| f.timeout) {
        ApiError::new(
            ErrorCode::UpstreamTimeout,
            format!(
                "`{model}` did not answer in time ({n} {}): {}",
                tries(n),
                last.error.message
            ),
        )
    } else if failures.iter().all(|f| f.rate_limited) {
        let mut e = ApiError::new(
            ErrorCode::RateLimitExceeded,
            format!(
                "every deployment of `{model}` is rate limiting ({n} {}): {}",
                tries(n),
                last.error.message
            ),
        );
        e.retry_after = failures
            .iter()
            .filter_map(|f| f.error.retry_after)
            .min()
            .or(soonest);
        e
    } else {
        ApiError::new(
            ErrorCode::UpstreamUnavailable,
            format!(
                "`{model}` is unavailable: {n} {} failed; the last: {}",
                tries(n),
                last.error.message
            ),
        )
    };
    if e.retry_after.is_none() && e.code == ErrorCode::UpstreamUnavailable {
        e.retry_after = soonest;
    }
    e
}

fn tries(n: usize) -> &'static str {
    if n == 1 {
        "try"
    } else {
        "tries"
    }
}

/// How a complete answer is written for the client.
struct Shape {
    client: Protocol,
    /// JSON output comes back in Anthropic's JSON tool.
    json_tool: bool,
    created: u64,
    max_response_bytes: usize,
}

/// One try: send, check the status, and read up to the first byte of the answer.
async fn try_once(
    c: &Candidate,
    lease: &mut Lease,
    req: UpstreamRequest,
    shape: &Shape,
    key_cooldown: Duration,
) -> Result<AnswerBody, TryError> {
    let provider = c.provider.id.0.as_str();
    let stream = req.stream;
    let resp = match c.provider.upstream.send(req).await {
        Ok(r) => r,
        Err(e) => return Err(transport_failure(lease, provider, &e)),
    };
    if !(200..300).contains(&resp.status) {
        return Err(status_failure(c, lease, resp, key_cooldown).await);
    }
    let invalid = |lease: &mut Lease, what: String| {
        let e = ApiError::new(
            ErrorCode::UpstreamError,
            format!("provider `{provider}` {what}"),
        );
        lease.failed(&e.message);
        TryError::Retry(Failure {
            error: e,
            outcome: "invalid_response".to_owned(),
            timeout: false,
            rate_limited: false,
            exclude: false,
        })
    };
    if stream {
        let is_sse = resp
            .content_type
            .as_deref()
            .is_some_and(|t| t.starts_with("text/event-stream"));
        if !is_sse {
            return Err(invalid(
                lease,
                "answered a streaming request without an event stream".to_owned(),
            ));
        }
        let mut rest = resp.body;
        return match rest.next().await {
            Some(Ok(first)) => {
                lease.succeeded();
                Ok(AnswerBody::Stream { first, rest })
            }
            Some(Err(e)) => Err(transport_failure(lease, provider, &e)),
            None => Err(invalid(
                lease,
                "ended the stream before any event".to_owned(),
            )),
        };
    }
    let raw = match read_body(resp.body, shape.max_response_bytes).await {
        Ok(b) => b,
        Err(e) => return Err(transport_failure(lease, provider, &e)),
    };
    let reply = Reply {
        model: &c.model.name,
        provider,
        created: shape.created,
    };
    let upstream = c.provider.upstream.protocol();
    match translate::response(shape.client, upstream, &raw, &reply, shape.json_tool) {
        Some(answer) => {
            lease.succeeded();
            Ok(AnswerBody::Json(answer))
        }
        None => Err(invalid(
            lease,
            "answered with a body that is not a JSON object".to_owned(),
        )),
    }
}

fn transport_failure(lease: &mut Lease, provider: &str, e: &UpstreamError) -> TryError {
    let (code, outcome, timeout) = match e {
        UpstreamError::Timeout(_) | UpstreamError::Idle(_) => {
            (ErrorCode::UpstreamTimeout, "timeout", true)
        }
        UpstreamError::Connect(_) => (ErrorCode::UpstreamError, "connect_error", false),
        UpstreamError::Transport(_) => (ErrorCode::UpstreamError, "transport_error", false),
    };
    let error = ApiError::new(code, format!("provider `{provider}`: {e}"));
    lease.failed(&error.message);
    TryError::Retry(Failure {
        error,
        outcome: outcome.to_owned(),
        timeout,
        rate_limited: false,
        exclude: false,
    })
}

/// A non-2xx answer: a client error goes back as it is; the rest is retried elsewhere. A 404
/// is the deployment's fault (the gateway chose the model), so another deployment gets the
/// request, but this one no further tries.
async fn status_failure(
    c: &Candidate,
    lease: &mut Lease,
    resp: UpstreamResponse,
    key_cooldown: Duration,
) -> TryError {
    let status = resp.status;
    let provider = c.provider.id.0.as_str();
    let bench_for = resp.retry_after.map_or(key_cooldown, Duration::from_secs);
    let error = rejected(provider, resp).await;
    let outcome = format!("http_{status}");
    match status {
        429 | 401 | 403 | 407 => {
            lease.bench(Instant::now() + bench_for, &error.message);
            TryError::Retry(Failure {
                error,
                outcome,
                timeout: false,
                rate_limited: status == 429,
                exclude: false,
            })
        }
        404 | 408 | 500..=599 => {
            lease.failed(&error.message);
            TryError::Retry(Failure {
                error,
                outcome,
                timeout: matches!(status, 408 | 504),
                rate_limited: false,
                exclude: status == 404,
            })
        }
        _ => {
            lease.neutral();
            TryError::Final(error)
        }
    }
}
