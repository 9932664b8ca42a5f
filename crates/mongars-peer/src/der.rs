//! Just enough DER to find a certificate's SubjectPublicKeyInfo, whose
//! SHA-256 is a node's id. Input comes from a TLS handshake, so every
//! length is checked and nothing is trusted.

/// A DER element: its tag, its content, what follows it, and the whole
/// element (header and content).
struct Element<'a> {
    tag: u8,
    rest: &'a [u8],
    content: &'a [u8],
    whole: &'a [u8],
}

/// The DER element at the start of `input`.
fn element(input: &[u8]) -> Option<Element<'_>> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    let header = input.len() - rest.len();
    Some(Element {
        tag,
        content: &rest[..len],
        rest: &rest[len..],
        whole: &input[..header + len],
    })
}

const SEQUENCE: u8 = 0x30;
/// `[0] EXPLICIT` (the version of a v3 certificate).
const VERSION: u8 = 0xa0;

/// The DER of the SubjectPublicKeyInfo of an X.509 certificate.
pub fn spki(cert: &[u8]) -> Option<&[u8]> {
    let certificate = element(cert)?;
    if certificate.tag != SEQUENCE {
        return None;
    }
    let tbs = element(certificate.content)?;
    if tbs.tag != SEQUENCE {
        return None;
    }
    let mut rest = tbs.content;
    if element(rest)?.tag == VERSION {
        rest = element(rest)?.rest;
    }
    // serialNumber, signature, issuer, validity, subject
    for _ in 0..5 {
        rest = element(rest)?.rest;
    }
    let key = element(rest)?;
    (key.tag == SEQUENCE).then_some(key.whole)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_key_rcgen_put_in() {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["node".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        assert_eq!(spki(cert.der()).unwrap(), key.public_key_der());
    }

    #[test]
    fn truncated_or_wrong_input_is_refused_not_read_past() {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["node".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let der = cert.der().to_vec();
        for cut in 0..der.len() {
            assert!(spki(&der[..cut]).is_none(), "cut {cut}");
        }
        assert!(spki(&[]).is_none());
        assert!(spki(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).is_none());
        assert!(spki(&[0x02, 0x01, 0x00]).is_none());
    }
}
