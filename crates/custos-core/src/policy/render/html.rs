//! Writes the block model out as a standalone HTML5 page with minimal inline CSS.

use std::fmt::Write as _;

use super::labels::slug;
use super::{Block, Inline};

/// Escapes text for HTML element content and double- or single-quoted attributes.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(ch),
        }
    }
    out
}

const CSS: &str = "body{font-family:system-ui,-apple-system,\"Segoe UI\",Roboto,sans-serif;line-height:1.5;color:#1b1b1b;background:#fff;margin:0}\
main{max-width:48rem;margin:0 auto;padding:1.5rem}\
h1{font-size:1.8rem;margin-top:0}h2{font-size:1.35rem;margin-top:2rem;border-bottom:1px solid #ddd;padding-bottom:.25rem}h3{font-size:1.1rem;margin-top:1.5rem}\
table{border-collapse:collapse;margin:1rem 0;width:100%;font-size:.9rem}th,td{border:1px solid #ccc;padding:.3rem .5rem;text-align:left;vertical-align:top}th{background:#f3f3f3}\
nav ul{columns:2;padding-left:1.2rem}a{color:#0b5cad}li{margin:.2rem 0}";

fn html_inlines(inlines: &[Inline]) -> String {
    let mut s = String::new();
    for i in inlines {
        match i {
            Inline::Text(x) => s.push_str(&escape(x)),
            Inline::Strong(x) => {
                let _ = write!(s, "<strong>{}</strong>", escape(x));
            }
        }
    }
    s
}

pub(super) fn to_html(title: &str, effective: &str, blocks: &[Block]) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"dcterms.modified\" content=\"{}\">\n<title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n",
        escape(effective),
        escape(title)
    );
    for block in blocks {
        match block {
            Block::Heading { level, text } => {
                let _ = writeln!(s, "<h{level} id=\"{}\">{}</h{level}>", escape(&slug(text)), escape(text));
            }
            Block::Para(inlines) => {
                let _ = writeln!(s, "<p>{}</p>", html_inlines(inlines));
            }
            Block::List(items) => {
                s.push_str("<ul>\n");
                for item in items {
                    let _ = writeln!(s, "<li>{}</li>", html_inlines(item));
                }
                s.push_str("</ul>\n");
            }
            Block::Table { head, rows } => {
                s.push_str("<table>\n<thead><tr>");
                for h in head {
                    let _ = write!(s, "<th scope=\"col\">{}</th>", escape(h));
                }
                s.push_str("</tr></thead>\n<tbody>\n");
                for r in rows {
                    s.push_str("<tr>");
                    for c in r {
                        let _ = write!(s, "<td>{}</td>", escape(c));
                    }
                    s.push_str("</tr>\n");
                }
                s.push_str("</tbody>\n</table>\n");
            }
            Block::Toc(titles) => {
                s.push_str("<nav aria-label=\"Contents\">\n<ul>\n");
                for title in titles {
                    let _ = writeln!(s, "<li><a href=\"#{}\">{}</a></li>", escape(&slug(title)), escape(title));
                }
                s.push_str("</ul>\n</nav>\n");
            }
        }
    }
    s.push_str("</main>\n</body>\n</html>\n");
    s
}
