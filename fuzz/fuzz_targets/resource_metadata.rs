//! `cargo +nightly fuzz run resource_metadata`; on stable, replays `corpus/resource_metadata` (or the files named).
#![cfg_attr(fuzzing, no_main)]

mcp_oauth_client_fuzz::fuzz_target!(resource_metadata);
