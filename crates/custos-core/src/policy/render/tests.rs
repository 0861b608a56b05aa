//! Tests of the rendered notice.

use super::html::escape;
use super::labels::{join_and, long_date, slug};
use super::markdown::md_escape;
use super::sections::*;
use super::*;

const EXAMPLE: &str = include_str!("../../../../../examples/aws-privacy-notice-2020-01-24.yaml");

fn example() -> Policy {
    Policy::from_yaml(EXAMPLE).expect("the shipped example loads")
}

/// The example with one string replaced (the first occurrence).
fn example_with(from: &str, to: &str) -> Policy {
    assert!(EXAMPLE.contains(from), "{from} is not in the example");
    Policy::from_yaml(&EXAMPLE.replacen(from, to, 1)).expect("the edited example loads")
}

/// The policies in the repository (the bundled example and the library
/// policy of the benchmarks), in both formats, rendered exactly as the
/// files under `render/expected/` say: any change to the output shows in
/// review as a change to those files. `CUSTOS_BLESS=1` rewrites them.
#[test]
fn the_policies_in_the_repository_render_as_checked_in() {
    const LIBRARY: &str = include_str!("../../../../custos-bench/tests/policies/millbrook-library.yaml");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/policy/render/expected");
    let bless = std::env::var_os("CUSTOS_BLESS").is_some();
    for (name, yaml) in [("aws-privacy-notice-2020-01-24", EXAMPLE), ("millbrook-library", LIBRARY)] {
        let policy = Policy::from_yaml(yaml).unwrap_or_else(|e| panic!("{name} does not load: {e}"));
        for (format, ext) in [(Format::Markdown, "md"), (Format::Html, "html")] {
            let got = render(&policy, format);
            let path = dir.join(format!("{name}.{ext}"));
            if bless {
                std::fs::create_dir_all(&dir).expect("create render/expected");
                std::fs::write(&path, &got).expect("write the expectation");
            }
            let want = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e} (CUSTOS_BLESS=1 writes it)", path.display()));
            if got != want {
                let (line, (g, w)) = got
                    .lines()
                    .zip(want.lines())
                    .enumerate()
                    .find(|(_, (g, w))| g != w)
                    .unwrap_or((got.lines().count().min(want.lines().count()), ("<end>", "<end>")));
                panic!(
                    "{name} as {ext} differs from {} at line {}:\n  got:  {g}\n  want: {w}",
                    path.display(),
                    line + 1
                );
            }
        }
    }
}

#[test]
fn escape_replaces_every_html_special_character() {
    assert_eq!(
        escape(r#"<a href="x" onclick='y'>&</a>"#),
        "&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;&lt;/a&gt;"
    );
    assert_eq!(escape("plain text, é"), "plain text, é");
}

#[test]
fn html_escapes_a_script_tag_written_in_the_policy() {
    let policy = example_with("title: AWS Privacy Notice", "title: \"<script>alert('x')</script> & co\"");
    let html = render(&policy, Format::Html);
    assert!(!html.contains("<script>"), "an unescaped script tag reached the page");
    assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; co"));
}

#[test]
fn html_is_a_full_standalone_document() {
    let html = render(&example(), Format::Html);
    assert!(html.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"));
    assert!(html.contains("<meta charset=\"utf-8\">"));
    assert!(html.contains("<title>AWS Privacy Notice</title>"));
    assert!(html.contains("<style>"));
    assert!(html.trim_end().ends_with("</html>"));
    assert!(!html.contains("<link") && !html.contains("<script"), "the page must need nothing else");
    assert_eq!(html.matches("<ul>").count(), html.matches("</ul>").count());
    assert_eq!(html.matches("<table>").count(), html.matches("</table>").count());
}

#[test]
fn markdown_contains_each_purpose_name_and_each_controller() {
    let policy = example();
    let md = render(&policy, Format::Markdown);
    for p in &policy.document().purposes {
        assert!(md.contains(&md_escape(&p.name)), "purpose {} missing", p.name);
    }
    for c in &policy.document().controllers {
        assert!(md.contains(&md_escape(&c.name)), "controller {} missing", c.name);
        assert!(md.contains(&md_escape(&c.address)), "address of {} missing", c.name);
    }
}

#[test]
fn markdown_has_the_sections_of_the_notice_in_order() {
    let md = render(&example(), Format::Markdown);
    assert!(md.starts_with("# AWS Privacy Notice\n\n**Last Updated:** January 24, 2020"));
    let mut at = 0;
    for section in [
        S_COLLECT,
        S_USE,
        S_COOKIES,
        S_SHARE,
        S_LOCATION,
        S_SECURE,
        S_ADS,
        S_ACCESS,
        S_CHILDREN,
        S_RETENTION,
        S_CONTACTS,
        S_JURISDICTIONS,
    ] {
        let heading = format!("\n## {}\n", md_escape(section));
        let found = md[at..].find(&heading).unwrap_or_else(|| panic!("section {section} missing or out of order"));
        at += found + heading.len();
    }
    for j in ["### California", "### Canada", "### European Economic Area", "### Japan", "### South Korea"] {
        assert!(md.contains(j), "{j} missing");
    }
}

#[test]
fn expired_transfer_mechanisms_are_marked_as_no_longer_relied_on() {
    let md = render(&example(), Format::Markdown);
    let line = md.lines().find(|l| l.contains("**EU-US Privacy Shield**")).expect("Privacy Shield listed");
    assert!(line.contains("No longer relied on since July 16, 2020"), "{line}");
    assert!(line.contains("Data Privacy Framework"), "{line}");
    let scc =
        md.lines().find(|l| l.contains("**Standard Contractual Clauses (Decision 2021/914)**")).expect("SCCs listed");
    assert!(!scc.contains("No longer relied on"), "{scc}");
}

#[test]
fn korean_processors_are_listed_with_their_functions_under_south_korea() {
    let md = render(&example(), Format::Markdown);
    let korea = &md[md.find("### South Korea").expect("south korea section")..];
    for row in [
        "| Marketo | Customer communications |",
        "| Salesforce | Customer relationship management |",
        "| PaymentTech | Payment instrument processing |",
    ] {
        assert!(korea.contains(row), "{row} missing");
    }
    let share =
        &md[md.find(&format!("## {S_SHARE}")).expect("share")..md.find(&format!("## {S_LOCATION}")).expect("location")];
    assert!(!share.contains("Marketo"), "named processors belong to their jurisdiction");
}

#[test]
fn california_categories_are_computed_from_the_policy() {
    let md = render(&example(), Format::Markdown);
    let ca = &md[md.find("### California").expect("california")..md.find("### Canada").expect("canada")];
    for label in [
        "Identifiers (A):",
        "Personal information described in Cal. Civ. Code §1798.80(e) (B):",
        "Education information (J):",
        "Inferences drawn to create a profile (K):",
        "Sensitive personal information (L):",
    ] {
        assert!(ca.contains(&format!("**{}**", md_escape(label))), "{label} missing");
    }
    assert!(ca.contains("Credit card number"));
    assert!(ca.contains("No sale of personal information"));

    // Remove every category of letter J: the heading goes with it.
    let policy = example_with("ccpa: J", "ccpa: I");
    let md = render(&policy, Format::Markdown);
    assert!(!md.contains("Education information (J)"));
}

#[test]
fn legal_bases_are_given_per_jurisdiction() {
    let md = render(&example(), Format::Markdown);
    let line = md.lines().find(|l| l.starts_with("- **Marketing:**")).expect("marketing listed");
    assert!(line.contains("Legal basis: legitimate interest; your consent in European Economic Area."), "{line}");
    assert!(line.contains("You can object"), "{line}");
    assert!(md.contains("| Marketing | legitimate interest | legitimate interest | your consent | legitimate interest | legitimate interest |"));
}

#[test]
fn children_retention_and_joint_use_are_rendered() {
    let md = render(&example(), Format::Markdown);
    assert!(md.contains(
        "If you\u{2019}re under 18, you may use our offerings only with the involvement of a parent or guardian"
    ));
    assert!(md.contains("- **Provide AWS Offerings:** 2 years after your account is closed."));
    assert!(md.contains("**Records required by law for tax and accounting purposes:** 7 years for"));
    assert!(md.contains("prior version for our records for 1 year."));
    let japan = &md[md.find("### Japan").expect("japan")..md.find("### South Korea").expect("korea")];
    assert!(japan.contains("**Responsible for managing jointly used information:** Amazon Web Services Japan K.K."));
    assert!(japan.contains("**Items used:** Email address, Name, Physical address, Customer ID, Order ID, Session ID"));
}

#[test]
fn guardian_ages_that_differ_are_listed_per_jurisdiction() {
    let policy = example_with(
        "guardian_required_under: 18\n    controller: aws_inc",
        "guardian_required_under: 13\n    controller: aws_inc",
    );
    let md = render(&policy, Format::Markdown);
    assert!(md.contains("- 13 in California\n- 18 in Canada\n"));
}

#[test]
fn markdown_escapes_characters_with_markdown_meaning() {
    assert_eq!(md_escape("a*b_c [x](y) <i> |\nz"), "a\\*b\\_c \\[x\\](y) \\<i\\> \\| z");
}

#[test]
fn helpers_format_dates_lists_and_anchors() {
    assert_eq!(long_date("2020-01-24"), "January 24, 2020");
    assert_eq!(long_date("soon"), "soon");
    assert_eq!(join_and(&["a", "b", "c"]), "a, b and c");
    assert_eq!(join_and(&["a"]), "a");
    assert_eq!(slug("Children\u{2019}s Personal Information"), "childrens-personal-information");
    assert_eq!(slug("Contacts, Notices, and Revisions"), "contacts-notices-and-revisions");
}

/// Automated decision-making the notice states (GDPR Art. 13(2)(f)) gets a
/// section of its own; a notice that states none gets none.
#[test]
fn automated_decisions_the_notice_states_are_rendered_in_their_own_section() {
    assert!(!render(&example(), Format::Markdown).contains(S_AUTOMATED));
    let stated = example_with(
        "  sells_personal_information: false",
        "  sells_personal_information: false\n  automated_decisions:\n    - Fraud scores decide whether a new account is held for review; a person reviews every hold.",
    );
    let md = render(&stated, Format::Markdown);
    let section = &md[md.find(&format!("## {S_AUTOMATED}")).expect("the section")..];
    assert!(section.contains("Fraud scores decide whether a new account is held for review"));
}
