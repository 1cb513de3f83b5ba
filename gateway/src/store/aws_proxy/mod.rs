//! The AWS proxy in PostgreSQL: the per-user call counts behind its rate limits (`counts`).

mod counts;
