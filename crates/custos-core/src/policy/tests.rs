//! Tests of policy loading and validation.
use super::*;

const EXAMPLE: &str = include_str!("../../../../examples/aws-privacy-notice-2020-01-24.yaml");

const MINIMAL: &str = r#"notice:
  id: test
  title: Test notice
  version: "1"
  effective: "2024-01-01"
sources:
  - id: provided
    kind: provided
    name: Information you give us
categories:
  - id: contact.email
    name: Email address
    ccpa: A
    group: Contact
    sources: [provided]
purposes:
  - id: service
    name: Provide the service
    description: To provide the service.
    categories: [contact.email]
    legal_basis:
      - jurisdiction: default
        basis: contract
    retention:
      period: 1 year
controllers:
  - id: acme
    name: Acme Ltd
    address: 1 Main Street
    country: GB
jurisdictions:
  - id: eea
    name: European Economic Area
    law: GDPR
    rights: [access]
    response:
      deadline: 1 month
      source: GDPR Art. 12(3)
    guardian_required_under: 16
    controller: acme
retention:
  statement: We keep data as long as needed.
  prior_versions: 1 year
"#;

#[test]
fn probe() {
    let cases = [
        ("syntax", MINIMAL.replace("    ccpa: A\n", "    ccpa: [A\n")),
        ("syntax2", MINIMAL.replace("  title: Test notice\n", "  title: Test: \"notice\n")),
        ("tab", MINIMAL.replace("    ccpa: A\n", "\tccpa: A\n")),
        ("unknown", MINIMAL.replace("    group: Contact\n", "    group: Contact\n    colour: blue\n")),
        ("wrongtype", MINIMAL.replace("guardian_required_under: 16", "guardian_required_under: sixteen")),
        ("wrongtype2", MINIMAL.replace("    rights: [access]", "    rights: access")),
        ("badenum", MINIMAL.replace("basis: contract", "basis: contrat")),
        ("missing", MINIMAL.replace("    law: GDPR\n", "")),
        ("unknowncat", MINIMAL.replace("categories: [contact.email]", "categories: [contact.emial]")),
        ("dup", MINIMAL.replace("sources:\n  - id: provided\n    kind: provided\n    name: Information you give us\n", "sources:\n  - id: provided\n    kind: provided\n    name: Information you give us\n  - id: provided\n    kind: automatic\n    name: Auto\n")),
        ("period", MINIMAL.replace("      period: 1 year", "      period: as long as required")),
        ("ccpa", MINIMAL.replace("ccpa: A", "ccpa: M")),
        ("ok", MINIMAL.to_string()),
    ];
    for (name, text) in cases {
        match Policy::from_yaml(&text) {
            Ok(_) => println!("{name}: OK"),
            Err(e) => {
                for d in &e.diagnostics {
                    println!("{name}: {}:{} {:?}", d.line, d.column, d.message);
                }
                if let Err(raw) = serde_saphyr::from_str::<document::PolicyDocument>(&text) {
                    println!("   raw: {:?} loc={:?}", raw.to_string(), raw.location().map(|l| (l.line(), l.column())));
                }
            }
        }
    }
}
