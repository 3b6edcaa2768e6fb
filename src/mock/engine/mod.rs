//! The general engine: what serves any API, of which the Constant Contact simulation is one
//! pack — a served OpenAPI document ([`spec`]) and injected faults ([`faults`]).

pub mod faults;
pub mod pattern;
pub mod record;
pub mod spec;
pub mod stubs;
