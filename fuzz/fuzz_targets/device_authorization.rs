//! `cargo +nightly fuzz run device_authorization`; on stable, replays `corpus/device_authorization` (or the files named).
#![cfg_attr(fuzzing, no_main)]

mcp_oauth_client_fuzz::fuzz_target!(device_authorization);
