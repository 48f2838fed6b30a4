//! `cargo +nightly fuzz run private_key_pem`; on stable, replays `corpus/private_key_pem` (or the files named).
#![cfg_attr(fuzzing, no_main)]

mcp_oauth_client_fuzz::fuzz_target!(private_key_pem);
