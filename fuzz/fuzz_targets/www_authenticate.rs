//! `cargo +nightly fuzz run www_authenticate`; on stable, replays `corpus/www_authenticate` (or the files named).
#![cfg_attr(fuzzing, no_main)]

mcp_oauth_client_fuzz::fuzz_target!(www_authenticate);
