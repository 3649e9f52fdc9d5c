//! Test support for the end-to-end suite: isolated environments that run the
//! real built binaries (daemon, shim, CLI) against the fake agent or the
//! real codex-acp, and MCP clients that talk to them exactly as Claude Code
//! does: over the shim's stdio.

pub mod claude;
pub mod client;
pub mod council;
pub mod env;
pub mod raw;
pub mod real;

pub use client::{Client, ProgressEvent};
pub use env::{DaemonProcess, TestEnv, binary, wait_until};
pub use raw::RawClient;
