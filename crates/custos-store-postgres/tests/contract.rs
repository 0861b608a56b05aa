//! The store contract suite, run against PostgreSQL: a fresh database per case.

mod common;

custos_store::contract_tests!(common::fresh_store);
