//! Integration tests: the real client against the embedded authorization server over loopback
//! sockets, with the real callback listener and a headless user agent.

mod agent;
mod bridge;
mod cache;
mod cli;
mod common;
mod destinations;
mod device;
mod dpop;
mod embedding;
mod examples;
mod files;
mod habits;
mod hostile;
mod hostile_bridge;
#[cfg(unix)]
mod interrupts;
#[cfg(target_os = "linux")]
mod local_users;
mod login;
mod machines;
mod network;
#[cfg(feature = "keyring")]
mod os_keyring;
mod refresh;
mod restart;
mod scopes;
mod security;
mod switches;
mod transports;
