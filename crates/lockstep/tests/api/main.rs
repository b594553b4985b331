//! The API driven end to end: a real `lockstep serve` process, real receivers on loopback.
//!
//! Runs on SQLite by default, and on PostgreSQL when `LOCKSTEP_TEST_DATABASE_URL` names a
//! server; `.ci/run` runs it both ways.

mod support;

mod bad_input;
mod contract;
mod lifecycle;
mod locks;
mod restart;
