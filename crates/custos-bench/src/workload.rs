//! What the benchmarks write and read, derived from the policy in force.
//!
//! The benchmarks name no policy id of their own: [`Workload::from_policy`]
//! picks a jurisdiction and a purpose, and the categories that purpose may
//! use, each with a source declared for it. Any policy that lets some
//! purpose use some category that is not tokenized gives a workload.
//!
//! The choice, for `wanted` fields:
//! - every (jurisdiction, purpose) pair where the purpose has a legal basis in
//!   that jurisdiction is a candidate; its fields are the categories the
//!   purpose may use, except tokenized ones (card numbers take a token path of
//!   their own and need valid numbers), those with a source of kind `provided`
//!   first (what a person gives is the common write);
//! - the candidate with the most fields (up to `wanted`) wins; among equals,
//!   one whose basis is not consent; among those, the first in declaration
//!   order (jurisdictions, then purposes);
//! - each field's source is its first declared source of kind `provided`, or
//!   else its first declared source;
//! - when the basis is consent, [`Workload::needs_consent`] is true and the
//!   benchmarks record each subject's consent to the purpose before they write.
//!
//! Subjects are adults (no birth date), with no objection or restriction, so
//! every read of the workload is allowed.

use custos_core::Policy;
use custos_core::policy::document::{LegalBasis, SourceKind};
use custos_core::policy::{CategoryId, PurposeId};

/// One category the benchmarks write and read, with the source it is written from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// Category id.
    pub category: String,
    /// A source declared for the category.
    pub source: String,
}

/// The policy ids the benchmarks use.
#[derive(Debug, Clone)]
pub struct Workload {
    /// The subjects' jurisdiction.
    pub jurisdiction: String,
    /// A home region for the subjects: the jurisdiction's first country, if it names one.
    pub region: Option<String>,
    /// The purpose every write and read names.
    pub purpose: String,
    /// The purpose's legal basis in the jurisdiction.
    pub basis: LegalBasis,
    /// The fields, at most the number asked for.
    pub fields: Vec<Field>,
    purpose_id: PurposeId,
    category_ids: Vec<CategoryId>,
}

impl Workload {
    /// Derives the workload of up to `wanted` fields (at least one) from `policy`.
    pub fn from_policy(policy: &Policy, wanted: usize) -> anyhow::Result<Workload> {
        let wanted = wanted.max(1);
        let mut best: Option<(Candidate, (usize, bool))> = None;
        for j in policy.jurisdiction_ids() {
            for p in policy.purpose_ids() {
                let Some(basis) = policy.purpose_rules(p).basis_in(j) else { continue };
                let fields = usable_categories(policy, p);
                let rank = (fields.len().min(wanted), basis != LegalBasis::Consent);
                if rank.0 > 0 && best.as_ref().is_none_or(|(_, r)| rank > *r) {
                    best = Some((Candidate { jurisdiction: j, purpose: p, basis, fields }, rank));
                }
            }
        }
        let Some((mut c, _)) = best else {
            anyhow::bail!(
                "the policy gives the benchmark nothing to write: no purpose with a legal basis in a jurisdiction may use a category that is not tokenized"
            );
        };
        c.fields.truncate(wanted);
        let jdoc = policy.jurisdiction_doc(c.jurisdiction);
        let region = jdoc.countries.first().filter(|r| valid_region(r)).cloned();
        Ok(Workload {
            jurisdiction: jdoc.id.value.clone(),
            region,
            purpose: policy.purpose_doc(c.purpose).id.value.clone(),
            basis: c.basis,
            fields: c.fields.iter().map(|(_, f)| f.clone()).collect(),
            purpose_id: c.purpose,
            category_ids: c.fields.iter().map(|(id, _)| *id).collect(),
        })
    }

    /// Whether subjects must consent to the purpose before it may write or read.
    pub fn needs_consent(&self) -> bool {
        self.basis == LegalBasis::Consent
    }

    /// The purpose, resolved in the policy the workload was derived from.
    pub fn purpose_id(&self) -> PurposeId {
        self.purpose_id
    }

    /// The fields' categories, resolved in the policy the workload was derived from.
    pub fn category_ids(&self) -> &[CategoryId] {
        &self.category_ids
    }

    /// One line saying what the benchmark uses, for its output.
    pub fn describe(&self) -> String {
        let fields: Vec<String> = self.fields.iter().map(|f| format!("{} from {}", f.category, f.source)).collect();
        format!(
            "workload from the policy: jurisdiction {}, purpose {} ({}{}), {} categories: {}",
            self.jurisdiction,
            self.purpose,
            self.basis.as_str(),
            if self.needs_consent() { "; each subject's consent is recorded first" } else { "" },
            self.fields.len(),
            fields.join(", ")
        )
    }
}

struct Candidate {
    jurisdiction: custos_core::policy::JurisdictionId,
    purpose: PurposeId,
    basis: LegalBasis,
    fields: Vec<(CategoryId, Field)>,
}

/// The categories `purpose` may use that are not tokenized and have a source,
/// those with a `provided` source first, in declaration order.
fn usable_categories(policy: &Policy, purpose: PurposeId) -> Vec<(CategoryId, Field)> {
    let kind_of = |source: &str| policy.document().sources.iter().find(|s| s.id.value == source).map(|s| s.kind);
    let mut provided = Vec::new();
    let mut other = Vec::new();
    for c in policy.categories_for(purpose) {
        if policy.tokenization(c).is_some() {
            continue;
        }
        let doc = policy.category_doc(c);
        let given = doc.sources.iter().find(|s| kind_of(&s.value) == Some(SourceKind::Provided));
        let Some(source) = given.or_else(|| doc.sources.first()) else { continue };
        let field = Field { category: doc.id.value.clone(), source: source.value.clone() };
        if given.is_some() { provided.push((c, field)) } else { other.push((c, field)) }
    }
    provided.extend(other);
    provided
}

/// A region as the vault accepts it (1 to 64 letters, digits, `-` or `_`).
fn valid_region(r: &str) -> bool {
    !r.is_empty() && r.len() <= 64 && r.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests;
