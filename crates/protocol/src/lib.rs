//! Wire formats only: JSON bodies and SSE framing of the protocols Switchyard speaks. No I/O,
//! no policy; the engine decides what to do with what is parsed here.

pub mod json;
pub mod openai;
pub mod sse;

pub use json::RawObject;
