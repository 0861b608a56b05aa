//! Renders the human-readable privacy notice from a policy.
//!
//! The notice is generated, never typed by hand: every section comes from the
//! policy file, so that what people read and what Custos enforces cannot drift
//! apart. The sections follow the order of a classic privacy notice (the AWS
//! notice of January 2020 that Custos was built from): what we collect, how we
//! use it, cookies, how we share it, location and transfers, security,
//! advertising, access and choice, children, retention, contacts, and the
//! additional information for each jurisdiction.
//!
//! The text is first laid out as a small block model ([`Block`]) and then
//! written out as Markdown or as a standalone HTML page. Every string taken
//! from the policy is escaped for the output format.
//!
//! `sections.rs` lays out the notice section by section (`jurisdiction.rs`
//! the section of each jurisdiction, with the CCPA disclosures),
//! `labels.rs` holds the wording of the policy's enumerations and small text
//! helpers, and `markdown.rs` and `html.rs` write the blocks out. The
//! rendering of the policies in the repository is pinned by the files under
//! `expected/`.

mod html;
mod jurisdiction;
mod labels;
mod markdown;
mod sections;
#[cfg(test)]
mod tests;

pub use html::escape;

use super::Policy;

/// The output format of [`render`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// CommonMark Markdown.
    Markdown,
    /// A standalone HTML5 document with minimal inline CSS.
    Html,
}

/// Renders the privacy notice described by `policy`.
pub fn render(policy: &Policy, format: Format) -> String {
    let blocks = sections::layout(policy);
    let title = policy.document().notice.title.as_str();
    match format {
        Format::Markdown => markdown::to_markdown(&blocks),
        Format::Html => html::to_html(title, policy.document().notice.effective.value.as_str(), &blocks),
    }
}

/// A run of inline text.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Inline {
    Text(String),
    Strong(String),
}

/// A block of the rendered notice.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Block {
    Heading {
        level: u8,
        text: String,
    },
    Para(Vec<Inline>),
    List(Vec<Vec<Inline>>),
    Table {
        head: Vec<String>,
        rows: Vec<Vec<String>>,
    },
    /// Table of contents: the titles of the level-2 headings that follow.
    Toc(Vec<String>),
}

fn t(s: impl Into<String>) -> Inline {
    Inline::Text(s.into())
}

fn b(s: impl Into<String>) -> Inline {
    Inline::Strong(s.into())
}

/// Collects blocks while the notice is laid out.
#[derive(Default)]
struct Out(Vec<Block>);

impl Out {
    fn h(&mut self, level: u8, text: impl Into<String>) {
        self.0.push(Block::Heading { level, text: text.into() });
    }
    fn p(&mut self, inlines: Vec<Inline>) {
        self.0.push(Block::Para(inlines));
    }
    fn text(&mut self, text: impl Into<String>) {
        self.p(vec![t(text)]);
    }
    fn paras(&mut self, texts: &[String]) {
        for s in texts {
            self.text(s.clone());
        }
    }
    fn list(&mut self, items: Vec<Vec<Inline>>) {
        if !items.is_empty() {
            self.0.push(Block::List(items));
        }
    }
    fn plain_list<S: Into<String>>(&mut self, items: impl IntoIterator<Item = S>) {
        self.list(items.into_iter().map(|s| vec![t(s)]).collect());
    }
}
