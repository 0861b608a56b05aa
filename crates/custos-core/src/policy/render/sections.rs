//! The layout of the notice, section by section, in the order of the notice
//! (the jurisdictions' own sections are in `jurisdiction.rs`).

use std::fmt::Write as _;

use super::jurisdiction::jurisdiction_section;
use super::labels::{
    basis_label, category_names, join_and, jurisdiction_name, long_date, recipient_kind_label, retention_label,
    transfer_kind_label,
};
use super::{Block, Inline, Out, b, t};
use crate::policy::document::{LegalBasis, RecipientDoc, SourceKind};
use crate::policy::{Policy, PurposeId};

pub(super) const S_COLLECT: &str = "Personal Information We Collect";
pub(super) const S_USE: &str = "How We Use Personal Information";
pub(super) const S_COOKIES: &str = "Cookies";
pub(super) const S_SHARE: &str = "How We Share Personal Information";
pub(super) const S_LOCATION: &str = "Location of Personal Information";
pub(super) const S_SECURE: &str = "How We Secure Information";
pub(super) const S_ADS: &str = "Internet Advertising and Third Parties";
pub(super) const S_ACCESS: &str = "Access and Choice";
pub(super) const S_CHILDREN: &str = "Children\u{2019}s Personal Information";
pub(super) const S_RETENTION: &str = "Retention of Personal Information";
pub(super) const S_CONTACTS: &str = "Contacts, Notices, and Revisions";
pub(super) const S_AUTOMATED: &str = "Automated Decision-Making";
pub(super) const S_JURISDICTIONS: &str = "Additional Information for Certain Jurisdictions";

pub(super) fn layout(policy: &Policy) -> Vec<Block> {
    let doc = policy.document();
    let n = &doc.notice;
    let mut o = Out::default();

    o.h(1, n.title.clone());
    o.p(vec![b("Last Updated: "), t(long_date(&n.effective.value)), t(format!(" (version {})", n.version.value))]);
    o.paras(&n.summary);
    o.paras(&n.scope_exclusions);

    let mut toc = vec![S_COLLECT, S_USE];
    if !n.cookies.is_empty() {
        toc.push(S_COOKIES);
    }
    toc.extend([S_SHARE, S_LOCATION]);
    if !n.security.is_empty() || doc.categories.iter().any(|c| c.protection.is_some()) {
        toc.push(S_SECURE);
    }
    if !n.advertising.is_empty() {
        toc.push(S_ADS);
    }
    if !n.automated_decisions.is_empty() {
        toc.push(S_AUTOMATED);
    }
    toc.extend([S_ACCESS, S_CHILDREN, S_RETENTION, S_CONTACTS]);
    if !doc.jurisdictions.is_empty() {
        toc.push(S_JURISDICTIONS);
    }
    o.0.push(Block::Toc(toc.iter().map(|s| (*s).to_string()).collect()));

    collect_section(policy, &mut o);
    use_section(policy, &mut o);
    if !n.cookies.is_empty() {
        o.h(2, S_COOKIES);
        o.paras(&n.cookies);
    }
    share_section(policy, &mut o);
    location_section(policy, &mut o);
    if toc.contains(&S_SECURE) {
        security_section(policy, &mut o);
    }
    if !n.advertising.is_empty() {
        o.h(2, S_ADS);
        o.paras(&n.advertising);
    }
    if !n.automated_decisions.is_empty() {
        o.h(2, S_AUTOMATED);
        o.paras(&n.automated_decisions);
    }
    access_section(policy, &mut o);
    children_section(policy, &mut o);
    retention_section(policy, &mut o);
    contacts_section(policy, &mut o);
    if !doc.jurisdictions.is_empty() {
        o.h(2, S_JURISDICTIONS);
        o.text("We provide additional information about the privacy, collection, and use of personal information of people located in certain jurisdictions.");
        for j in &doc.jurisdictions {
            jurisdiction_section(policy, j, &mut o);
        }
    }
    o.0
}

pub(super) fn collect_section(policy: &Policy, o: &mut Out) {
    let doc = policy.document();
    o.h(2, S_COLLECT);
    o.text("Here are the types of information we gather:");
    o.list(
        doc.sources
            .iter()
            .map(|s| {
                let mut item = vec![b(format!("{}:", s.name))];
                if !s.description.is_empty() {
                    item.push(t(format!(" {}", s.description)));
                }
                item
            })
            .collect(),
    );
    for s in &doc.sources {
        o.h(3, s.name.clone());
        if !s.when.is_empty() {
            o.text(match s.kind {
                SourceKind::Provided => "You provide information to us when you:",
                SourceKind::Automatic => "We collect information automatically when you:",
                SourceKind::ThirdParty => "We receive information from these sources when:",
            });
            o.plain_list(s.when.iter().cloned());
        }
        if !s.parties.is_empty() {
            o.p(vec![b("Sources: "), t(s.parties.join(", "))]);
        }
        let items: Vec<Vec<Inline>> = doc
            .categories
            .iter()
            .filter(|c| c.sources.iter().any(|x| x.value == s.id.value))
            .map(|c| {
                let mut item = vec![b(c.name.clone())];
                if !c.examples.is_empty() {
                    item.push(t(format!(": {}", c.examples.join("; "))));
                }
                item
            })
            .collect();
        if !items.is_empty() {
            o.text(match s.kind {
                SourceKind::Provided => {
                    "Depending on your use of our offerings, you might supply us with such information as:"
                }
                SourceKind::Automatic => "Examples of the information we automatically collect include:",
                SourceKind::ThirdParty => "Examples of information we receive from these sources include:",
            });
            o.list(items);
        }
    }
}

pub(super) fn use_section(policy: &Policy, o: &mut Out) {
    let doc = policy.document();
    o.h(2, S_USE);
    o.text("Our purposes for using personal information include:");
    let mut items = Vec::new();
    for p in policy.purpose_ids() {
        let pd = policy.purpose_doc(p);
        let mut item = vec![b(format!("{}:", pd.name)), t(format!(" {}", pd.description))];
        let cats: Vec<&str> = policy.categories_for(p).map(|c| policy.category_doc(c).name.as_str()).collect();
        if !cats.is_empty() {
            item.push(t(format!(" Information used: {}.", cats.join(", "))));
        }
        if let Some(summary) = basis_summary(policy, p) {
            item.push(t(format!(" Legal basis: {summary}.")));
        }
        if pd.direct_marketing {
            item.push(t(" You can object to this use at any time, and we will stop."));
        }
        items.push(item);
    }
    o.list(items);

    if doc.jurisdictions.len() > 1 {
        o.h(3, "Legal bases by jurisdiction");
        let mut head = vec!["Purpose".to_string()];
        head.extend(doc.jurisdictions.iter().map(|j| j.name.clone()));
        let rows = policy
            .purpose_ids()
            .map(|p| {
                let rules = policy.purpose_rules(p);
                let mut row = vec![policy.purpose_doc(p).name.clone()];
                row.extend(policy.jurisdiction_ids().map(|j| {
                    rules.basis_in(j).map_or_else(|| "not carried out".to_string(), |b| basis_label(b).to_string())
                }));
                row
            })
            .collect();
        o.0.push(Block::Table { head, rows });
    }
}

/// "legitimate interest; your consent in the European Economic Area".
pub(super) fn basis_summary(policy: &Policy, p: PurposeId) -> Option<String> {
    let rules = policy.purpose_rules(p);
    let mut by_basis: Vec<(Option<LegalBasis>, Vec<&str>)> = Vec::new();
    for j in policy.jurisdiction_ids() {
        let basis = rules.basis_in(j);
        let name = policy.jurisdiction_doc(j).name.as_str();
        match by_basis.iter_mut().find(|(b, _)| *b == basis) {
            Some((_, names)) => names.push(name),
            None => by_basis.push((basis, vec![name])),
        }
    }
    match by_basis.as_slice() {
        [] => None,
        [(Some(basis), _)] => Some(basis_label(*basis).to_string()),
        _ => {
            // The most common basis first, without naming its jurisdictions.
            by_basis.sort_by_key(|(_, names)| std::cmp::Reverse(names.len()));
            let mut parts = Vec::new();
            for (i, (basis, names)) in by_basis.iter().enumerate() {
                let label = basis.map_or("not carried out", basis_label);
                if i == 0 && basis.is_some() {
                    parts.push(label.to_string());
                } else {
                    parts.push(format!("{label} in {}", join_and(names)));
                }
            }
            Some(parts.join("; "))
        }
    }
}

pub(super) fn share_section(policy: &Policy, o: &mut Out) {
    let doc = policy.document();
    o.h(2, S_SHARE);
    if !doc.notice.sells_personal_information {
        o.text("We do not sell personal information. We share personal information only as described below.");
    } else {
        o.text("We share personal information as described below.");
    }
    let items: Vec<Vec<Inline>> =
        doc.recipients.iter().filter(|r| r.named_in.is_empty()).map(|r| recipient_item(policy, r)).collect();
    o.list(items);
    let named: Vec<&str> = doc
        .jurisdictions
        .iter()
        .filter(|j| doc.recipients.iter().any(|r| r.named_in.iter().any(|n| n.value == j.id.value)))
        .map(|j| j.name.as_str())
        .collect();
    if !named.is_empty() {
        o.text(format!(
            "Service providers named for particular jurisdictions are listed under {} below ({}).",
            S_JURISDICTIONS,
            join_and(&named)
        ));
    }
}

pub(super) fn recipient_item(policy: &Policy, r: &RecipientDoc) -> Vec<Inline> {
    let kind = recipient_kind_label(r.kind);
    let mut item = if r.name.to_lowercase().contains(kind) {
        vec![b(format!("{}:", r.name))]
    } else {
        vec![b(format!("{} ({kind}):", r.name))]
    };
    if !r.description.is_empty() {
        item.push(t(format!(" {}", r.description)));
    }
    if !r.functions.is_empty() {
        item.push(t(format!(" Functions: {}.", r.functions.join("; "))));
    }
    let purposes: Vec<&str> = r
        .purposes
        .iter()
        .filter_map(|p| policy.purpose(&p.value))
        .map(|p| policy.purpose_doc(p).name.as_str())
        .collect();
    if !purposes.is_empty() {
        item.push(t(format!(" For: {}.", purposes.join("; "))));
    }
    if !r.categories.is_empty() {
        item.push(t(format!(
            " Information: {}.",
            category_names(policy, r.categories.iter().map(|c| c.value.as_str()))
        )));
    }
    if !r.countries.is_empty() {
        let cs: Vec<&str> = r.countries.iter().map(|c| c.value.as_str()).collect();
        item.push(t(format!(" Countries: {}.", cs.join(", "))));
    }
    item
}

pub(super) fn location_section(policy: &Policy, o: &mut Out) {
    let doc = policy.document();
    o.h(2, S_LOCATION);
    o.paras(&doc.notice.location);
    if doc.transfers.is_empty() {
        return;
    }
    o.h(3, "Transfer mechanisms");
    o.text("When personal information leaves the jurisdiction it was collected in, we rely on these mechanisms:");
    let mut items = Vec::new();
    for tr in &doc.transfers {
        let from: Vec<&str> = tr.from.iter().map(|f| jurisdiction_name(policy, &f.value)).collect();
        let mut item = vec![
            b(tr.name.clone()),
            t(format!(
                " ({}): from {} to {}; valid from {}.",
                transfer_kind_label(tr.kind),
                join_and(&from),
                tr.to.join(", "),
                long_date(&tr.valid_from.value)
            )),
        ];
        if let Some(until) = &tr.valid_until {
            item.push(b(format!(" No longer relied on since {}.", long_date(&until.value))));
            if let Some(why) = &tr.invalidated_by {
                item.push(t(format!(" Reason: {why}.")));
            }
            if !tr.replaced_by.is_empty() {
                item.push(t(format!(" Replaced by: {}.", tr.replaced_by.join("; "))));
            }
        }
        items.push(item);
    }
    o.list(items);
}

pub(super) fn security_section(policy: &Policy, o: &mut Out) {
    let doc = policy.document();
    o.h(2, S_SECURE);
    let mut items: Vec<Vec<Inline>> = doc.notice.security.iter().map(|s| vec![t(s.clone())]).collect();
    for c in &doc.categories {
        if let Some(p) = &c.protection {
            let allowed: Vec<&str> = p
                .detokenize_purposes
                .iter()
                .filter_map(|id| policy.purpose(&id.value))
                .map(|id| policy.purpose_doc(id).name.as_str())
                .collect();
            let mut s = format!("{} is never stored in clear: we keep a token and the last four digits.", c.name);
            if !allowed.is_empty() {
                let _ = write!(s, " The full value is recovered only for: {}.", allowed.join("; "));
            }
            items.push(vec![t(s)]);
        }
    }
    o.list(items);
}

pub(super) fn access_section(policy: &Policy, o: &mut Out) {
    let doc = policy.document();
    o.h(2, S_ACCESS);
    o.list(
        doc.notice.choices.iter().map(|c| vec![b(format!("{}:", c.name)), t(format!(" {}", c.description))]).collect(),
    );
    let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
    for c in doc.categories.iter().filter(|c| c.accessible) {
        match groups.iter_mut().find(|(g, _)| *g == c.group) {
            Some((_, names)) => names.push(c.name.as_str()),
            None => groups.push((c.group.as_str(), vec![c.name.as_str()])),
        }
    }
    if !groups.is_empty() {
        o.h(3, "Information You Can Access");
        o.text("Examples of information you can access include:");
        o.list(
            groups
                .into_iter()
                .map(|(g, names)| vec![b(format!("{g}:")), t(format!(" {}", names.join(", ")))])
                .collect(),
        );
    }
}

pub(super) fn children_section(policy: &Policy, o: &mut Out) {
    let doc = policy.document();
    o.h(2, S_CHILDREN);
    let mut ages: Vec<u8> = doc.jurisdictions.iter().map(|j| j.guardian_required_under).collect();
    ages.sort_unstable();
    ages.dedup();
    match ages.as_slice() {
        [] => o.text("This notice names no jurisdiction, so no age threshold applies."),
        [age] => o.text(format!(
            "If you\u{2019}re under {age}, you may use our offerings only with the involvement of a parent or guardian, who consents for you and can act on your behalf."
        )),
        _ => {
            o.text("You may use our offerings only with the involvement of a parent or guardian, who consents for you and can act on your behalf, if you are under:");
            o.plain_list(doc.jurisdictions.iter().map(|j| format!("{} in {}", j.guardian_required_under, j.name)));
        }
    }
}

pub(super) fn retention_section(policy: &Policy, o: &mut Out) {
    let doc = policy.document();
    o.h(2, S_RETENTION);
    o.text(doc.retention.statement.clone());
    o.h(3, "Retention by purpose");
    o.list(
        doc.purposes
            .iter()
            .map(|p| vec![b(format!("{}:", p.name)), t(format!(" {}", retention_label(&p.retention)))])
            .collect(),
    );
    if !doc.retention.legal_holds.is_empty() {
        o.h(3, "Legal holds");
        o.text("We keep information beyond these periods, or despite a deletion request, only where the law requires it, and use it then only for that reason:");
        o.list(
            doc.retention
                .legal_holds
                .iter()
                .map(|h| {
                    vec![
                        b(format!("{}:", h.reason)),
                        t(format!(
                            " {} for {} ({}).",
                            h.period.value,
                            category_names(policy, h.categories.iter().map(|c| c.value.as_str())),
                            h.citation
                        )),
                    ]
                })
                .collect(),
        );
    }
    o.text(format!(
        "When you update or delete information, we keep a copy of the prior version for our records for {}.",
        doc.retention.prior_versions.value
    ));
}

pub(super) fn contacts_section(policy: &Policy, o: &mut Out) {
    let doc = policy.document();
    o.h(2, S_CONTACTS);
    o.text("If you have any concern about privacy or want to contact one of our data controllers, please contact us with a thorough description, and we will try to resolve it. You may also contact us at the addresses below:");
    o.list(
        doc.controllers
            .iter()
            .map(|c| {
                let mut line = format!(", {}", c.address);
                if let Some(att) = &c.attention {
                    let _ = write!(line, ", ATTN: {att}");
                }
                if let Some(email) = &c.email {
                    let _ = write!(line, ", email: {email}");
                }
                for note in &c.notes {
                    let _ = write!(line, "{} {note}", if line.ends_with('.') { "" } else { "." });
                }
                vec![b(c.name.clone()), t(line)]
            })
            .collect(),
    );
    o.paras(&doc.notice.revisions);
}
