//! Wire formats only: JSON bodies and SSE framing of the protocols Switchyard speaks. No I/O,
//! no policy; the engine decides what to do with what is parsed here.

pub mod anthropic;
pub mod canonical;
#[doc(hidden)]
pub mod fuzzing;
pub mod gemini;
pub mod json;
pub mod openai;
pub mod sse;
pub mod translate;

pub use canonical::Protocol;
pub use json::{RawMap, RawObject};
