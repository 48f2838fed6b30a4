//! `cargo +nightly fuzz run bridge_message`; on stable, replays `corpus/bridge_message` (or the files named).
#![cfg_attr(fuzzing, no_main)]

mcp_oauth_client_fuzz::fuzz_target!(bridge_message);
