//! `cargo +nightly fuzz run stored_client`; on stable, replays `corpus/stored_client` (or the files named).
#![cfg_attr(fuzzing, no_main)]

mcp_oauth_client_fuzz::fuzz_target!(stored_client);
