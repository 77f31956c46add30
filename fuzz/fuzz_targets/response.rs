//! A provider's complete answer in any protocol, written for a client of any protocol.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    protocol::fuzzing::response(data);
});
