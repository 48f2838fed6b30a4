//! `cargo +nightly fuzz run jws`; on stable, replays `corpus/jws` (or the files named).
#![cfg_attr(fuzzing, no_main)]

mcp_oauth_client_fuzz::fuzz_target!(jws);
