//! Settlement: every authenticated `/v1` request owns one `Meter`, and that meter writes
//! exactly one usage event, whether the request finishes, fails, or is dropped because the
//! client went away or the server is stopping.

use crate::admission::Admission;
use crate::auth::Authenticated;
use crate::usage::UsageSink;
use domain::catalog::ModelPrice;
use domain::{ApiError, UnixMillis, UsageEvent, UsageId, UsageStatus};
use protocol::openai::TokenUsage;
use std::time::Instant;

/// How a request ended, for its usage event.
#[derive(Debug, Clone)]
pub struct Finish {
    pub status: UsageStatus,
    pub http_status: u16,
    pub error_code: Option<String>,
}

impl Finish {
    pub fn ok() -> Self {
        Self {
            status: UsageStatus::Ok,
            http_status: 200,
            error_code: None,
        }
    }

    pub fn failed(e: &ApiError) -> Self {
        Self {
            status: UsageStatus::Error,
            http_status: e.code.status(),
            error_code: Some(e.code_str().to_owned()),
        }
    }
}

pub struct Meter {
    sink: UsageSink,
    event: Option<UsageEvent>,
    started: Instant,
    price: ModelPrice,
    /// Usage the upstream reported, if it did.
    reported: Option<TokenUsage>,
    /// The request body sent upstream, to count prompt tokens if no usage arrives.
    prompt: bytes::Bytes,
    /// Generated text relayed so far, to count output tokens if no usage arrives.
    output: crate::tokens::OutputSample,
    /// Rate limits passed and credit reserved; settled with the cost.
    admission: Option<Admission>,
}

impl Meter {
    pub(crate) fn start(
        sink: UsageSink,
        auth: &Authenticated,
        endpoint: &str,
        request_id: &str,
    ) -> Self {
        let event = UsageEvent {
            id: UsageId::generate(),
            account_id: auth.account().id.clone(),
            key_id: auth.key().id.clone(),
            endpoint: endpoint.to_owned(),
            public_model: String::new(),
            upstream_model: String::new(),
            provider: String::new(),
            input_tokens: 0,
            output_tokens: 0,
            cached_tokens: 0,
            cost: domain::Money::ZERO,
            estimated: false,
            latency_ms: 0,
            status: UsageStatus::Error,
            http_status: 0,
            error_code: None,
            request_id: request_id.to_owned(),
            stream: false,
            created_at: UnixMillis::now(),
            attempts: Vec::new(),
            ledger_entry_id: None,
        };
        Self {
            sink,
            event: Some(event),
            started: Instant::now(),
            price: ModelPrice::default(),
            reported: None,
            prompt: bytes::Bytes::new(),
            output: crate::tokens::OutputSample::default(),
            admission: None,
        }
    }

    pub(crate) fn admitted(&mut self, admission: Admission) {
        self.admission = Some(admission);
    }

    /// The request's id (`X-Request-Id`), for the log lines about it.
    pub(crate) fn request_id(&self) -> &str {
        self.event.as_ref().map_or("", |e| e.request_id.as_str())
    }

    /// The admission's rate-limit view, for response headers.
    pub(crate) fn rate(&self) -> Option<domain::RateDecision> {
        self.admission.as_ref().map(|a| a.rate)
    }

    pub(crate) fn set_request(&mut self, public_model: &str, stream: bool) {
        if let Some(e) = &mut self.event {
            e.public_model = public_model.to_owned();
            e.stream = stream;
        }
    }

    /// The deployment being tried (the last one set is the one billed).
    pub(crate) fn set_deployment(
        &mut self,
        public_model: &str,
        provider: &str,
        upstream_model: &str,
        price: ModelPrice,
    ) {
        if let Some(e) = &mut self.event {
            if e.public_model != public_model {
                e.public_model = public_model.to_owned();
            }
            e.provider = provider.to_owned();
            e.upstream_model = upstream_model.to_owned();
        }
        self.price = price;
    }

    /// Records one try at a deployment.
    pub(crate) fn attempt(
        &mut self,
        deployment: String,
        outcome: &str,
        latency: std::time::Duration,
    ) {
        if let Some(e) = &mut self.event {
            e.attempts.push(domain::Attempt {
                deployment,
                outcome: outcome.to_owned(),
                latency_ms: u64::try_from(latency.as_millis()).unwrap_or(u64::MAX),
            });
        }
    }

    /// The body as sent upstream (shared, not copied).
    pub(crate) fn set_prompt(&mut self, body: bytes::Bytes) {
        self.prompt = body;
    }

    pub(crate) fn observe_usage(&mut self, usage: TokenUsage) {
        self.reported = Some(usage);
    }

    pub(crate) fn observe_output(&mut self, text: &str) {
        self.output.push(text);
    }

    pub(crate) fn usage_seen(&self) -> bool {
        self.reported.is_some()
    }

    /// Settles the request and queues its usage event.
    pub(crate) fn finish(mut self, finish: Finish) {
        self.settle(finish);
    }

    fn settle(&mut self, finish: Finish) {
        let Some(mut event) = self.event.take() else {
            return;
        };
        let (usage, estimated) = match (self.reported, finish.status) {
            // Cut short after an early report (Anthropic reports usage when a stream starts,
            // Gemini with every chunk): the output is at least what was streamed.
            (Some(u), UsageStatus::Partial) => {
                let streamed = self.output.tokens();
                if streamed > u.output {
                    (
                        TokenUsage {
                            output: streamed,
                            ..u
                        },
                        true,
                    )
                } else {
                    (u, false)
                }
            }
            (Some(u), _) => (u, false),
            // Nothing reached the upstream or came back: nothing to bill.
            (None, UsageStatus::Error) => (TokenUsage::default(), false),
            // Counted with the tokenizer, and marked as such.
            (None, _) => (
                TokenUsage {
                    input: crate::tokens::count_blocking(&protocol::openai::prompt_text(
                        &self.prompt,
                    )),
                    output: self.output.tokens(),
                    cached: 0,
                },
                true,
            ),
        };
        event.input_tokens = usage.input;
        event.output_tokens = usage.output;
        event.cached_tokens = usage.cached;
        event.cost = self.price.cost(usage.input, usage.cached, usage.output);
        event.estimated = estimated;
        event.latency_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        event.status = finish.status;
        event.http_status = finish.http_status;
        event.error_code = finish.error_code;
        if let Some(admission) = self.admission.take() {
            admission.settle(event.cost, usage.input + usage.output);
        }
        self.sink.record(event);
    }
}

impl Drop for Meter {
    /// A meter dropped unsettled means the client went away mid-request (or the server
    /// stopped): bill what was produced, marked partial.
    fn drop(&mut self) {
        if self.event.is_some() {
            self.settle(Finish {
                status: UsageStatus::Partial,
                http_status: 499,
                error_code: Some("client_disconnected".to_owned()),
            });
        }
    }
}
