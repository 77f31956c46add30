//! A client's Gemini request, written for every provider protocol.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    protocol::fuzzing::request(protocol::Protocol::Gemini, data);
});
