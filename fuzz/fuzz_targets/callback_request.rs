//! `cargo +nightly fuzz run callback_request`; on stable, replays `corpus/callback_request` (or the files named).
#![cfg_attr(fuzzing, no_main)]

mcp_oauth_client_fuzz::fuzz_target!(callback_request);
