//! End-to-end tests of the connection manager and router: a real listener manager in front of
//! real upstream hyper servers on 127.0.0.1, through static clusters.

mod failures;
mod forwarding;
mod protocols;
mod retries;
pub(crate) mod support;
