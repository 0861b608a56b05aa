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

/// A detokenization for a purpose the policy does not list for the category
/// was refused in the vault, outside `decide`, and audited as
/// `purpose_not_declared_for_category`. `decide` now refuses it with its own
/// reason, in its place in the order.
#[test]
fn regression_detokenize_purpose_not_listed_is_decided_by_decide() {
    let s = adult("eea");
    // `fraud` may use the card, and may not recover it.
    assert_eq!(check_how(&s, "fraud", "payment.card", "controller", R, now()), "allow:legitimate_interest");
    assert_eq!(check_how(&s, "fraud", "payment.card", "controller", DETOK, now()), "detokenize_not_allowed");
    assert_eq!(check_how(&s, "orders", "payment.card", "controller", DETOK, now()), "allow:contract");
    let policy = policy();
    let card = policy.category("payment.card").expect("card");
    assert!(policy.may_detokenize(resolve_purpose(policy, "orders"), card));
    assert!(!policy.may_detokenize(resolve_purpose(policy, "fraud"), card));
    let email = policy.category("contact.email").expect("email");
    assert!(!policy.may_detokenize(resolve_purpose(policy, "orders"), email), "not tokenized: nothing to recover");
}

/// An actor that is neither the controller nor a declared recipient was
/// refused in the vault as `recipient_not_allowed`, before `decide`. It is
/// now `Actor::Undeclared`, refused by `decide` first of all, and by [`admit`]
/// on its own.
#[test]
fn regression_undeclared_actor_is_decided_by_decide() {
    for s in [adult("eea"), adult("eea").erased(), adult("mars").restricted()] {
        for how in [R, W, DETOK, key(&["orders"])] {
            assert_eq!(check_how(&s, "orders", "contact.email", STRANGER, how, now()), "actor_not_declared", "{how:?}");
        }
    }
    let orders = resolve_purpose(policy(), "orders");
    assert_eq!(admit(Actor::Undeclared, Scope::Unlimited, orders), Err(DenyReason::ActorNotDeclared));
    assert_eq!(admit(Actor::Controller, Scope::Unlimited, orders), Ok(()));
}

/// A service key's purpose scope was checked in the vault and the server, and
/// audited with the code `purpose_not_bound`, which was not a `DenyReason`.
/// The scope is now an input of `decide` (and of [`admit`]), and
/// `purpose_not_bound` a reason like any other.
#[test]
fn regression_service_key_scope_is_decided_by_decide() {
    let s = adult("eea");
    assert_eq!(check_how(&s, "orders", "payment.card", "psp", key(&["orders"]), now()), "allow:contract");
    assert_eq!(check_how(&s, "fraud", "payment.card", "psp", key(&["orders"]), now()), "purpose_not_bound");
    assert_eq!(check_how(&s, "fraud", "payment.card", "psp", R, now()), "allow:legitimate_interest");
    assert!(DenyReason::ALL.contains(&DenyReason::PurposeNotBound));
    assert_eq!(DenyReason::PurposeNotBound.code(), "purpose_not_bound");

    let policy = policy();
    let bound = policy.purpose_set([resolve_purpose(policy, "orders")]);
    assert_eq!(
        admit(Actor::Controller, Scope::Bound(&bound), resolve_purpose(policy, "fraud")),
        Err(DenyReason::PurposeNotBound)
    );
    assert_eq!(admit(Actor::Controller, Scope::Bound(&bound), resolve_purpose(policy, "orders")), Ok(()));
    // A refusal before any category is in question still reads as a sentence.
    let d = Denial {
        reason: DenyReason::PurposeNotBound,
        purpose: resolve_purpose(policy, "fraud"),
        category: None,
        actor: Actor::Controller,
    };
    assert_eq!(
        d.sentence(policy),
        "this API key is not bound to purpose `fraud`, so it may not have personal data for it"
    );
}

/// Reading every value of a subject who has none left was refused in the
/// vault by looking at `erased_at` itself; [`readable`] is `decide`'s own
/// check, so the vault asks the decision module for that too.
#[test]
fn readable_is_the_erasure_check_of_decide() {
    assert_eq!(readable(&adult("eea")), Ok(()));
    assert_eq!(readable(&adult("eea").erased()), Err(DenyReason::Erased));
    let policy = policy();
    let d = Denial {
        reason: DenyReason::Erased,
        purpose: resolve_purpose(policy, "orders"),
        category: None,
        actor: Actor::Controller,
    };
    assert_eq!(d.sentence(policy), "the subject's data was erased and can no longer be read (purpose `orders`)");
}
