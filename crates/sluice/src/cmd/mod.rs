//! The subcommands of `sluice`.

pub mod capture;
