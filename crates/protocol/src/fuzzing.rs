//! Entry points for the fuzz targets in `fuzz/` (and the no-panic property tests): each takes
//! arbitrary bytes and drives one parser with everything downstream of it. Nothing here may
//! panic, whatever the input; errors are the expected outcome for most inputs.

use crate::canonical::Protocol;
use crate::openai::{Endpoint, RequestFacts};
use crate::sse::SseDecoder;
use crate::translate::{self, Inbound, Reply, StreamRelay};
use crate::RawObject;
use std::collections::VecDeque;

const ALL: [Protocol; 3] = [Protocol::OpenAi, Protocol::Anthropic, Protocol::Gemini];

fn pick(byte: u8) -> Protocol {
    ALL[usize::from(byte) % 3]
}

/// A client request in `from`'s protocol, written for every provider protocol.
pub fn request(from: Protocol, data: &[u8]) {
    let Ok(body) = RawObject::parse(data) else {
        return;
    };
    let inbound = match from {
        Protocol::OpenAi => {
            let Ok(facts) = RequestFacts::read(Endpoint::ChatCompletions, &body) else {
                return;
            };
            Inbound {
                protocol: Protocol::OpenAi,
                endpoint: Endpoint::ChatCompletions,
                facts,
                body,
            }
        }
        Protocol::Anthropic => match Inbound::anthropic(body) {
            Ok(i) => i,
            Err(_) => return,
        },
        Protocol::Gemini => match Inbound::gemini("m", false, body) {
            Ok(i) => i,
            Err(_) => return,
        },
    };
    for target in ALL {
        let mut i = inbound.clone();
        let _ = i.body_for(target, "upstream-model", 1024);
    }
}

const REPLY: Reply<'static> = Reply {
    model: "public",
    provider: "p",
    created: 0,
};

/// A provider's complete answer; the first byte picks its protocol, the second the client's.
pub fn response(data: &[u8]) {
    let [a, b, rest @ ..] = data else { return };
    let _ = translate::response(pick(*b), pick(*a), rest, &REPLY, a & 4 != 0);
}

/// A provider's event stream fed in arbitrary chunks; the first bytes pick the protocols and
/// the chunk size.
pub fn stream(data: &[u8]) {
    let [a, b, size, rest @ ..] = data else {
        return;
    };
    let mut relay = StreamRelay::new(pick(*b), pick(*a), &REPLY, a & 8 != 0, a & 4 != 0);
    let mut decoder = SseDecoder::new();
    let mut out = VecDeque::new();
    let mut usage_seen = false;
    for chunk in rest.chunks(usize::from(*size).max(1)) {
        let Ok(frames) = decoder.push(chunk) else {
            let _ = relay.error("broken", 502, "upstream_error", "upstream_error");
            return;
        };
        for f in frames {
            usage_seen |= relay.frame(&f, &mut out).usage.is_some();
        }
    }
    if let Some(f) = decoder.finish() {
        relay.frame(&f, &mut out);
    }
    relay.ended(usage_seen, &mut out);
}
