//! `cargo +nightly fuzz run refresh_mark`; on stable, replays `corpus/refresh_mark` (or the files named).
#![cfg_attr(fuzzing, no_main)]

mcp_oauth_client_fuzz::fuzz_target!(refresh_mark);
