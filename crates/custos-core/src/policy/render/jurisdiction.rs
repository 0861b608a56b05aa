//! A jurisdiction's section of the notice: its law, controller, rights and
//! response times, the processors named for it, joint use, de-identified
//! information, and the CCPA disclosures where the jurisdiction declares
//! `framework: ccpa` (whatever its id).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::labels::{category_names, ccpa_label, controller_line, request_label, right_label, verification_label};
use super::{Block, Inline, Out, b, t};
use crate::policy::document::{Framework, JurisdictionDoc, RecipientDoc, RecipientKind};
use crate::policy::{CategoryId, Policy};

pub(super) fn jurisdiction_section(policy: &Policy, j: &JurisdictionDoc, o: &mut Out) {
    let doc = policy.document();
    o.h(3, j.name.clone());
    o.p(vec![b("Law: "), t(j.law.clone())]);
    if let Some(c) = doc.controllers.iter().find(|c| c.id.value == j.controller.value) {
        o.p(vec![b("Controller: "), t(format!("{}, {}", c.name, c.address))]);
    }
    if let Some(contact) = &j.contact {
        o.p(vec![b("Privacy contact: "), t(contact.clone())]);
    }
    o.paras(&j.statements);

    if is_ccpa(j) {
        ccpa_disclosures(policy, o);
    }

    let statutory: Vec<_> = j.requests.iter().filter(|r| r.statutory).map(|r| r.kind.value).collect();
    if !j.rights.is_empty() || !statutory.is_empty() {
        o.p(vec![b("Your rights. "), t("Subject to applicable law, you have the right to:")]);
        o.plain_list(
            j.rights
                .iter()
                .map(|r| right_label(*r).to_string())
                .chain(statutory.iter().map(|r| format!("{} (a right the law grants you)", right_label(*r)))),
        );
    }
    let mut response = format!("We respond to requests within {}", j.response.deadline.value);
    if let Some(ext) = &j.response.extension {
        let _ = write!(
            response,
            "; where necessary we may extend this by {ext}, and we will tell you why",
            ext = ext.value
        );
    }
    let _ = write!(response, " ({}).", j.response.source);
    o.p(vec![b("Response time. "), t(response)]);
    if let Some(rules) = policy.jurisdiction(&j.id.value).map(|id| &policy.jurisdiction_rules(id).requests)
        && !j.requests.is_empty()
    {
        o.p(vec![b("By kind of request. "), t("Times run from the day after we receive your request.")]);
        o.plain_list(rules.iter().map(|r| {
            let mut line = format!("{}: within {}", request_label(r.kind), r.deadline.deadline);
            if let Some(ext) = r.deadline.extension {
                let _ = write!(line, ", extendable by {ext} with notice and reasons");
            }
            if let Some(confirm) = r.deadline.confirm_receipt {
                let _ = write!(line, "; we confirm receipt within {confirm}");
            }
            if r.deadline.clock_pauses {
                line.push_str("; time waiting for your answer does not count");
            }
            let _ = write!(line, "; {} ({}).", verification_label(r.verification), r.source);
            line
        }));
    }
    if let Some(a) = &j.supervisory_authority {
        o.p(vec![b("Supervisory authority: "), t(a.clone())]);
    }
    if j.guardian_required_under > 0 {
        o.p(vec![
            b("Children. "),
            t(format!("Under {} you need a parent or guardian to act with you.", j.guardian_required_under)),
        ]);
    }

    let named: Vec<&RecipientDoc> =
        doc.recipients.iter().filter(|r| r.named_in.iter().any(|n| n.value == j.id.value)).collect();
    if !named.is_empty() {
        o.p(vec![
            b("Service providers. "),
            t(format!(
                "We have contracts in place with the following third party service providers to perform functions on our behalf in {}, and they may have access to your personal information as needed to perform these functions:",
                j.name
            )),
        ]);
        o.0.push(Block::Table {
            head: vec!["Name of Party".into(), "Description of Function".into()],
            rows: named.iter().map(|r| vec![r.name.clone(), r.functions.join("; ")]).collect(),
        });
    }

    if let Some(ju) = doc.joint_use.as_ref().filter(|ju| ju.jurisdiction.value == j.id.value) {
        o.p(vec![b("Joint use. "), t("We use personal information jointly with other companies of our group:")]);
        o.list(vec![
            vec![b("Joint users: "), t(ju.users.join("; "))],
            vec![b("Items used jointly: "), t(category_names(policy, ju.categories.iter().map(|c| c.value.as_str())))],
            vec![
                b("Purposes of joint use: "),
                t(ju.purposes
                    .iter()
                    .filter_map(|p| policy.purpose(&p.value))
                    .map(|p| policy.purpose_doc(p).name.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")),
            ],
            vec![
                b("Responsible for managing jointly used information: "),
                t(controller_line(policy, &ju.responsible.value)),
            ],
        ]);
    }

    if let Some(de) = doc.deidentification.as_ref().filter(|d| d.jurisdiction.value == j.id.value) {
        o.p(vec![b("De-identified information. "), t(de.statement.clone())]);
        o.p(vec![b("Items used: "), t(category_names(policy, de.categories.iter().map(|c| c.value.as_str())))]);
    }
}

/// Whether the jurisdiction's section carries the CCPA disclosures: the
/// policy says so by declaring `framework: ccpa`, whatever the id or the name.
pub(super) fn is_ccpa(j: &JurisdictionDoc) -> bool {
    j.framework == Some(Framework::Ccpa)
}

/// The CCPA disclosures, computed from the policy's categories and recipients.
pub(super) fn ccpa_disclosures(policy: &Policy, o: &mut Out) {
    let doc = policy.document();
    o.p(vec![
        b("Categories of personal information collected. "),
        t("The personal information that we may collect, or may have collected in the preceding twelve months, falls into the following categories established by the California Consumer Privacy Act:"),
    ]);
    o.list(ccpa_items(policy, policy.category_ids()));

    let mut disclosed: Vec<CategoryId> = Vec::new();
    for r in policy.recipient_ids() {
        let rd = policy.recipient_doc(r);
        if !matches!(
            rd.kind,
            RecipientKind::ServiceProvider | RecipientKind::TransactionParty | RecipientKind::Affiliate
        ) {
            continue;
        }
        let rules = policy.recipient_rules(r);
        for c in policy.category_ids() {
            let purposes_allow =
                policy.purpose_ids().any(|p| rules.may_receive(p, c) && policy.purpose_rules(p).allows(c));
            if purposes_allow && !disclosed.contains(&c) {
                disclosed.push(c);
            }
        }
    }
    disclosed.sort();
    if !disclosed.is_empty() {
        o.p(vec![
            b("Categories of personal information disclosed for a business purpose. "),
            t("The personal information that we may have disclosed for a business purpose in the preceding twelve months falls into the following categories:"),
        ]);
        o.list(ccpa_items(policy, disclosed.into_iter()));
    }

    o.p(vec![
        b("Categories of sources. "),
        t(doc.sources.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join("; ")),
        t("."),
    ]);
    let purposes: Vec<String> = doc
        .purposes
        .iter()
        .map(|p| match &p.ccpa_business_purpose {
            Some(label) => format!("{} ({label})", p.name),
            None => p.name.clone(),
        })
        .collect();
    o.p(vec![b("Business or commercial purposes. "), t(purposes.join("; ")), t(".")]);
    if doc.notice.sells_personal_information {
        o.p(vec![
            b("Sale of personal information. "),
            t("We may sell personal information; you can opt out at any time."),
        ]);
    } else {
        o.p(vec![
            b("No sale of personal information. "),
            t("We do not sell personal information of consumers, as those terms are defined under the California Consumer Privacy Act."),
        ]);
    }
}

/// One list item per CCPA letter present, naming the policy's categories in it,
/// plus sensitive personal information (L) for categories flagged sensitive.
pub(super) fn ccpa_items(policy: &Policy, cats: impl Iterator<Item = CategoryId>) -> Vec<Vec<Inline>> {
    let mut by_letter: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    let mut sensitive = Vec::new();
    for c in cats {
        let cd = policy.category_doc(c);
        by_letter.entry(cd.ccpa.value.clone()).or_default().push(cd.name.as_str());
        if cd.sensitive {
            sensitive.push(cd.name.as_str());
        }
    }
    if !sensitive.is_empty() {
        let l = by_letter.entry("L".into()).or_default();
        for name in sensitive {
            if !l.contains(&name) {
                l.push(name);
            }
        }
    }
    by_letter
        .into_iter()
        .map(|(letter, names)| {
            vec![b(format!("{} ({letter}):", ccpa_label(&letter))), t(format!(" {}", names.join(", ")))]
        })
        .collect()
}
