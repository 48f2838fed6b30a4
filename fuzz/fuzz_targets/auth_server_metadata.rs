//! `cargo +nightly fuzz run auth_server_metadata`; on stable, replays `corpus/auth_server_metadata` (or the files named).
#![cfg_attr(fuzzing, no_main)]

mcp_oauth_client_fuzz::fuzz_target!(auth_server_metadata);
