//! Payment card numbers: validation and the payload sealed for a tokenized card.
//!
//! A card number is stored as a token plus its last four digits. The full
//! number is sealed with the subject's data key (so erasure shreds it too)
//! and is revealed only by an explicit detokenize for a purpose the policy
//! allows to detokenize.

use zeroize::Zeroizing;

use crate::CardError;

/// Normalises and validates a card number (PAN): 12 to 19 digits, spaces and
/// dashes allowed between them, an issuer identifier that does not start with
/// 0 (ISO/IEC 7812 assigns major industry identifier 0 to no card issuer, and
/// an all-zero number passes Luhn), passing the Luhn check. Errors never echo it.
pub fn normalise_pan(input: &str) -> Result<Zeroizing<String>, CardError> {
    let mut digits = Zeroizing::new(String::with_capacity(19));
    for ch in input.chars() {
        match ch {
            '0'..='9' => digits.push(ch),
            ' ' | '-' => {}
            _ => return Err(CardError::Characters),
        }
    }
    if !(12..=19).contains(&digits.len()) {
        return Err(CardError::Length);
    }
    if digits.starts_with('0') {
        return Err(CardError::Issuer);
    }
    if !luhn_ok(&digits) {
        return Err(CardError::Luhn);
    }
    Ok(digits)
}

fn luhn_ok(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let dd = d * 2;
                if dd > 9 { dd - 9 } else { dd }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// The plaintext sealed for a tokenized card: `last4`, a NUL, the full number.
pub fn payload(pan: &str) -> Zeroizing<Vec<u8>> {
    let last4 = &pan[pan.len().saturating_sub(4)..];
    let mut p = Zeroizing::new(Vec::with_capacity(5 + pan.len()));
    p.extend_from_slice(last4.as_bytes());
    p.push(0);
    p.extend_from_slice(pan.as_bytes());
    p
}

/// Splits an opened card payload into (last four, full number).
pub fn split(payload: &[u8]) -> Option<(&str, &str)> {
    let nul = payload.iter().position(|b| *b == 0)?;
    let last4 = std::str::from_utf8(&payload[..nul]).ok()?;
    let pan = std::str::from_utf8(&payload[nul + 1..]).ok()?;
    Some((last4, pan))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_numbers_are_normalised() {
        assert_eq!(normalise_pan("4242 4242 4242 4242").unwrap().as_str(), "4242424242424242");
        assert_eq!(normalise_pan("5555-5555-5555-4444").unwrap().as_str(), "5555555555554444");
    }

    #[test]
    fn invalid_numbers_are_refused_without_echo() {
        for bad in ["4242424242424241", "4242", "4242x4242424242424242", ""] {
            let e = normalise_pan(bad).unwrap_err().to_string();
            assert!(bad.is_empty() || !e.contains(bad), "{e}");
        }
    }

    #[test]
    fn regression_an_all_zero_card_number_is_refused() {
        // Passes Luhn (every digit sum is 0), so only the issuer rule refuses it.
        assert!(luhn_ok("0000000000000000"));
        for bad in ["0000000000000000", "0000 0000 0000 0000", "000000000000", "0424242424242424242"] {
            assert_eq!(normalise_pan(bad).unwrap_err(), CardError::Issuer, "{bad}");
        }
    }

    #[test]
    fn the_payload_keeps_last_four_and_full_number() {
        let p = payload("4242424242424242");
        assert_eq!(split(&p), Some(("4242", "4242424242424242")));
    }
}
