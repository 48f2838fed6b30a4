//! `cargo +nightly fuzz run error_response`; on stable, replays `corpus/error_response` (or the files named).
#![cfg_attr(fuzzing, no_main)]

mcp_oauth_client_fuzz::fuzz_target!(error_response);
