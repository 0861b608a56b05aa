//! The store contract: behaviour every backend must show.
