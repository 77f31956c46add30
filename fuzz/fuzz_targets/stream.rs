//! A provider's event stream in any protocol, in chunks of any size, relayed to a client of
//! any protocol.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    protocol::fuzzing::stream(data);
});
