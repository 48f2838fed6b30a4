//! `cargo +nightly fuzz run token_exchange_response`; on stable, replays `corpus/token_exchange_response` (or the files named).
#![cfg_attr(fuzzing, no_main)]

mcp_oauth_client_fuzz::fuzz_target!(token_exchange_response);
