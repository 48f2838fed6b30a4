//! The commands, one file each for the larger ones.

#[cfg(feature = "demo")]
pub(crate) mod demo;
pub(crate) mod login;
pub(crate) mod logout;
pub(crate) mod proxy;
pub(crate) mod status;
