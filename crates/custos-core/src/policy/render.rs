//! Renders the human-readable privacy notice from a policy.
//!
//! The notice is generated, never typed by hand: every section comes from the
//! policy file, so that what people read and what Custos enforces cannot drift
//! apart. The sections follow the order of a classic privacy notice (the AWS
//! notice of January 2020 that Custos was built from): what we collect, how we
//! use it, cookies, how we share it, location and transfers, security,
//! advertising, access and choice, children, retention, contacts, and the
//! additional information for each jurisdiction.
//!
//! The text is first laid out as a small block model ([`Block`]) and then
//! written out as Markdown or as a standalone HTML page. Every string taken
//! from the policy is escaped for the output format.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::document::{
    Framework, JurisdictionDoc, LegalBasis, RecipientDoc, RecipientKind, RetentionRuleDoc, RetentionStart, Right,
    SourceKind, TransferKind,
};
use super::{CategoryId, Policy};
use crate::time::parse_date;

/// The output format of [`render`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// CommonMark Markdown.
    Markdown,
    /// A standalone HTML5 document with minimal inline CSS.
    Html,
}

/// Renders the privacy notice described by `policy`.
pub fn render(policy: &Policy, format: Format) -> String {
    let blocks = layout(policy);
    let title = policy.document().notice.title.as_str();
    match format {
        Format::Markdown => to_markdown(&blocks),
        Format::Html => to_html(title, policy.document().notice.effective.value.as_str(), &blocks),
    }
}

// ---------------------------------------------------------------------------
// Block model
// ---------------------------------------------------------------------------

/// A run of inline text.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Inline {
    Text(String),
    Strong(String),
}

/// A block of the rendered notice.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Block {
    Heading {
        level: u8,
        text: String,
    },
    Para(Vec<Inline>),
    List(Vec<Vec<Inline>>),
    Table {
        head: Vec<String>,
        rows: Vec<Vec<String>>,
    },
    /// Table of contents: the titles of the level-2 headings that follow.
    Toc(Vec<String>),
}

fn t(s: impl Into<String>) -> Inline {
    Inline::Text(s.into())
}

fn b(s: impl Into<String>) -> Inline {
    Inline::Strong(s.into())
}

/// Collects blocks while the notice is laid out.
#[derive(Default)]
struct Out(Vec<Block>);

impl Out {
    fn h(&mut self, level: u8, text: impl Into<String>) {
        self.0.push(Block::Heading { level, text: text.into() });
    }
    fn p(&mut self, inlines: Vec<Inline>) {
        self.0.push(Block::Para(inlines));
    }
    fn text(&mut self, text: impl Into<String>) {
        self.p(vec![t(text)]);
    }
    fn paras(&mut self, texts: &[String]) {
        for s in texts {
            self.text(s.clone());
        }
    }
    fn list(&mut self, items: Vec<Vec<Inline>>) {
        if !items.is_empty() {
            self.0.push(Block::List(items));
        }
    }
    fn plain_list<S: Into<String>>(&mut self, items: impl IntoIterator<Item = S>) {
        self.list(items.into_iter().map(|s| vec![t(s)]).collect());
    }
}

// ---------------------------------------------------------------------------
// Layout: the notice, section by section
// ---------------------------------------------------------------------------

const S_COLLECT: &str = "Personal Information We Collect";
const S_USE: &str = "How We Use Personal Information";
const S_COOKIES: &str = "Cookies";
const S_SHARE: &str = "How We Share Personal Information";
const S_LOCATION: &str = "Location of Personal Information";
const S_SECURE: &str = "How We Secure Information";
const S_ADS: &str = "Internet Advertising and Third Parties";
const S_ACCESS: &str = "Access and Choice";
const S_CHILDREN: &str = "Children\u{2019}s Personal Information";
const S_RETENTION: &str = "Retention of Personal Information";
const S_CONTACTS: &str = "Contacts, Notices, and Revisions";
const S_JURISDICTIONS: &str = "Additional Information for Certain Jurisdictions";

fn layout(policy: &Policy) -> Vec<Block> {
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

fn collect_section(policy: &Policy, o: &mut Out) {
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

fn use_section(policy: &Policy, o: &mut Out) {
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
fn basis_summary(policy: &Policy, p: super::PurposeId) -> Option<String> {
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

fn share_section(policy: &Policy, o: &mut Out) {
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

fn recipient_item(policy: &Policy, r: &RecipientDoc) -> Vec<Inline> {
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

fn location_section(policy: &Policy, o: &mut Out) {
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

fn security_section(policy: &Policy, o: &mut Out) {
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

fn access_section(policy: &Policy, o: &mut Out) {
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

fn children_section(policy: &Policy, o: &mut Out) {
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

fn retention_section(policy: &Policy, o: &mut Out) {
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

fn contacts_section(policy: &Policy, o: &mut Out) {
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

fn jurisdiction_section(policy: &Policy, j: &JurisdictionDoc, o: &mut Out) {
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

    if !j.rights.is_empty() {
        o.p(vec![b("Your rights. "), t("Subject to applicable law, you have the right to:")]);
        o.plain_list(j.rights.iter().map(|r| right_label(*r).to_string()));
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
fn is_ccpa(j: &JurisdictionDoc) -> bool {
    j.framework == Some(Framework::Ccpa)
}

/// The CCPA disclosures, computed from the policy's categories and recipients.
fn ccpa_disclosures(policy: &Policy, o: &mut Out) {
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
fn ccpa_items(policy: &Policy, cats: impl Iterator<Item = CategoryId>) -> Vec<Vec<Inline>> {
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

// ---------------------------------------------------------------------------
// Labels
// ---------------------------------------------------------------------------

fn ccpa_label(letter: &str) -> &'static str {
    match letter {
        "A" => "Identifiers",
        "B" => "Personal information described in Cal. Civ. Code §1798.80(e)",
        "C" => "Characteristics of protected classifications under California or federal law",
        "D" => "Commercial information",
        "E" => "Biometric information",
        "F" => "Internet or other electronic network activity information",
        "G" => "Geolocation data",
        "H" => "Audio, electronic, visual, thermal, olfactory, or similar information",
        "I" => "Professional or employment-related information",
        "J" => "Education information",
        "K" => "Inferences drawn to create a profile",
        "L" => "Sensitive personal information",
        _ => "Other",
    }
}

fn basis_label(b: LegalBasis) -> &'static str {
    match b {
        LegalBasis::Contract => "performance of a contract",
        LegalBasis::LegitimateInterest => "legitimate interest",
        LegalBasis::LegalObligation => "legal obligation",
        LegalBasis::Consent => "your consent",
    }
}

fn right_label(r: Right) -> &'static str {
    match r {
        Right::Access => {
            "ask whether we hold personal information about you and request a copy of it and information about how it is processed"
        }
        Right::Rectification => "request that inaccurate personal information is corrected",
        Right::Erasure => "request deletion of your personal information",
        Right::Restriction => "request us to restrict the processing of your personal information",
        Right::Objection => "object to the processing of your personal information",
        Right::Portability => "request portability of personal information that you have provided to us",
        Right::Complaint => "lodge a complaint",
        Right::WithdrawConsent => {
            "withdraw your consent at any time, after which we stop any further processing for that purpose"
        }
        Right::OptOutOfSale => "opt out of the sale or sharing of your personal information",
        Right::NonDiscrimination => "not be discriminated against for exercising your rights",
    }
}

fn recipient_kind_label(k: RecipientKind) -> &'static str {
    match k {
        RecipientKind::Affiliate => "affiliates",
        RecipientKind::ServiceProvider => "service provider",
        RecipientKind::TransactionParty => "transactions involving third parties",
        RecipientKind::BusinessTransfer => "business transfers",
        RecipientKind::LegalAndProtection => "protection of us and others",
        RecipientKind::AtYourOption => "at your option",
    }
}

fn transfer_kind_label(k: TransferKind) -> &'static str {
    match k {
        TransferKind::Adequacy => "adequacy decision",
        TransferKind::StandardContractualClauses => "standard contractual clauses",
        TransferKind::BindingCorporateRules => "binding corporate rules",
        TransferKind::Derogation => "derogation under GDPR Art. 49",
    }
}

fn retention_label(r: &RetentionRuleDoc) -> String {
    let mut s = match (&r.period, r.as_long_as_required) {
        (Some(p), _) => {
            let from = match r.from {
                Some(RetentionStart::Collection) | None => "from collection",
                Some(RetentionStart::AccountClosure) => "after your account is closed",
                Some(RetentionStart::LastUse) => "after last use",
            };
            format!("{} {from}.", p.value)
        }
        (None, _) => "as long as required to fulfill this purpose.".to_string(),
    };
    if let Some(c) = &r.criteria {
        let _ = write!(s, " {c}");
    }
    s
}

fn category_names<'a>(policy: &Policy, ids: impl Iterator<Item = &'a str>) -> String {
    ids.map(|id| policy.category(id).map_or(id, |c| policy.category_doc(c).name.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn jurisdiction_name<'a>(policy: &'a Policy, id: &'a str) -> &'a str {
    policy.jurisdiction(id).map_or(id, |j| policy.jurisdiction_doc(j).name.as_str())
}

fn controller_line(policy: &Policy, id: &str) -> String {
    policy
        .document()
        .controllers
        .iter()
        .find(|c| c.id.value == id)
        .map_or_else(|| id.to_string(), |c| format!("{}, {}", c.name, c.address))
}

/// "a", "a and b", "a, b and c".
fn join_and(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_string(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// `2020-01-24` → `January 24, 2020`; anything else as written.
fn long_date(s: &str) -> String {
    parse_date(s).map_or_else(|_| s.to_string(), |d| format!("{} {}, {}", d.month(), d.day(), d.year()))
}

/// A heading's anchor: lower-case ASCII letters and digits, words joined by `-`.
fn slug(s: &str) -> String {
    let mut out = String::new();
    for ch in s.chars() {
        if ch.is_ascii_alphanumeric() {
            out.push(ch.to_ascii_lowercase());
        } else if (ch.is_whitespace() || ch == '-') && !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

// ---------------------------------------------------------------------------
// Markdown
// ---------------------------------------------------------------------------

/// Escapes text for Markdown: backslash before characters with inline meaning,
/// and line breaks folded into spaces so that a value cannot start a new block.
fn md_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' => {
                out.push('\\');
                out.push(ch);
            }
            '\n' | '\r' => out.push(' '),
            _ => out.push(ch),
        }
    }
    out
}

fn md_inlines(inlines: &[Inline]) -> String {
    let mut s = String::new();
    for i in inlines {
        match i {
            Inline::Text(x) => s.push_str(&md_escape(x)),
            Inline::Strong(x) => {
                // Keep emphasis delimiters next to non-space text (CommonMark flanking rules).
                let lead = x.len() - x.trim_start().len();
                let trail = x.len() - x.trim_end().len();
                s.push_str(&x[..lead]);
                if !x.trim().is_empty() {
                    let _ = write!(s, "**{}**", md_escape(x.trim()));
                }
                s.push_str(&x[x.len() - trail..]);
            }
        }
    }
    s
}

fn to_markdown(blocks: &[Block]) -> String {
    let mut s = String::new();
    for block in blocks {
        match block {
            Block::Heading { level, text } => {
                let _ = writeln!(s, "{} {}\n", "#".repeat(usize::from(*level)), md_escape(text));
            }
            Block::Para(inlines) => {
                let _ = writeln!(s, "{}\n", md_inlines(inlines));
            }
            Block::List(items) => {
                for item in items {
                    let _ = writeln!(s, "- {}", md_inlines(item));
                }
                s.push('\n');
            }
            Block::Table { head, rows } => {
                let row = |cells: &[String]| {
                    format!("| {} |", cells.iter().map(|c| md_escape(c)).collect::<Vec<_>>().join(" | "))
                };
                let _ = writeln!(s, "{}", row(head));
                let _ = writeln!(s, "|{}", "---|".repeat(head.len()));
                for r in rows {
                    let _ = writeln!(s, "{}", row(r));
                }
                s.push('\n');
            }
            Block::Toc(titles) => {
                for title in titles {
                    let _ = writeln!(s, "- [{}](#{})", md_escape(title), slug(title));
                }
                s.push('\n');
            }
        }
    }
    while s.ends_with("\n\n") {
        s.pop();
    }
    s
}

// ---------------------------------------------------------------------------
// HTML
// ---------------------------------------------------------------------------

/// Escapes text for HTML element content and double- or single-quoted attributes.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(ch),
        }
    }
    out
}

const CSS: &str = "body{font-family:system-ui,-apple-system,\"Segoe UI\",Roboto,sans-serif;line-height:1.5;color:#1b1b1b;background:#fff;margin:0}\
main{max-width:48rem;margin:0 auto;padding:1.5rem}\
h1{font-size:1.8rem;margin-top:0}h2{font-size:1.35rem;margin-top:2rem;border-bottom:1px solid #ddd;padding-bottom:.25rem}h3{font-size:1.1rem;margin-top:1.5rem}\
table{border-collapse:collapse;margin:1rem 0;width:100%;font-size:.9rem}th,td{border:1px solid #ccc;padding:.3rem .5rem;text-align:left;vertical-align:top}th{background:#f3f3f3}\
nav ul{columns:2;padding-left:1.2rem}a{color:#0b5cad}li{margin:.2rem 0}";

fn html_inlines(inlines: &[Inline]) -> String {
    let mut s = String::new();
    for i in inlines {
        match i {
            Inline::Text(x) => s.push_str(&escape(x)),
            Inline::Strong(x) => {
                let _ = write!(s, "<strong>{}</strong>", escape(x));
            }
        }
    }
    s
}

fn to_html(title: &str, effective: &str, blocks: &[Block]) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"dcterms.modified\" content=\"{}\">\n<title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n",
        escape(effective),
        escape(title)
    );
    for block in blocks {
        match block {
            Block::Heading { level, text } => {
                let _ = writeln!(s, "<h{level} id=\"{}\">{}</h{level}>", escape(&slug(text)), escape(text));
            }
            Block::Para(inlines) => {
                let _ = writeln!(s, "<p>{}</p>", html_inlines(inlines));
            }
            Block::List(items) => {
                s.push_str("<ul>\n");
                for item in items {
                    let _ = writeln!(s, "<li>{}</li>", html_inlines(item));
                }
                s.push_str("</ul>\n");
            }
            Block::Table { head, rows } => {
                s.push_str("<table>\n<thead><tr>");
                for h in head {
                    let _ = write!(s, "<th scope=\"col\">{}</th>", escape(h));
                }
                s.push_str("</tr></thead>\n<tbody>\n");
                for r in rows {
                    s.push_str("<tr>");
                    for c in r {
                        let _ = write!(s, "<td>{}</td>", escape(c));
                    }
                    s.push_str("</tr>\n");
                }
                s.push_str("</tbody>\n</table>\n");
            }
            Block::Toc(titles) => {
                s.push_str("<nav aria-label=\"Contents\">\n<ul>\n");
                for title in titles {
                    let _ = writeln!(s, "<li><a href=\"#{}\">{}</a></li>", escape(&slug(title)), escape(title));
                }
                s.push_str("</ul>\n</nav>\n");
            }
        }
    }
    s.push_str("</main>\n</body>\n</html>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../../../examples/aws-privacy-notice-2020-01-24.yaml");

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
        const LIBRARY: &str = include_str!("../../../custos-bench/tests/policies/millbrook-library.yaml");
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
        let scc = md
            .lines()
            .find(|l| l.contains("**Standard Contractual Clauses (Decision 2021/914)**"))
            .expect("SCCs listed");
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
        let share = &md[md.find(&format!("## {S_SHARE}")).expect("share")
            ..md.find(&format!("## {S_LOCATION}")).expect("location")];
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
        assert!(
            japan.contains("**Responsible for managing jointly used information:** Amazon Web Services Japan K.K.")
        );
        assert!(
            japan.contains("**Items used:** Email address, Name, Physical address, Customer ID, Order ID, Session ID")
        );
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
}
