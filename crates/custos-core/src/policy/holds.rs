//! Legal holds as the policy declares them, compiled: the purpose each
//! serves, the categories it keeps, how long, and the rule that places it
//! without an officer (GDPR Art. 17(3)(b) and (e); CCPA §1798.105(d)).

use std::collections::HashMap;

use super::document::LegalHoldDoc;
use super::{CategoryId, Errors, PurposeId, index};
use crate::time::Period;

/// A compiled legal hold kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegalHold {
    /// Its id in the policy.
    pub id: String,
    /// The purpose the held data serves: the only one it is read for once
    /// its subject is erased.
    pub purpose: PurposeId,
    /// The categories it keeps, in file order.
    pub categories: Vec<CategoryId>,
    /// How long it holds (from its placement, or from the triggering item).
    pub period: Period,
    /// The category whose recent item places the hold by rule.
    pub applies_while_recent: Option<CategoryId>,
}

impl LegalHold {
    /// Whether the hold keeps `category`.
    pub fn covers(&self, category: CategoryId) -> bool {
        self.categories.contains(&category)
    }
}

/// Validates and compiles the declared holds. A hold names a declared
/// purpose, declared categories (at least one), a period, and for a rule a
/// declared category; ids are unique.
pub(super) fn compile(
    docs: &[LegalHoldDoc],
    categories: &HashMap<String, CategoryId>,
    purposes: &HashMap<String, PurposeId>,
    errs: &mut Errors,
) -> Vec<LegalHold> {
    index(errs, ("legal hold", "legal holds"), docs.iter().map(|h| &h.id), |i| i);
    let mut out = Vec::with_capacity(docs.len());
    for h in docs {
        let period = errs.period(&h.period);
        let purpose = errs.known(purposes, &h.purpose, "purpose");
        let cats: Vec<CategoryId> = h.categories.iter().filter_map(|c| errs.known(categories, c, "category")).collect();
        if h.categories.is_empty() {
            errs.push(&h.id, format!("legal hold `{}` keeps no category", h.id.value));
        }
        let trigger = h.applies_while_recent.as_ref().and_then(|c| errs.known(categories, c, "category"));
        if let (Some(period), Some(purpose)) = (period, purpose) {
            out.push(LegalHold {
                id: h.id.value.clone(),
                purpose,
                categories: cats,
                period,
                applies_while_recent: trigger,
            });
        }
    }
    out
}
