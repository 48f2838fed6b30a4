//! `cargo +nightly fuzz run stored_tokens`; on stable, replays `corpus/stored_tokens` (or the files named).
#![cfg_attr(fuzzing, no_main)]

mcp_oauth_client_fuzz::fuzz_target!(stored_tokens);
