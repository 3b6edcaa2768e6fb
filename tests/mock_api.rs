//! The Constant Contact mock over real sockets on 127.0.0.1.
