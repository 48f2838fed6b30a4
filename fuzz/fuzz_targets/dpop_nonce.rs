//! `cargo +nightly fuzz run dpop_nonce`; on stable, replays `corpus/dpop_nonce` (or the files named).
#![cfg_attr(fuzzing, no_main)]

mcp_oauth_client_fuzz::fuzz_target!(dpop_nonce);
