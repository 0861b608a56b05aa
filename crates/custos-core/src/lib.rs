//! Custos domain core: the policy (the privacy notice as code), subjects and
//! their choices, the decision engine, and audit chain arithmetic.
//!
//! This crate does no I/O: it parses text it is given, decides from values it
//! is given, and reads time only from the [`time::Clock`] it is handed.

pub mod audit;
pub mod audit_checkpoint;
pub mod deadline;
pub mod decision;
pub mod policy;
pub mod request;
pub mod subject;
pub mod time;

pub use policy::Policy;
