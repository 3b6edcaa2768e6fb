//! Vendor packs: hand-written simulations served beside (and before) the engine. Each depends on
//! the engine and the server's shared state; the engine knows none of them.

pub mod constant_contact;
