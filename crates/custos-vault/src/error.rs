//! Vault errors, split by how the caller reacts: bad input, a denial, a
//! missing thing, or an internal failure. No message contains a personal value.

use custos_core::decision::DenyReason;
use custos_core::subject::SubjectIdError;
use custos_crypto::CryptoError;
use custos_store::StoreError;

/// A denial as the caller sees it: the stable reason code and one sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    /// Machine-readable reason, e.g. `consent_missing`.
    pub reason: DenyReason,
    /// Sentence for people; names policy ids only.
    pub sentence: String,
}

/// What can go wrong in the vault.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The input is malformed or names something the policy does not declare.
    #[error(transparent)]
    Input(#[from] InputError),
    /// The decision engine denied the request (and the denial was audited).
    #[error("denied: {}: {}", .0.reason.code(), .0.sentence)]
    Denied(Denied),
    /// The subject does not exist.
    #[error("no subject with this id")]
    SubjectNotFound,
    /// A subject with this id exists already.
    #[error("a subject with this id already exists")]
    SubjectExists,
    /// No current value is stored for this category.
    #[error("no value stored for category `{0}`")]
    ItemNotFound(String),
    /// The subject's jurisdiction does not grant the right exercised (neither
    /// the notice nor, as `statutory`, the law it names).
    #[error("the right `{right}` is not available in jurisdiction `{jurisdiction}` under the policy")]
    RightNotAvailable {
        /// The right, as the policy names it.
        right: &'static str,
        /// The subject's jurisdiction id.
        jurisdiction: String,
    },
    /// The token is unknown (or its subject was erased).
    #[error("no such token")]
    TokenNotFound,
    /// No rights request has this id.
    #[error("no request with this id")]
    RequestNotFound,
    /// A step the request's workflow does not have from where it stands.
    #[error("{0}")]
    RequestStep(custos_core::request::StepError),
    /// A verification method weaker than the request kind's level.
    #[error("verification by `{method}` does not meet the level `{required}` this request needs")]
    VerificationTooWeak {
        /// The method offered.
        method: &'static str,
        /// The level the kind's rule requires.
        required: String,
    },
    /// A request kind Custos does not carry out yet.
    #[error("carrying out `{kind}` requests is not supported yet: deny it or answer it outside Custos")]
    NotExecutable {
        /// The kind.
        kind: &'static str,
    },
    /// A new API key drew the id of an existing one (32 random bits): nothing was stored.
    #[error("key id collision; try again")]
    KeyIdCollision,
    /// A stored value or key could not be decrypted: corruption or the wrong master key.
    #[error("a stored value could not be decrypted ({0}); is this the master key the data was written with?")]
    Crypto(#[from] CryptoError),
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
    /// The master key or the policy does not match the store (checked before anything else).
    #[error(transparent)]
    Identity(crate::identity::IdentityError),
    /// An email code that is not the one sent (the try is counted).
    #[error("the code is wrong; {tries_left} more wrong code(s) lock the verification")]
    WrongCode {
        /// Wrong codes left before the verification locks.
        tries_left: u8,
    },
    /// The email code sent has expired.
    #[error("the code has expired: send a new one")]
    CodeExpired,
    /// No email code is pending for the request.
    #[error("no code has been sent for this request: send one first")]
    NoCode,
    /// Too many wrong codes: no code is sent or checked any more.
    #[error(
        "the verification is locked after too many wrong codes: no code is sent or checked any more; \
         deny the request as `unverifiable`"
    )]
    VerificationLocked,
    /// The request has no contact email address to send a code to.
    #[error("the request has no contact email address to send a code to")]
    NoContact,
    /// The code was recorded but the mail could not be sent (the class of
    /// the failure, never the address).
    #[error("the verification code could not be sent: {0}")]
    CodeNotSent(crate::requests::email_code::SendError),
}

impl From<StoreError> for VaultError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::SubjectNotFound => VaultError::SubjectNotFound,
            StoreError::SubjectExists => VaultError::SubjectExists,
            StoreError::TokenNotFound => VaultError::TokenNotFound,
            StoreError::RequestNotFound => VaultError::RequestNotFound,
            other => VaultError::Store(other),
        }
    }
}

impl VaultError {
    /// Whether the caller's input caused this error (as opposed to a failure inside Custos).
    pub fn is_client_error(&self) -> bool {
        !matches!(
            self,
            VaultError::Crypto(_) | VaultError::Store(_) | VaultError::Identity(_) | VaultError::CodeNotSent(_)
        )
    }
}

/// A kind of policy id the caller names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyIdKind {
    /// A data category, e.g. `contact.email`.
    Category,
    /// A purpose, e.g. `provide_offerings`.
    Purpose,
    /// A source, e.g. `provided`.
    Source,
    /// A jurisdiction, e.g. `eea`.
    Jurisdiction,
    /// A recipient, e.g. `payments`.
    Recipient,
}

impl PolicyIdKind {
    /// Every kind.
    pub const ALL: [PolicyIdKind; 5] = [
        PolicyIdKind::Category,
        PolicyIdKind::Purpose,
        PolicyIdKind::Source,
        PolicyIdKind::Jurisdiction,
        PolicyIdKind::Recipient,
    ];

    /// The word used in messages: `category`, `purpose`, …
    pub fn word(self) -> &'static str {
        match self {
            PolicyIdKind::Category => "category",
            PolicyIdKind::Purpose => "purpose",
            PolicyIdKind::Source => "source",
            PolicyIdKind::Jurisdiction => "jurisdiction",
            PolicyIdKind::Recipient => "recipient",
        }
    }
}

/// Why a card number is refused. Never carries the number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CardError {
    /// A character other than a digit, a space or a dash.
    #[error("a card number may contain only digits, spaces and dashes")]
    Characters,
    /// Fewer than 12 or more than 19 digits.
    #[error("a card number has 12 to 19 digits")]
    Length,
    /// Starts with 0.
    #[error("a card number does not start with 0 (no card issuer has major industry identifier 0)")]
    Issuer,
    /// The check digit is wrong.
    #[error("the card number fails the Luhn check (mistyped?)")]
    Luhn,
}

/// Bad input, one variant per failure the caller can fix. Every message is
/// built from declared policy ids, field names and expected forms: never from
/// the input text (an unknown id may be a personal value sent in the wrong place).
/// The server gives each its own problem `type` (`custos_server::problem`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// An id the policy does not declare; `known` lists the declared ones (or how many there are).
    #[error("unknown {} (known: {known})", .kind.word())]
    UnknownId {
        /// Which kind of id.
        kind: PolicyIdKind,
        /// The declared ids, comma-separated, or a count and where to look.
        known: String,
    },
    /// A category the policy does not mark as a lookup identifier.
    #[error("category `{category}` is not a lookup identifier in the policy")]
    NotALookupCategory {
        /// The (declared) category id.
        category: String,
    },
    /// A lookup value with nothing left once normalised (no digits in a phone number, only spaces).
    #[error("the lookup value is empty once normalised")]
    EmptyLookupValue,
    /// A declared source that the category does not list.
    #[error("source `{source_id}` is not declared for category `{category}`")]
    SourceNotForCategory {
        /// The (declared) source id.
        source_id: String,
        /// The category id.
        category: String,
    },
    /// A write without a category.
    #[error("category missing")]
    CategoryMissing,
    /// An empty value.
    #[error("the value for `{category}` is empty")]
    EmptyValue {
        /// The category id.
        category: String,
    },
    /// A value over the size limit.
    #[error("the value for `{category}` is larger than {max} bytes")]
    ValueTooLarge {
        /// The category id.
        category: String,
        /// The limit in bytes.
        max: usize,
    },
    /// A subject id that is not one.
    #[error("{0}")]
    SubjectId(SubjectIdError),
    /// A guardian id that is not a subject id.
    #[error("guardian: {0}")]
    GuardianId(SubjectIdError),
    /// A consent given by a guardian who is not the subject's linked guardian.
    #[error("that guardian is not linked to this subject")]
    GuardianNotLinked,
    /// A subject named as their own guardian.
    #[error("a subject cannot be their own guardian")]
    OwnGuardian,
    /// The guardian was erased.
    #[error("the guardian's data was erased")]
    GuardianErased,
    /// The guardian is not a subject.
    #[error("the guardian is not a known subject; add them first")]
    GuardianUnknown,
    /// A token that is not of the form Custos issues.
    #[error("a token is `tok_` followed by 32 hexadecimal characters")]
    Token,
    /// A region that is not one.
    #[error("a region is 1 to 64 letters, digits, `-` or `_`")]
    Region,
    /// A birth date after today.
    #[error("the birth date is in the future")]
    BirthDateInFuture,
    /// A value for a tokenized category that is not a card number.
    #[error("category `{category}`: {reason}")]
    CardNumber {
        /// The category id.
        category: String,
        /// What is wrong with it.
        reason: CardError,
    },
    /// A request kind that is not one.
    #[error(
        "unknown request kind (known: access, portability, rectification, erasure, restriction, objection, \
         opt_out, limit_sensitive, withdraw_consent, complaint)"
    )]
    RequestKind,
    /// A request received after today.
    #[error("the day a request was received cannot be in the future")]
    ReceivedInFuture,
    /// An objection that names no purpose.
    #[error("an objection names the purposes it objects to")]
    PurposesMissing,
    /// A rectification that names no correction.
    #[error("a rectification names the categories to correct and their corrected values")]
    CorrectionsMissing,
    /// A submission field the request's kind does not take.
    #[error("`{field}` is not taken by this kind of request")]
    NotForKind {
        /// The field.
        field: &'static str,
    },
    /// A contact that is not an email address.
    #[error("the contact is not an email address (local@domain, at most 254 bytes)")]
    Contact,
    /// A year outside what a calendar date can hold.
    #[error("the year is out of range")]
    Year,
    /// A reason or explanation left empty.
    #[error("the text is empty")]
    TextMissing,
    /// A reason or explanation over the limit.
    #[error("the text is longer than {max} bytes")]
    TextTooLong {
        /// The limit in bytes.
        max: usize,
    },
    /// A service key without a recipient.
    #[error("a service key needs --actor RECIPIENT")]
    ServiceKeyWithoutActor,
    /// A service key without purposes.
    #[error("a service key needs --purposes P1,P2")]
    ServiceKeyWithoutPurposes,
    /// A service key for a purpose its recipient is not declared for.
    #[error("recipient `{recipient}` is not declared for purpose `{purpose}` in the policy")]
    RecipientNotForPurpose {
        /// The (declared) recipient id.
        recipient: String,
        /// The (declared) purpose id.
        purpose: String,
    },
    /// An admin or auditor key given a recipient or purposes.
    #[error("an {role} key acts as the controller: it takes no --actor or --purposes")]
    ControllerKeyWithScope {
        /// `admin` or `auditor`.
        role: &'static str,
    },
}

/// An unknown policy id: names the kind and the known ids, never the id given.
pub(crate) fn unknown_id<'a>(kind: PolicyIdKind, known: impl Iterator<Item = &'a String>) -> InputError {
    let known: Vec<&String> = known.collect();
    let known = if known.len() <= 12 {
        known.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
    } else {
        format!("{} declared; see `custos policy render`", known.len())
    };
    InputError::UnknownId { kind, known }
}
