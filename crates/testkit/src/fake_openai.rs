//! Fake OpenAI-compatible upstream (filled in below).
