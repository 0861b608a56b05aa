//! Writes the block model out as CommonMark Markdown.

use std::fmt::Write as _;

use super::labels::slug;
use super::{Block, Inline};

/// Escapes text for Markdown: backslash before characters with inline meaning,
/// and line breaks folded into spaces so that a value cannot start a new block.
pub(super) fn md_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' => {
                out.push('\\');
                out.push(ch);
            }
            '\n' | '\r' => out.push(' '),
            _ => out.push(ch),
        }
    }
    out
}

fn md_inlines(inlines: &[Inline]) -> String {
    let mut s = String::new();
    for i in inlines {
        match i {
            Inline::Text(x) => s.push_str(&md_escape(x)),
            Inline::Strong(x) => {
                // Keep emphasis delimiters next to non-space text (CommonMark flanking rules).
                let lead = x.len() - x.trim_start().len();
                let trail = x.len() - x.trim_end().len();
                s.push_str(&x[..lead]);
                if !x.trim().is_empty() {
                    let _ = write!(s, "**{}**", md_escape(x.trim()));
                }
                s.push_str(&x[x.len() - trail..]);
            }
        }
    }
    s
}

pub(super) fn to_markdown(blocks: &[Block]) -> String {
    let mut s = String::new();
    for block in blocks {
        match block {
            Block::Heading { level, text } => {
                let _ = writeln!(s, "{} {}\n", "#".repeat(usize::from(*level)), md_escape(text));
            }
            Block::Para(inlines) => {
                let _ = writeln!(s, "{}\n", md_inlines(inlines));
            }
            Block::List(items) => {
                for item in items {
                    let _ = writeln!(s, "- {}", md_inlines(item));
                }
                s.push('\n');
            }
            Block::Table { head, rows } => {
                let row = |cells: &[String]| {
                    format!("| {} |", cells.iter().map(|c| md_escape(c)).collect::<Vec<_>>().join(" | "))
                };
                let _ = writeln!(s, "{}", row(head));
                let _ = writeln!(s, "|{}", "---|".repeat(head.len()));
                for r in rows {
                    let _ = writeln!(s, "{}", row(r));
                }
                s.push('\n');
            }
            Block::Toc(titles) => {
                for title in titles {
                    let _ = writeln!(s, "- [{}](#{})", md_escape(title), slug(title));
                }
                s.push('\n');
            }
        }
    }
    while s.ends_with("\n\n") {
        s.pop();
    }
    s
}
