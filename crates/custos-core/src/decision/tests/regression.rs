//! Regression tests of the decision engine, each named after the defect it
//! guards (issue 8, "Decision engine").

use super::*;

/// GDPR Art. 21(3): an objection to direct marketing is an objection to all
/// of it. The subject objected to one direct-marketing purpose; every other
/// direct-marketing purpose is denied too, whatever its basis (even a live
/// consent), and purposes that are not direct marketing are untouched.
#[test]
fn regression_objection_to_direct_marketing_covers_every_direct_marketing_purpose() {
    let policy = policy();
    let direct: Vec<&str> =
        policy.direct_marketing_purposes().iter().map(|&p| policy.purpose_doc(p).id.value.as_str()).collect();
    assert_eq!(direct, ["marketing", "newsletter"]);
    for objected in &direct {
        for read in &direct {
            for j in ["eea", "us", "kr"] {
                let s = adult(j).consent(read).objected(objected);
                assert_eq!(
                    check(&s, read, "contact.email", "controller", now()),
                    "objected",
                    "objected to `{objected}`, read for `{read}` in {j}"
                );
            }
        }
    }
    // Purposes that are not direct marketing keep their own rules.
    let s = adult("us").objected("newsletter");
    assert_eq!(check(&s, "fraud", "contact.email", "controller", now()), "allow:legitimate_interest");
    assert_eq!(check(&s, "orders", "contact.email", "controller", now()), "allow:contract");
}
