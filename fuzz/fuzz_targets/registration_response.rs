//! `cargo +nightly fuzz run registration_response`; on stable, replays `corpus/registration_response` (or the files named).
#![cfg_attr(fuzzing, no_main)]

mcp_oauth_client_fuzz::fuzz_target!(registration_response);
