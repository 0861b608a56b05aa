//! Who acts: the principal behind a vault call, stamped on every audit entry
//! the call creates.
//!
//! The decision's actor (`controller` or a recipient) says on whose behalf
//! data is processed; [`By`] says who pressed the button: which API key, the
//! operator at the command line, or (later) the subject's own session. Every
//! mutating or reading vault call takes one, so no audit entry guesses.

/// The acting principal of a vault call.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum By {
    /// An API key, by its public id.
    Key(String),
    /// The operator running the `custos` command line on the data directory.
    Cli,
    /// A data subject's own authenticated session, by its id (not yet issued).
    Session(String),
}

impl By {
    /// An API key by its public id.
    pub fn key(id: impl Into<String>) -> By {
        By::Key(id.into())
    }

    /// The value recorded as `by` in audit entries: `key:<id>`, `cli` or `session:<id>`.
    pub fn audit_label(&self) -> String {
        match self {
            By::Key(id) => format!("key:{id}"),
            By::Cli => "cli".to_string(),
            By::Session(id) => format!("session:{id}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::By;

    #[test]
    fn labels_name_the_kind_and_the_id() {
        assert_eq!(By::key("0a1b2c3d").audit_label(), "key:0a1b2c3d");
        assert_eq!(By::Cli.audit_label(), "cli");
        assert_eq!(By::Session("s1".into()).audit_label(), "session:s1");
    }
}
