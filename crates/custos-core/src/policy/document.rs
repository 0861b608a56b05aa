//! The policy file as written: the serde shape of the YAML document.
//!
//! Every struct denies unknown keys, and every identifier or reference is
//! [`Spanned`] so that validation errors can point at the line and column
//! where the offending text stands. [`super::Policy::from_yaml`] turns this
//! document into the validated, indexed [`super::Policy`].

use serde::Deserialize;
use serde_saphyr::Spanned;

/// A string with its position in the policy file.
pub type SpannedStr = Spanned<String>;

/// The whole policy file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDocument {
    /// Which notice this is and which version.
    pub notice: NoticeDoc,
    /// Where personal information comes from.
    pub sources: Vec<SourceDoc>,
    /// The taxonomy of personal information.
    pub categories: Vec<CategoryDoc>,
    /// Why personal information is used.
    pub purposes: Vec<PurposeDoc>,
    /// Who personal information is shared with.
    #[serde(default)]
    pub recipients: Vec<RecipientDoc>,
    /// Who is responsible for personal information, per region.
    pub controllers: Vec<ControllerDoc>,
    /// The legal regimes the notice speaks to.
    pub jurisdictions: Vec<JurisdictionDoc>,
    /// How personal information may leave its home region.
    #[serde(default)]
    pub transfers: Vec<TransferDoc>,
    /// Retention defaults and legal holds.
    pub retention: RetentionDoc,
    /// Joint use among group companies (Japan APPI Art. 27(5)(iii)).
    #[serde(default)]
    pub joint_use: Option<JointUseDoc>,
    /// De-identified data sets the notice says may be produced.
    #[serde(default)]
    pub deidentification: Option<DeidentificationDoc>,
}

/// Identity of the notice.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoticeDoc {
    /// Stable identifier of the notice, e.g. `aws-privacy-notice`.
    pub id: SpannedStr,
    /// Title shown to people.
    pub title: String,
    /// Version label stamped on every item collected under it.
    pub version: SpannedStr,
    /// Date from which the notice applies, `YYYY-MM-DD`.
    pub effective: SpannedStr,
    /// Opening paragraphs of the rendered notice.
    #[serde(default)]
    pub summary: Vec<String>,
    /// What the notice does not cover.
    #[serde(default)]
    pub scope_exclusions: Vec<String>,
    /// Statements about security practices ("How We Secure Information").
    #[serde(default)]
    pub security: Vec<String>,
    /// Statements about cookies.
    #[serde(default)]
    pub cookies: Vec<String>,
    /// Statements about third-party advertising.
    #[serde(default)]
    pub advertising: Vec<String>,
    /// Choices people have ("Access and Choice").
    #[serde(default)]
    pub choices: Vec<ChoiceDoc>,
    /// Statements about location of personal information.
    #[serde(default)]
    pub location: Vec<String>,
    /// Statements about revisions of the notice.
    #[serde(default)]
    pub revisions: Vec<String>,
    /// Whether the business sells personal information (CCPA).
    #[serde(default)]
    pub sells_personal_information: bool,
    /// Decisions based solely on automated processing, including profiling:
    /// their logic, significance and consequences (GDPR Arts. 13(2)(f),
    /// 15(1)(h)), in the notice's words; empty when the notice states none.
    #[serde(default)]
    pub automated_decisions: Vec<String>,
}

/// One "Access and Choice" entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChoiceDoc {
    /// Short name, e.g. "Communications".
    pub name: String,
    /// What the person can do.
    pub description: String,
}

/// A source of personal information.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceDoc {
    /// Identifier used by items, e.g. `provided`.
    pub id: SpannedStr,
    /// What kind of source this is.
    pub kind: SourceKind,
    /// Heading shown to people.
    pub name: String,
    /// What the source covers.
    #[serde(default)]
    pub description: String,
    /// Named parties behind a third-party source.
    #[serde(default)]
    pub parties: Vec<String>,
    /// Situations in which information comes from this source.
    #[serde(default)]
    pub when: Vec<String>,
}

/// The three kinds of source the notice distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// Information the person gives.
    Provided,
    /// Information collected automatically.
    Automatic,
    /// Information from other sources (named third parties).
    ThirdParty,
}

/// A category of personal information.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoryDoc {
    /// Dotted identifier, e.g. `contact.email`.
    pub id: SpannedStr,
    /// Name shown to people.
    pub name: String,
    /// CCPA §1798.140(v)(1) category letter, `A` to `L`.
    pub ccpa: SpannedStr,
    /// Whether this is sensitive personal information (CCPA §1798.140(ae)).
    #[serde(default)]
    pub sensitive: bool,
    /// Group heading for the access report ("Information You Can Access").
    pub group: String,
    /// Sources this category may come from.
    pub sources: Vec<SpannedStr>,
    /// Examples in the notice's words.
    #[serde(default)]
    pub examples: Vec<String>,
    /// How the value is protected beyond encryption.
    #[serde(default)]
    pub protection: Option<ProtectionDoc>,
    /// Whether the person can see it in the access report.
    #[serde(default = "default_true")]
    pub accessible: bool,
    /// A lookup identifier (email, phone, customer id): its values get a
    /// blind index, so a rights request made with one finds the person
    /// without decrypting anything. How values are normalised first.
    #[serde(default)]
    pub lookup: Option<LookupKind>,
}

/// How a lookup identifier is normalised before it is hashed into the blind index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LookupKind {
    /// An email address: surrounding space removed, lower-cased.
    Email,
    /// A phone number: only its digits, and a leading `+`.
    Phone,
    /// Any other identifier (a customer id): surrounding space removed, otherwise exact.
    Exact,
}

impl LookupKind {
    /// `value` normalised for the index; `None` when nothing is left of it.
    pub fn normalise(self, value: &str) -> Option<String> {
        let trimmed = value.trim();
        let out = match self {
            LookupKind::Email => trimmed.to_lowercase(),
            LookupKind::Phone => {
                let plus = trimmed.starts_with('+');
                let digits: String = trimmed.chars().filter(char::is_ascii_digit).collect();
                if digits.is_empty() {
                    return None;
                }
                if plus { format!("+{digits}") } else { digits }
            }
            LookupKind::Exact => trimmed.to_string(),
        };
        (!out.is_empty()).then_some(out)
    }
}

fn default_true() -> bool {
    true
}

/// Extra protection for a category.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProtectionDoc {
    /// Payment card numbers: stored as a token plus last four digits.
    pub tokenize: TokenizeKind,
    /// Purposes allowed to detokenize (recover the full value).
    pub detokenize_purposes: Vec<SpannedStr>,
}

/// The kinds of tokenization Custos performs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenizeKind {
    /// A payment card number (PAN), validated with the Luhn check.
    PaymentCard,
}

/// A purpose of processing.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurposeDoc {
    /// Identifier named by every read, e.g. `marketing`.
    pub id: SpannedStr,
    /// Name shown to people.
    pub name: String,
    /// What it is for, in the notice's words.
    pub description: String,
    /// Categories this purpose may use.
    pub categories: Vec<SpannedStr>,
    /// Legal basis per jurisdiction id; the key `default` applies elsewhere.
    pub legal_basis: Vec<LegalBasisDoc>,
    /// Retention for data collected for this purpose.
    pub retention: RetentionRuleDoc,
    /// Whether this purpose is direct marketing (objection is absolute, GDPR Art. 21(3)).
    #[serde(default)]
    pub direct_marketing: bool,
    /// Whether this purpose may continue while processing is restricted, and
    /// on which ground of GDPR Art. 18(2): `storage` or `legal_claims`
    /// (`true` without a ground loads, and is linted; `false` is the default).
    #[serde(default)]
    pub allowed_when_restricted: WhenRestricted,
    /// Whether this purpose sells or shares personal information, or uses it
    /// for targeted (cross-context behavioural) advertising: it stops for a
    /// subject who opted out (CCPA §1798.120, §1798.135).
    #[serde(default)]
    pub sale_or_sharing: bool,
    /// Whether this purpose may go on using sensitive personal information
    /// after the subject limited its use: one of the uses CCPA §7027(m)
    /// permits (performing the services, security and integrity, short-term
    /// transient use, and the like).
    #[serde(default)]
    pub sensitive_use_permitted: bool,
    /// CCPA business purpose or commercial purpose label.
    #[serde(default)]
    pub ccpa_business_purpose: Option<String>,
}

/// What happens to a purpose while a subject's processing is restricted
/// (GDPR Art. 18). Written `false`, `true`, `storage` or `legal_claims`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhenRestricted {
    /// The purpose stops (`false`, the default).
    #[default]
    Stops,
    /// The purpose continues, with no ground stated (`true`; linted).
    Continues,
    /// The purpose continues because it only stores the data (`storage`).
    Storage,
    /// The purpose continues for the establishment, exercise or defence of
    /// legal claims (`legal_claims`).
    LegalClaims,
}

impl WhenRestricted {
    /// Whether the purpose continues while processing is restricted.
    pub fn continues(self) -> bool {
        self != WhenRestricted::Stops
    }

    /// The ground stated for continuing, as written in the policy file.
    pub fn ground(self) -> Option<&'static str> {
        match self {
            WhenRestricted::Storage => Some("storage"),
            WhenRestricted::LegalClaims => Some("legal_claims"),
            WhenRestricted::Stops | WhenRestricted::Continues => None,
        }
    }
}

impl<'de> Deserialize<'de> for WhenRestricted {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = WhenRestricted;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("`false`, `true`, `storage` or `legal_claims`")
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<WhenRestricted, E> {
                Ok(if v { WhenRestricted::Continues } else { WhenRestricted::Stops })
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<WhenRestricted, E> {
                match v {
                    "storage" => Ok(WhenRestricted::Storage),
                    "legal_claims" => Ok(WhenRestricted::LegalClaims),
                    "true" => Ok(WhenRestricted::Continues),
                    "false" => Ok(WhenRestricted::Stops),
                    _ => Err(E::invalid_value(serde::de::Unexpected::Other("another value"), &self)),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// The legal basis of a purpose in one jurisdiction.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LegalBasisDoc {
    /// Jurisdiction id, or `default`.
    pub jurisdiction: SpannedStr,
    /// The basis.
    pub basis: LegalBasis,
}

/// The legal bases a purpose can rest on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LegalBasis {
    /// Necessary for a contract with the person (GDPR Art. 6(1)(b)).
    Contract,
    /// Legitimate interest (GDPR Art. 6(1)(f)); the person may object.
    LegitimateInterest,
    /// A legal obligation (GDPR Art. 6(1)(c)).
    LegalObligation,
    /// The person's consent (GDPR Art. 6(1)(a)); needs a live consent record.
    Consent,
}

impl LegalBasis {
    /// The snake_case name used in the policy file.
    pub fn as_str(self) -> &'static str {
        match self {
            LegalBasis::Contract => "contract",
            LegalBasis::LegitimateInterest => "legitimate_interest",
            LegalBasis::LegalObligation => "legal_obligation",
            LegalBasis::Consent => "consent",
        }
    }
}

/// A retention rule: a period, or the open-ended "as long as required".
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionRuleDoc {
    /// A period such as `"7 years"`, `"90 days"`, `"18 months"`.
    #[serde(default)]
    pub period: Option<SpannedStr>,
    /// What the period counts from.
    #[serde(default)]
    pub from: Option<RetentionStart>,
    /// The notice only says "as long as required" (flagged by the linter).
    #[serde(default)]
    pub as_long_as_required: bool,
    /// The criteria, in words, for a period that is not fixed.
    #[serde(default)]
    pub criteria: Option<String>,
}

/// What a retention period counts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RetentionStart {
    /// The item's collection.
    Collection,
    /// The end of the relationship (account closure).
    AccountClosure,
    /// The item's last use.
    LastUse,
}

/// A recipient: who personal information may be disclosed to.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecipientDoc {
    /// Identifier named as the actor of a read.
    pub id: SpannedStr,
    /// Name shown to people.
    pub name: String,
    /// What kind of recipient this is.
    pub kind: RecipientKind,
    /// Functions performed on the controller's behalf.
    #[serde(default)]
    pub functions: Vec<String>,
    /// Purposes the recipient may receive data for.
    pub purposes: Vec<SpannedStr>,
    /// Categories the recipient may receive; empty means every category its purposes allow.
    #[serde(default)]
    pub categories: Vec<SpannedStr>,
    /// ISO 3166 country codes where the recipient processes data.
    #[serde(default)]
    pub countries: Vec<SpannedStr>,
    /// Jurisdictions whose notice names this recipient (e.g. Korea's named processors).
    #[serde(default)]
    pub named_in: Vec<SpannedStr>,
    /// Description in the notice's words.
    #[serde(default)]
    pub description: String,
}

/// Kinds of recipient, as in "How We Share Personal Information".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecipientKind {
    /// A company of the same group.
    Affiliate,
    /// A service provider / processor acting on the controller's behalf.
    ServiceProvider,
    /// A third party to a transaction the person takes part in.
    TransactionParty,
    /// A buyer or seller in a business transfer.
    BusinessTransfer,
    /// Authorities and others, for legal requests and protection.
    LegalAndProtection,
    /// Any other third party, only at the person's option (consent).
    AtYourOption,
}

/// A controller, the legal entity responsible in some jurisdictions.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControllerDoc {
    /// Identifier.
    pub id: SpannedStr,
    /// Legal name.
    pub name: String,
    /// Postal address.
    pub address: String,
    /// Attention line.
    #[serde(default)]
    pub attention: Option<String>,
    /// Contact e-mail.
    #[serde(default)]
    pub email: Option<String>,
    /// Country (ISO 3166).
    pub country: String,
    /// Role notes (e.g. "authorized representative in the EEA").
    #[serde(default)]
    pub notes: Vec<String>,
}

/// A jurisdiction: a legal regime and what it grants.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JurisdictionDoc {
    /// Identifier, e.g. `eea`.
    pub id: SpannedStr,
    /// Name shown to people.
    pub name: String,
    /// The law, e.g. "GDPR", in the notice's words.
    pub law: String,
    /// The legal framework whose rules Custos applies here, when it knows
    /// them: `ccpa` adds the CCPA disclosures to this jurisdiction's section
    /// of the notice. Optional; the `law` text is never interpreted.
    #[serde(default)]
    pub framework: Option<Framework>,
    /// Rights available to people in this jurisdiction, as the notice states them.
    pub rights: Vec<Right>,
    /// Response deadline and extension for rights requests: the rule of
    /// every kind granted that has none of its own in `requests`.
    pub response: ResponseDoc,
    /// Per request kind, its own rule (deadline, extension, confirmation of
    /// receipt, verification, clock pause, source), and rights the law
    /// grants where the notice is silent (`statutory: true`).
    #[serde(default)]
    pub requests: Vec<super::requests::RequestRuleDoc>,
    /// Which days are business days (weekend, public holidays); Saturday and
    /// Sunday off and no holidays when absent.
    #[serde(default)]
    pub calendar: Option<super::requests::CalendarDoc>,
    /// People under this age are handled only with a linked guardian who consents.
    pub guardian_required_under: u8,
    /// Controller responsible here.
    pub controller: SpannedStr,
    /// Contact for privacy requests, if other than the controller.
    #[serde(default)]
    pub contact: Option<String>,
    /// Supervisory authority people may complain to.
    #[serde(default)]
    pub supervisory_authority: Option<String>,
    /// Jurisdiction-specific statements in the notice's words.
    #[serde(default)]
    pub statements: Vec<String>,
    /// Countries (ISO 3166) that make up this jurisdiction, for transfer checks.
    #[serde(default)]
    pub countries: Vec<String>,
}

/// Legal frameworks Custos knows rules of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Framework {
    /// EU General Data Protection Regulation.
    Gdpr,
    /// California Consumer Privacy Act (as amended by the CPRA).
    Ccpa,
    /// Canada's Personal Information Protection and Electronic Documents Act.
    Pipeda,
    /// Japan's Act on the Protection of Personal Information.
    Appi,
    /// South Korea's Personal Information Protection Act.
    Pipa,
}

/// Rights a person can exercise. The first ten are also the kinds of rights
/// request ([`Right::is_request_kind`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Right {
    /// Know / access a copy.
    Access,
    /// Correct inaccurate data.
    Rectification,
    /// Delete.
    Erasure,
    /// Restrict processing.
    Restriction,
    /// Object to processing.
    Objection,
    /// Portability.
    Portability,
    /// Complain to the controller or an authority.
    Complaint,
    /// Withdraw consent.
    WithdrawConsent,
    /// Opt out of sale or sharing, and of targeted advertising (CCPA §1798.120).
    #[serde(alias = "opt_out_of_sale")]
    OptOut,
    /// Limit the use of sensitive personal information (CCPA §1798.121).
    LimitSensitive,
    /// Non-discrimination for exercising rights (CCPA).
    NonDiscrimination,
    /// Confirmation of whether personal data is processed (GDPR Art. 15(1), first limb).
    Confirmation,
    /// Anonymisation of data that is unnecessary or excessive (e.g. Brazil LGPD Art. 18 IV).
    Anonymisation,
    /// Information about the entities data is shared with (e.g. LGPD Art. 18 VII).
    SharingInformation,
    /// Not to be subject to a decision based solely on automated processing (GDPR Art. 22).
    AutomatedDecisions,
}

impl Right {
    /// The snake_case name used in the policy file.
    pub fn as_str(self) -> &'static str {
        match self {
            Right::Access => "access",
            Right::Rectification => "rectification",
            Right::Erasure => "erasure",
            Right::Restriction => "restriction",
            Right::Objection => "objection",
            Right::Portability => "portability",
            Right::Complaint => "complaint",
            Right::WithdrawConsent => "withdraw_consent",
            Right::OptOut => "opt_out",
            Right::LimitSensitive => "limit_sensitive",
            Right::NonDiscrimination => "non_discrimination",
            Right::Confirmation => "confirmation",
            Right::Anonymisation => "anonymisation",
            Right::SharingInformation => "sharing_information",
            Right::AutomatedDecisions => "automated_decisions",
        }
    }

    /// The kinds a rights request can be, in the order the API lists them.
    pub const REQUEST_KINDS: [Right; 10] = [
        Right::Access,
        Right::Portability,
        Right::Rectification,
        Right::Erasure,
        Right::Restriction,
        Right::Objection,
        Right::OptOut,
        Right::LimitSensitive,
        Right::WithdrawConsent,
        Right::Complaint,
    ];

    /// The request kind named `id`, if it is one.
    pub fn request_kind(id: &str) -> Option<Right> {
        Right::REQUEST_KINDS.into_iter().find(|k| k.as_str() == id)
    }

    /// Whether a rights request can be of this kind: `access`, `portability`,
    /// `rectification`, `erasure`, `restriction`, `objection`, `opt_out`,
    /// `limit_sensitive`, `withdraw_consent`, `complaint`. The others are
    /// rights the notice states and requests of the kinds above exercise.
    pub fn is_request_kind(self) -> bool {
        !matches!(
            self,
            Right::NonDiscrimination
                | Right::Confirmation
                | Right::Anonymisation
                | Right::SharingInformation
                | Right::AutomatedDecisions
        )
    }
}

/// Response deadline for rights requests.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseDoc {
    /// Deadline, e.g. `"1 month"`, `"45 days"`, `"10 business days"`.
    pub deadline: SpannedStr,
    /// Extension allowed, if any.
    #[serde(default)]
    pub extension: Option<SpannedStr>,
    /// Where the rule comes from.
    pub source: String,
}

/// A transfer mechanism for cross-border transfers.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferDoc {
    /// Identifier.
    pub id: SpannedStr,
    /// Name.
    pub name: String,
    /// Kind of mechanism.
    pub kind: TransferKind,
    /// Jurisdictions data may leave under it.
    pub from: Vec<SpannedStr>,
    /// Destination countries (ISO 3166).
    pub to: Vec<String>,
    /// First day it is valid.
    pub valid_from: SpannedStr,
    /// Last day it is valid (exclusive end), if it has ended.
    #[serde(default)]
    pub valid_until: Option<SpannedStr>,
    /// Why it ended.
    #[serde(default)]
    pub invalidated_by: Option<String>,
    /// Mechanisms to use instead once it has ended.
    #[serde(default)]
    pub replaced_by: Vec<String>,
}

/// Kinds of transfer mechanism (GDPR Chapter V).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferKind {
    /// An adequacy decision for a country or a framework.
    Adequacy,
    /// Standard Contractual Clauses.
    StandardContractualClauses,
    /// Binding Corporate Rules.
    BindingCorporateRules,
    /// An Art. 49 derogation.
    Derogation,
}

/// Retention defaults and legal holds.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionDoc {
    /// The notice's general statement.
    pub statement: String,
    /// How long a prior version is kept after an update.
    pub prior_versions: SpannedStr,
    /// Reasons data may be held beyond its retention or despite erasure.
    #[serde(default)]
    pub legal_holds: Vec<LegalHoldDoc>,
}

/// A legal hold reason.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LegalHoldDoc {
    /// Identifier.
    pub id: SpannedStr,
    /// Reason in words.
    pub reason: String,
    /// Legal citation.
    pub citation: String,
    /// The purpose the held data serves, and the only one it may be read for
    /// once its subject is erased (e.g. `legal_obligations`).
    pub purpose: SpannedStr,
    /// Categories it covers.
    pub categories: Vec<SpannedStr>,
    /// How long it holds.
    pub period: SpannedStr,
    /// A rule that places the hold without an officer: it applies at erasure
    /// while the person has an item of this category collected within
    /// `period` (tax records while a purchase is younger than the tax
    /// period), and then until that item is `period` old.
    #[serde(default)]
    pub applies_while_recent: Option<SpannedStr>,
}

/// Joint use declaration (Japan).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JointUseDoc {
    /// Jurisdiction where the declaration applies.
    pub jurisdiction: SpannedStr,
    /// Joint users.
    pub users: Vec<String>,
    /// Items used jointly.
    pub categories: Vec<SpannedStr>,
    /// Purposes of joint use.
    pub purposes: Vec<SpannedStr>,
    /// Controller responsible for managing jointly used information.
    pub responsible: SpannedStr,
}

/// De-identified data sets.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeidentificationDoc {
    /// Jurisdiction where the statement applies.
    pub jurisdiction: SpannedStr,
    /// Categories used to produce de-identified data.
    pub categories: Vec<SpannedStr>,
    /// Statement in the notice's words.
    pub statement: String,
}
