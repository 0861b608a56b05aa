//! Renders the human-readable privacy notice from a policy.
