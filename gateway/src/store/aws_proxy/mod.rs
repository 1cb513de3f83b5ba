//! The AWS proxy in PostgreSQL, a file per table: the calls' recordings (`calls`).

pub mod calls;
