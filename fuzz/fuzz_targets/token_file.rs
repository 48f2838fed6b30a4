//! `cargo +nightly fuzz run token_file`; on stable, replays `corpus/token_file` (or the files named).
#![cfg_attr(fuzzing, no_main)]

mcp_oauth_client_fuzz::fuzz_target!(token_file);
