//! `cargo +nightly fuzz run authorization_callback`; on stable, replays `corpus/authorization_callback` (or the files named).
#![cfg_attr(fuzzing, no_main)]

mcp_oauth_client_fuzz::fuzz_target!(authorization_callback);
