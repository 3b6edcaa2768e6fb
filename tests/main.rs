//! Integration tests, compiled into one binary so linking stays cheap.

mod chaining;
mod cli;
mod common;
mod diff;
mod durability;
mod engine;
mod external;
mod interop;
mod lint;
mod mock_api;
mod mock_spec;
mod mock_stubs;
mod oauth;
mod props;
mod repl;
mod reports;
mod scripts;
mod secret_hosts;
mod tls;
