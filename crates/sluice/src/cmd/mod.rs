//! The subcommands of `sluice`.

pub mod capture;
pub mod run;
pub mod server;
pub mod verify;
