//! The access report (GDPR Art. 15, CCPA §1798.110) and the portability
//! copy (GDPR Art. 20), assembled from the policy, the person's stored data
//! and the vault's records.
//!
//! The report answers each item the laws list, and says where:
//! [`LEGAL_ITEMS`] maps every item (GDPR Art. 15(1)(a)–(h) and 15(2), CCPA
//! §1798.110(a)(1)–(5)) to the JSON member that answers it, so a reader (or
//! a test) finds each by name. Data is grouped by the policy's `group`
//! headings (the notice's "Information You Can Access"); a category the
//! policy marks `accessible: false` (government ids, passwords, security
//! answers: CCPA §7024(d)) is named with how many values are held, never
//! shown. Card numbers appear as their token and last four digits. The
//! report is produced on demand, never stored (it holds values in clear),
//! and each production is audited (categories, never values).

use custos_core::audit::AuditAction;
use custos_core::policy::document::{LegalBasis, Right, SourceKind};
use custos_core::policy::{CategoryId, JurisdictionId};
use custos_core::subject::{ConsentStatus, SubjectId};
use custos_core::time::format_date;
use custos_store::{Store, StoredItem};
use serde::Serialize;

use super::*;
use crate::write::SUBJECT_CORRECTION;

/// Each legal item of an access response, and the report member that answers it.
pub const LEGAL_ITEMS: [(&str, &str); 15] = [
    ("gdpr_15_1_confirmation", "confirmation"),
    ("gdpr_15_1_a_purposes", "purposes"),
    ("gdpr_15_1_b_categories", "categories"),
    ("gdpr_15_1_c_recipients", "recipients"),
    ("gdpr_15_1_d_retention", "retention"),
    ("gdpr_15_1_e_rights", "rights"),
    ("gdpr_15_1_f_complaint", "complaint"),
    ("gdpr_15_1_g_sources", "sources"),
    ("gdpr_15_1_h_automated_decisions", "automated_decisions"),
    ("gdpr_15_2_transfer_safeguards", "transfers"),
    ("ccpa_110_a_1_categories", "categories"),
    ("ccpa_110_a_2_sources", "sources"),
    ("ccpa_110_a_3_purposes", "purposes"),
    ("ccpa_110_a_4_third_parties", "recipients"),
    ("ccpa_110_a_5_specific_pieces", "data"),
];

/// The schema name and version of the JSON report.
pub const REPORT_FORMAT: &str = "custos-access-report/1";

/// What a person receives in answer to an access (or portability) request.
#[derive(Debug, Clone, Serialize)]
pub struct AccessReport {
    /// [`REPORT_FORMAT`].
    pub format: &'static str,
    /// `access` (everything) or `portability` (only what the person provided, on consent or contract).
    pub scope: &'static str,
    /// Which member answers each legal item ([`LEGAL_ITEMS`]).
    pub legal_items: std::collections::BTreeMap<&'static str, &'static str>,
    /// The notice in force.
    pub notice: NoticeRef,
    /// Who answers, and where to reach them.
    pub controller: ControllerView,
    /// The subject, as the company knows them.
    pub subject: SubjectRef,
    /// Whether personal data about the person is processed (Art. 15(1), first limb).
    pub confirmation: bool,
    /// The categories held (CCPA §1798.110(a)(1), GDPR Art. 15(1)(b)).
    pub categories: Vec<CategoryEntry>,
    /// The specific pieces, grouped as the notice groups them (§1798.110(a)(5); Art. 15(3) copy).
    pub data: Vec<Group>,
    /// Why each is processed and on which basis (Art. 15(1)(a); §1798.110(a)(3)).
    pub purposes: Vec<PurposeEntry>,
    /// Who may receive it (Art. 15(1)(c); §1798.110(a)(4)).
    pub recipients: Vec<RecipientEntry>,
    /// How long it is kept (Art. 15(1)(d)).
    pub retention: Retention,
    /// The person's rights here (Art. 15(1)(e)).
    pub rights: Vec<RightEntry>,
    /// Where to complain (Art. 15(1)(f)).
    pub complaint: Complaint,
    /// Where the data came from (Art. 15(1)(g); §1798.110(a)(2)).
    pub sources: Vec<SourceEntry>,
    /// Automated decision-making, including profiling (Art. 15(1)(h)).
    pub automated_decisions: AutomatedDecisions,
    /// Safeguards for transfers to third countries (Art. 15(2)).
    pub transfers: Vec<TransferEntry>,
    /// The person's standing choices: consents, objections, restriction, opt-out, limit.
    pub choices: Choices,
}

/// The notice in force.
#[derive(Debug, Clone, Serialize)]
pub struct NoticeRef {
    pub id: String,
    pub title: String,
    pub version: String,
}

/// The subject.
#[derive(Debug, Clone, Serialize)]
pub struct SubjectRef {
    pub id: String,
    pub jurisdiction: String,
    pub jurisdiction_name: String,
    pub since: String,
}

/// A category held.
#[derive(Debug, Clone, Serialize)]
pub struct CategoryEntry {
    pub id: String,
    pub name: String,
    pub group: String,
    /// The CCPA §1798.140(v)(1) letter.
    pub ccpa_category: String,
    pub sensitive: bool,
    /// How many values (versions) are held.
    pub values_held: usize,
    /// Whether the values are shown (`false`: named only, CCPA §7024(d)).
    pub shown: bool,
}

/// One heading of the notice's "Information You Can Access".
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    pub group: String,
    pub items: Vec<Piece>,
}

/// One value held.
#[derive(Debug, Clone, Serialize)]
pub struct Piece {
    pub category: String,
    pub category_name: String,
    /// The value; `None` where it is never disclosed.
    pub value: Option<String>,
    /// Why it is not shown, where it is not.
    pub withheld: Option<String>,
    pub version: u32,
    /// `true` for the current version, `false` for a prior one kept by its retention.
    pub current: bool,
    pub collected_at: String,
    pub source: String,
    pub collected_for: String,
    pub notice_version: String,
}

/// A purpose.
#[derive(Debug, Clone, Serialize)]
pub struct PurposeEntry {
    pub id: String,
    pub name: String,
    pub description: String,
    /// The legal basis in the person's jurisdiction (`None`: not processed for it there).
    pub legal_basis: Option<LegalBasis>,
    /// The CCPA business purpose, where the notice names one.
    pub business_purpose: Option<String>,
    /// The categories held about the person that it uses.
    pub categories: Vec<String>,
}

/// A recipient.
#[derive(Debug, Clone, Serialize)]
pub struct RecipientEntry {
    pub id: String,
    pub name: String,
    pub kind: custos_core::policy::document::RecipientKind,
    pub functions: Vec<String>,
    pub countries: Vec<String>,
    pub purposes: Vec<String>,
    /// The categories held about the person it may receive.
    pub categories: Vec<String>,
}

/// Retention.
#[derive(Debug, Clone, Serialize)]
pub struct Retention {
    pub statement: String,
    pub per_purpose: Vec<RetentionEntry>,
    /// How long prior versions are kept.
    pub prior_versions: String,
}

/// One purpose's retention.
#[derive(Debug, Clone, Serialize)]
pub struct RetentionEntry {
    pub purpose: String,
    pub period: Option<String>,
    pub from: Option<custos_core::policy::document::RetentionStart>,
    pub criteria: Option<String>,
}

/// A right and how it is answered here.
#[derive(Debug, Clone, Serialize)]
pub struct RightEntry {
    pub right: &'static str,
    /// Granted by the law though the notice is silent.
    pub statutory: bool,
    pub deadline: String,
    pub source: String,
}

/// Where to complain.
#[derive(Debug, Clone, Serialize)]
pub struct Complaint {
    pub supervisory_authority: Option<String>,
    pub controller_contact: Option<String>,
}

/// A source.
#[derive(Debug, Clone, Serialize)]
pub struct SourceEntry {
    pub id: String,
    pub name: String,
    pub kind: SourceKind,
    pub description: String,
    /// The categories held about the person that came from it.
    pub categories: Vec<String>,
}

/// Automated decision-making.
#[derive(Debug, Clone, Serialize)]
pub struct AutomatedDecisions {
    /// What the notice states (its logic, significance and consequences).
    pub statements: Vec<String>,
    /// Whether the person's jurisdiction grants the right not to be subject to them (Art. 22).
    pub right_granted: bool,
}

/// A transfer mechanism.
#[derive(Debug, Clone, Serialize)]
pub struct TransferEntry {
    pub id: String,
    pub name: String,
    pub kind: custos_core::policy::document::TransferKind,
    pub to: Vec<String>,
    pub valid_from: String,
    pub valid_until: Option<String>,
}

/// Standing choices.
#[derive(Debug, Clone, Serialize)]
pub struct Choices {
    pub consents: Vec<(String, &'static str, String)>,
    pub objections: Vec<(String, String)>,
    pub restricted_since: Option<String>,
    pub opted_out_since: Option<String>,
    pub sensitive_limited_since: Option<String>,
}

impl<S: Store> Vault<S> {
    /// Assembles the access report of a subject (`portability`: only the
    /// data the person provided, processed on consent or contract), and
    /// audits that it was produced, for `request`.
    pub(crate) fn access_report(
        &self,
        subject: &str,
        portability: bool,
        request: &RequestRecord,
        by: &By,
    ) -> Result<AccessReport, VaultError> {
        let sid = SubjectId::parse(subject).map_err(InputError::SubjectId)?;
        let (record, current, key) = self.record_with_items(sid.as_str(), &[])?;
        let person = record.subject.clone();
        if person.erased_at.is_some() {
            return Err(erased_denial());
        }
        let key = match key {
            Some(k) => k,
            None => self.key_of(&record)?,
        };
        let j = self.policy.jurisdiction(&person.jurisdiction);
        let mut items: Vec<StoredItem> = Vec::new();
        for item in current {
            let history = self.store.history(&sid, &item.category)?;
            items.extend(history);
        }
        if portability {
            items.retain(|i| self.portable(i, j));
        }
        items.sort_by(|a, b| {
            (a.category.as_str(), std::cmp::Reverse(a.version))
                .cmp(&(b.category.as_str(), std::cmp::Reverse(b.version)))
        });
        let held: Vec<CategoryId> = {
            let mut ids: Vec<CategoryId> = items.iter().filter_map(|i| self.policy.category(&i.category)).collect();
            ids.dedup();
            ids
        };
        let held_ids: Vec<String> = held.iter().map(|c| self.policy.category_doc(*c).id.value.clone()).collect();
        let data = self.pieces(&key, &person, &items)?;
        let report = AccessReport {
            format: REPORT_FORMAT,
            scope: if portability { "portability" } else { "access" },
            legal_items: LEGAL_ITEMS.into_iter().collect(),
            notice: NoticeRef {
                id: self.policy.document().notice.id.value.clone(),
                title: self.policy.document().notice.title.clone(),
                version: self.policy.version().to_string(),
            },
            controller: self.controller_of(&person.jurisdiction),
            subject: SubjectRef {
                id: person.id.as_str().to_string(),
                jurisdiction: person.jurisdiction.clone(),
                jurisdiction_name: j.map(|j| self.policy.jurisdiction_doc(j).name.clone()).unwrap_or_default(),
                since: format_date(person.created_at.date()),
            },
            confirmation: !items.is_empty(),
            categories: held
                .iter()
                .map(|c| {
                    let doc = self.policy.category_doc(*c);
                    CategoryEntry {
                        id: doc.id.value.clone(),
                        name: doc.name.clone(),
                        group: doc.group.clone(),
                        ccpa_category: doc.ccpa.value.clone(),
                        sensitive: doc.sensitive,
                        values_held: items.iter().filter(|i| i.category == doc.id.value).count(),
                        shown: doc.accessible,
                    }
                })
                .collect(),
            data,
            purposes: self.purposes_for(&held, j),
            recipients: self.recipients_for(&held),
            retention: self.retention_for(&held),
            rights: j.map(|j| self.rights_in(j)).unwrap_or_default(),
            complaint: self.complaint_in(&person.jurisdiction),
            sources: self.sources_for(&items),
            automated_decisions: AutomatedDecisions {
                statements: self.policy.document().notice.automated_decisions.clone(),
                right_granted: j
                    .is_some_and(|j| self.policy.jurisdiction_doc(j).rights.contains(&Right::AutomatedDecisions)),
            },
            transfers: self.transfers_from(j),
            choices: choices_of(&person.state),
        };
        let mut ev = self.request_event(self.clock.now(), AuditAction::AccessReportProduced, request, by);
        ev.categories = held_ids;
        self.store.append_audit(&[ev])?;
        Ok(report)
    }

    /// Where a person of `jurisdiction` may complain: its supervisory
    /// authority and the controller's contact.
    pub(crate) fn complaint_in(&self, jurisdiction: &str) -> Complaint {
        let j = self.policy.jurisdiction(jurisdiction);
        Complaint {
            supervisory_authority: j.and_then(|j| self.policy.jurisdiction_doc(j).supervisory_authority.clone()),
            controller_contact: self.controller_of(jurisdiction).contact,
        }
    }

    /// Whether an item goes into a portability copy: provided by the person,
    /// collected for a purpose resting on consent or contract in their jurisdiction.
    fn portable(&self, item: &StoredItem, j: Option<JurisdictionId>) -> bool {
        let provided = item.source == SUBJECT_CORRECTION
            || self
                .policy
                .document()
                .sources
                .iter()
                .any(|s| s.id.value == item.source && s.kind == SourceKind::Provided);
        let basis =
            self.policy.purpose(&item.purpose).and_then(|p| j.and_then(|j| self.policy.purpose_rules(p).basis_in(j)));
        provided && matches!(basis, Some(LegalBasis::Consent | LegalBasis::Contract))
    }

    fn pieces(
        &self,
        key: &custos_crypto::DataKey,
        person: &custos_core::subject::Subject,
        items: &[StoredItem],
    ) -> Result<Vec<Group>, VaultError> {
        let mut groups: Vec<Group> = Vec::new();
        for item in items {
            let Some(c) = self.policy.category(&item.category) else { continue };
            let doc = self.policy.category_doc(c);
            let (value, withheld) = if doc.accessible {
                let revealed = self.reveal(key, person, item.clone(), LegalBasis::LegalObligation)?;
                (Some(revealed.value.to_string()), None)
            } else {
                (None, Some("never disclosed in an access response (CCPA 11 CCR §7024(d))".to_string()))
            };
            let piece = Piece {
                category: doc.id.value.clone(),
                category_name: doc.name.clone(),
                value,
                withheld,
                version: item.version,
                current: item.superseded_at.is_none(),
                collected_at: item.collected_at.to_string(),
                source: item.source.clone(),
                collected_for: item.purpose.clone(),
                notice_version: item.notice_version.clone(),
            };
            match groups.iter_mut().find(|g| g.group == doc.group) {
                Some(g) => g.items.push(piece),
                None => groups.push(Group { group: doc.group.clone(), items: vec![piece] }),
            }
        }
        Ok(groups)
    }

    fn purposes_for(&self, held: &[CategoryId], j: Option<JurisdictionId>) -> Vec<PurposeEntry> {
        self.policy
            .purpose_ids()
            .filter_map(|p| {
                let rules = self.policy.purpose_rules(p);
                let categories: Vec<String> = held
                    .iter()
                    .filter(|c| rules.allows(**c))
                    .map(|c| self.policy.category_doc(*c).id.value.clone())
                    .collect();
                if categories.is_empty() {
                    return None;
                }
                let doc = self.policy.purpose_doc(p);
                Some(PurposeEntry {
                    id: doc.id.value.clone(),
                    name: doc.name.clone(),
                    description: doc.description.clone(),
                    legal_basis: j.and_then(|j| rules.basis_in(j)),
                    business_purpose: doc.ccpa_business_purpose.clone(),
                    categories,
                })
            })
            .collect()
    }

    fn recipients_for(&self, held: &[CategoryId]) -> Vec<RecipientEntry> {
        self.policy
            .recipient_ids()
            .filter_map(|r| {
                let rules = self.policy.recipient_rules(r);
                let doc = self.policy.recipient_doc(r);
                let categories: Vec<String> = held
                    .iter()
                    .filter(|c| self.policy.purpose_ids().any(|p| rules.may_receive(p, **c)))
                    .map(|c| self.policy.category_doc(*c).id.value.clone())
                    .collect();
                (!categories.is_empty()).then(|| RecipientEntry {
                    id: doc.id.value.clone(),
                    name: doc.name.clone(),
                    kind: doc.kind,
                    functions: doc.functions.clone(),
                    countries: doc.countries.iter().map(|c| c.value.clone()).collect(),
                    purposes: doc.purposes.iter().map(|p| p.value.clone()).collect(),
                    categories,
                })
            })
            .collect()
    }

    fn retention_for(&self, held: &[CategoryId]) -> Retention {
        let per_purpose = self
            .policy
            .purpose_ids()
            .filter(|p| held.iter().any(|c| self.policy.purpose_rules(*p).allows(*c)))
            .map(|p| {
                let doc = self.policy.purpose_doc(p);
                RetentionEntry {
                    purpose: doc.id.value.clone(),
                    period: doc.retention.period.as_ref().map(|s| s.value.clone()),
                    from: doc.retention.from,
                    criteria: doc.retention.criteria.clone(),
                }
            })
            .collect();
        Retention {
            statement: self.policy.document().retention.statement.clone(),
            per_purpose,
            prior_versions: self.policy.prior_versions_retention().to_string(),
        }
    }

    fn rights_in(&self, j: JurisdictionId) -> Vec<RightEntry> {
        self.policy
            .jurisdiction_rules(j)
            .requests
            .iter()
            .map(|r| RightEntry {
                right: r.kind.as_str(),
                statutory: r.statutory,
                deadline: r.deadline.deadline.to_string(),
                source: r.source.clone(),
            })
            .collect()
    }

    fn sources_for(&self, items: &[StoredItem]) -> Vec<SourceEntry> {
        let from = |id: &str| {
            let mut categories: Vec<String> =
                items.iter().filter(|i| i.source == id).map(|i| i.category.clone()).collect();
            categories.dedup();
            categories
        };
        let mut sources: Vec<SourceEntry> = self
            .policy
            .document()
            .sources
            .iter()
            .filter_map(|s| {
                let categories = from(&s.id.value);
                (!categories.is_empty()).then(|| SourceEntry {
                    id: s.id.value.clone(),
                    name: s.name.clone(),
                    kind: s.kind,
                    description: s.description.clone(),
                    categories,
                })
            })
            .collect();
        let corrected = from(SUBJECT_CORRECTION);
        if !corrected.is_empty() {
            sources.push(SourceEntry {
                id: SUBJECT_CORRECTION.to_string(),
                name: "Your corrections".to_string(),
                kind: SourceKind::Provided,
                description: "Values you corrected through a rectification request.".to_string(),
                categories: corrected,
            });
        }
        sources
    }

    fn transfers_from(&self, j: Option<JurisdictionId>) -> Vec<TransferEntry> {
        let Some(j) = j else { return Vec::new() };
        let id = &self.policy.jurisdiction_doc(j).id.value;
        let today = self.clock.now().date();
        // Only mechanisms in force today are safeguards (the EU-US Privacy
        // Shield, invalidated in 2020, is none).
        let in_force = |t: &&custos_core::policy::document::TransferDoc| {
            let from = custos_core::time::parse_date(&t.valid_from.value).is_ok_and(|d| d <= today);
            let until =
                t.valid_until.as_ref().is_none_or(|u| custos_core::time::parse_date(&u.value).is_ok_and(|d| today < d));
            from && until
        };
        self.policy
            .document()
            .transfers
            .iter()
            .filter(|t| t.from.iter().any(|f| &f.value == id))
            .filter(in_force)
            .map(|t| TransferEntry {
                id: t.id.value.clone(),
                name: t.name.clone(),
                kind: t.kind,
                to: t.to.clone(),
                valid_from: t.valid_from.value.clone(),
                valid_until: t.valid_until.as_ref().map(|v| v.value.clone()),
            })
            .collect()
    }
}

fn choices_of(state: &custos_core::subject::SubjectState) -> Choices {
    let date = |t: custos_core::time::Timestamp| t.to_string();
    Choices {
        consents: state
            .consents
            .iter()
            .map(|(p, c)| {
                let status = if c.status == ConsentStatus::Granted { "granted" } else { "withdrawn" };
                (p.clone(), status, date(c.at))
            })
            .collect(),
        objections: state.objections.iter().map(|(p, t)| (p.clone(), date(*t))).collect(),
        restricted_since: state.restricted_since.map(date),
        opted_out_since: state.opted_out_since.map(date),
        sensitive_limited_since: state.sensitive_limited_since.map(date),
    }
}
