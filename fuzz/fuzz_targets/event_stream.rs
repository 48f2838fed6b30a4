//! `cargo +nightly fuzz run event_stream`; on stable, replays `corpus/event_stream` (or the files named).
#![cfg_attr(fuzzing, no_main)]

mcp_oauth_client_fuzz::fuzz_target!(event_stream);
