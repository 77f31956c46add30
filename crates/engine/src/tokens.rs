//! Token counting with a real tokenizer (tiktoken's `o200k_base`), for requests whose
//! upstream reported no usage. Never on the normal path: only at settlement, and only then.

/// Generated text kept per request for counting; longer outputs are extrapolated from it by
/// character ratio, so memory per stream stays bounded.
pub const SAMPLE_LIMIT_BYTES: usize = 16 * 1024;

/// `count` for use on an async worker: on a multi-threaded runtime the worker's queued tasks
/// are handed to another thread while this one counts, so a long count (or the first, which
/// builds the tokenizer's tables: a second unoptimised, tens of MB) never stalls them. The
/// tables are built on first use, not at start: with upstreams that report usage they are
/// never needed.
pub fn count_blocking(text: &str) -> u64 {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| count(text))
        }
        _ => count(text),
    }
}

/// Tokens in `text`.
pub fn count(text: &str) -> u64 {
    if text.is_empty() {
        return 0;
    }
    tiktoken_rs::o200k_base_singleton()
        .encode_ordinary(text)
        .len() as u64
}

/// Generated text seen so far: a bounded sample and the total character count.
#[derive(Debug, Default)]
pub struct OutputSample {
    sample: String,
    sample_chars: u64,
    total_chars: u64,
}

impl OutputSample {
    pub fn push(&mut self, text: &str) {
        let chars = text.chars().count() as u64;
        self.total_chars += chars;
        if self.sample.len() + text.len() <= SAMPLE_LIMIT_BYTES {
            self.sample.push_str(text);
            self.sample_chars += chars;
        }
    }

    /// Tokens of everything pushed: exact up to the sample limit, extrapolated beyond it.
    pub fn tokens(&self) -> u64 {
        let sampled = count_blocking(&self.sample);
        if self.total_chars == self.sample_chars || self.sample_chars == 0 {
            return sampled.max(self.total_chars.min(1));
        }
        (u128::from(sampled) * u128::from(self.total_chars)).div_ceil(u128::from(self.sample_chars))
            as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_like_o200k_base() {
        assert_eq!(count(""), 0);
        assert_eq!(count("Hello from the fake"), 4);
        let mut s = OutputSample::default();
        s.push("Hello");
        s.push(" from");
        assert_eq!(s.tokens(), 2);
    }

    #[test]
    fn long_outputs_are_extrapolated_from_a_bounded_sample() {
        let mut s = OutputSample::default();
        let piece = "word ".repeat(100);
        for _ in 0..200 {
            s.push(&piece);
        }
        assert!(s.sample.len() <= SAMPLE_LIMIT_BYTES);
        let exact = count(&piece.repeat(200));
        let estimate = s.tokens();
        assert!(
            estimate.abs_diff(exact) * 100 <= exact,
            "{estimate} vs {exact}"
        );
    }
}
