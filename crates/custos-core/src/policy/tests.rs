//! Tests of policy loading and validation.
