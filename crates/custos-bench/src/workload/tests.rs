use super::*;

const AWS: &str = include_str!("../../../../examples/aws-privacy-notice-2020-01-24.yaml");
const LIBRARY: &str = include_str!("../../tests/policies/millbrook-library.yaml");

fn load(text: &str) -> Policy {
    Policy::from_yaml(text).unwrap_or_else(|e| panic!("{}", e.display_in("test policy")))
}

fn categories(w: &Workload) -> Vec<&str> {
    w.fields.iter().map(|f| f.category.as_str()).collect()
}

#[test]
fn the_bundled_policy_gives_the_workload_the_benchmarks_always_measured() {
    let policy = load(AWS);
    let w = Workload::from_policy(&policy, 8).expect("a workload");
    assert_eq!((w.jurisdiction.as_str(), w.purpose.as_str()), ("california", "provide_offerings"));
    assert_eq!(w.basis, LegalBasis::Contract);
    assert!(!w.needs_consent());
    // What the hard-coded benchmark chose: the purpose's first eight
    // categories that may come from `provided` and are not tokenized.
    let pid = policy.purpose("provide_offerings").expect("purpose");
    let old: Vec<String> = policy
        .categories_for(pid)
        .filter(|c| policy.tokenization(*c).is_none())
        .map(|c| policy.category_doc(c))
        .filter(|d| d.sources.iter().any(|s| s.value == "provided"))
        .map(|d| d.id.value.clone())
        .take(8)
        .collect();
    assert_eq!(categories(&w), old);
    assert!(w.fields.iter().all(|f| f.source == "provided"));
    let four = Workload::from_policy(&policy, 4).expect("a workload");
    assert_eq!(categories(&four), ["contact.name", "contact.email", "contact.phone", "contact.address"]);
}

#[test]
fn another_companys_policy_gives_a_workload_of_its_own_ids() {
    let policy = load(LIBRARY);
    let w = Workload::from_policy(&policy, 8).expect("a workload");
    // The purpose with the most categories rests on consent: it wins, and
    // the benchmarks must record consent first.
    assert_eq!((w.jurisdiction.as_str(), w.purpose.as_str()), ("ontario", "reading_suggestions"));
    assert!(w.needs_consent());
    assert_eq!(w.region.as_deref(), Some("CA"));
    // The tokenized card is left out; categories with a `provided` source come first.
    assert_eq!(
        categories(&w),
        [
            "member.full_name",
            "member.postal_address",
            "member.phone",
            "member.card_barcode",
            "lending.loan_history",
            "lending.holds"
        ]
    );
    let sources: Vec<&str> = w.fields.iter().map(|f| f.source.as_str()).collect();
    assert_eq!(
        sources,
        [
            "membership_form",
            "membership_form",
            "membership_form",
            "circulation_desk",
            "circulation_desk",
            "circulation_desk"
        ]
    );
    // Every field is one the policy lets the purpose use from that source.
    for (f, c) in w.fields.iter().zip(w.category_ids()) {
        assert_eq!(policy.category(&f.category), Some(*c));
        assert!(policy.purpose_rules(w.purpose_id()).allows(*c));
        assert!(policy.category_doc(*c).sources.iter().any(|s| s.value == f.source));
    }
}

#[test]
fn a_purpose_without_consent_wins_when_it_gives_as_many_fields() {
    let policy = load(LIBRARY);
    let w = Workload::from_policy(&policy, 3).expect("a workload");
    assert_eq!(w.purpose, "lend_items");
    assert_eq!(w.basis, LegalBasis::Contract);
    assert_eq!(categories(&w), ["member.full_name", "member.card_barcode", "lending.holds"]);
}

#[test]
fn a_policy_with_nothing_to_write_is_a_clear_error() {
    // Only the tokenized card is left for the one purpose that has a basis.
    let text = LIBRARY
        .replace("categories: [member.full_name, member.card_barcode, lending.holds]", "categories: [billing.fine_card]")
        .replace(
            "categories: [member.full_name, member.postal_address, member.phone, lending.loan_history, lending.holds, member.card_barcode]",
            "categories: [billing.fine_card]",
        )
        .replace("categories: [member.full_name, member.postal_address, billing.fine_card]", "categories: [billing.fine_card]");
    let policy = load(&text);
    let err = Workload::from_policy(&policy, 8).expect_err("nothing to write");
    assert!(err.to_string().contains("nothing to write"), "{err}");
}
