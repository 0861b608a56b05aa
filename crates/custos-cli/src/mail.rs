//! Verification codes by mail: the vault's [`CodeSender`] over SMTP (lettre,
//! blocking, TLS by rustls on ring with the bundled Mozilla roots).
//!
//! `--smtp-url` takes `smtp://HOST:PORT` (plain: for a relay on this
//! machine), `smtp://HOST:PORT?tls=starttls` (STARTTLS, required) or
//! `smtps://HOST:PORT` (TLS from the first byte); `user:password@` before the
//! host logs in, and a path names the client in `EHLO`
//! (`smtp://relay:25/mail.example.com`). The mail names the controller and
//! says how long the code is valid: nothing else about the person.
//! Failures are reported by class ([`SendError`]), never with the address
//! or the server's own words, which may quote it.

use std::time::Duration;

use custos_vault::{CodeMessage, CodeSender, SendError};
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox};
use lettre::{Message, SmtpTransport, Transport};
use zeroize::Zeroizing;

use crate::Failure;

/// How long one SMTP exchange may wait for the server.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Sends codes through one SMTP server.
pub struct SmtpSender {
    transport: SmtpTransport,
    from: Mailbox,
}

impl SmtpSender {
    /// A sender for `--smtp-url` and `--smtp-from`; a malformed one is a
    /// usage error that does not echo the URL (it may hold a password).
    pub fn new(url: &str, from: &str) -> Result<SmtpSender, Failure> {
        let usage = || {
            Failure::Usage(
                "--smtp-url: expected smtp://HOST:PORT (a relay on this machine), smtp://HOST:PORT?tls=starttls \
                 or smtps://HOST:PORT"
                    .into(),
            )
        };
        let url = url.trim();
        let (scheme, rest) = url.split_once("://").ok_or_else(usage)?;
        let (base, query) = rest.split_once('?').map_or((rest, None), |(b, q)| (b, Some(q)));
        let tls = query.into_iter().flat_map(|q| q.split('&')).filter_map(|p| p.strip_prefix("tls=")).next_back();
        // lettre names STARTTLS `required` (and offers `opportunistic`, which
        // falls back to plain text: not accepted here, a code is a secret).
        let lettre_url = match (scheme, tls) {
            ("smtp", None) => format!("smtp://{base}"),
            ("smtp", Some("starttls" | "required")) => format!("smtp://{base}?tls=required"),
            ("smtps", None) => format!("smtps://{base}"),
            _ => return Err(usage()),
        };
        let host = base.rsplit_once('@').map_or(base, |(_, h)| h);
        let host = host.split(['/', ':']).next().unwrap_or_default();
        if host.is_empty() {
            return Err(usage());
        }
        if scheme == "smtp" && tls.is_none() && !matches!(host, "localhost" | "127.0.0.1" | "[::1]") {
            eprintln!("warning: --smtp-url is plain SMTP: the code travels unencrypted; use ?tls=starttls or smtps://");
        }
        let transport = SmtpTransport::from_url(&lettre_url).map_err(|_| usage())?.timeout(Some(SMTP_TIMEOUT)).build();
        let from = from
            .parse::<Mailbox>()
            .map_err(|_| Failure::Usage("--smtp-from: not an email address (`Name <address>` or `address`)".into()))?;
        Ok(SmtpSender { transport, from })
    }
}

impl CodeSender for SmtpSender {
    fn send_code(&self, m: &CodeMessage<'_>) -> Result<(), SendError> {
        let to = m.to.parse::<Mailbox>().map_err(|_| SendError::InvalidAddress)?;
        let text = text(m);
        // Quoted-printable keeps the code and the ASCII text readable as they
        // are and carries a controller's non-ASCII name safely.
        let body = Body::new_with_encoding(text.to_string(), ContentTransferEncoding::QuotedPrintable)
            .map_err(|_| SendError::Message)?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(format!("Your verification code for {}", m.controller.name))
            .message_id(Some(message_id(&self.from)?))
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|_| SendError::Message)?;
        self.transport.send(&message).map(drop).map_err(|e| class(&e))
    }
}

/// The mail's text: the code, what it is for, who asks and until when.
fn text(m: &CodeMessage<'_>) -> Zeroizing<String> {
    let controller = &m.controller.name;
    let kind = m.kind.replace('_', " ");
    let mut t = Zeroizing::new(String::new());
    t.push_str("Hello,\n\n");
    t.push_str(&format!("a privacy request ({kind}) was made to {controller}\nwith this email address. "));
    t.push_str(&format!("To confirm that it is yours,\ngive {controller} this code:\n\n"));
    t.push_str(&format!("    {}\n\n", m.code));
    t.push_str(&format!("The code expires in {} minutes.\n", m.valid_minutes));
    t.push_str("If you did not make this request, ignore this message:\nnothing is done without the code.\n\n");
    t.push_str(&format!("Request reference: {}\n\n", m.request_id));
    t.push_str(&format!("{controller}\n"));
    if let Some(contact) = &m.controller.contact {
        t.push_str(&format!("{contact}\n"));
    }
    t
}

/// A Message-ID in the sender's domain: 128 random bits.
fn message_id(from: &Mailbox) -> Result<String, SendError> {
    let mut b = [0u8; 16];
    custos_crypto::random_bytes(&mut b).map_err(|_| SendError::Message)?;
    let id: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!("<{id}.custos@{}>", from.email.domain()))
}

/// The class of an SMTP failure.
fn class(e: &lettre::transport::smtp::Error) -> SendError {
    let code = e.status().and_then(|c| c.to_string().parse::<u16>().ok()).unwrap_or(0);
    if e.is_permanent() {
        SendError::Rejected(code)
    } else if e.is_transient() {
        SendError::Deferred(code)
    } else if e.is_timeout() {
        SendError::Timeout
    } else if e.is_tls() {
        SendError::Tls
    } else if e.is_response() {
        SendError::Protocol
    } else if e.is_client() {
        // What lettre itself refuses to do with this server: STARTTLS or a
        // login mechanism missing, non-ASCII without SMTPUTF8 or 8BITMIME.
        SendError::Unsupported
    } else {
        SendError::Connection
    }
}
