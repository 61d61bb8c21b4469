//! Redaction: the one place that decides what of a URL or a message may be
//! shown.
//!
//! Every printer of a URI, a receiver or proxy URL, or a message that may
//! hold one (`mongomon config`, configuration errors, `check`'s table, log
//! lines) goes through these functions, so a shape that one printer gets
//! wrong cannot appear: the rule is written once.
//!
//! The rule is deliberately blunt. Operators write URLs by hand, and the
//! ones that reach an error message are often the malformed ones: no
//! `scheme://`, a password holding a raw `/`, `?`, `#` or `@`, a port out of
//! range. Parsing such a string to find its userinfo would fail exactly where
//! it matters, so instead everything up to the *last* `@` is userinfo, and
//! everything after its first `:` is the password. That over-redacts a URL
//! whose query holds an `@` (the host then disappears from the message too),
//! which is the safe way to be wrong.

/// What replaces a secret.
pub const REDACTED: &str = "<redacted>";

/// `scheme://user:password@host…` → `scheme://user:<redacted>@host…`, for any
/// string that looks like a URL with userinfo, with or without a scheme,
/// whatever else is wrong with it. A string without `@` is returned as it is.
pub fn redact_uri(uri: &str) -> String {
    let Some(at) = uri.rfind('@') else {
        return uri.to_string();
    };
    // The userinfo starts after `scheme://` when there is one before the `@`.
    let start = match uri[..at].find("://") {
        Some(i) => i + 3,
        None => 0,
    };
    let userinfo = &uri[start..at];
    let shown = match userinfo.split_once(':') {
        Some((user, _)) => format!("{user}:{REDACTED}"),
        // `user@host`: a user name is not a secret...
        None if !userinfo.contains(['/', '?', '#']) => userinfo.to_string(),
        // ...but a "user name" holding URL delimiters is a mangled URL whose
        // parts cannot be told apart; show none of it.
        None => REDACTED.to_string(),
    };
    format!("{}{}@{}", &uri[..start], shown, &uri[at + 1..])
}

/// Redacts the userinfo of every URL-like word in a free-form message (an
/// error from a library, a detail column): words are split at white space
/// and at the quotes and brackets messages put around addresses.
pub fn redact_text(text: &str) -> String {
    if !text.contains('@') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if word.contains('@') {
            out.push_str(&redact_uri(word));
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in text.chars() {
        if c.is_whitespace() || "\"'`()<>[]{},;".contains(c) {
            flush(&mut word, &mut out);
            out.push(c);
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// Escapes control characters (NUL, escape sequences, line breaks) so that a
/// message built from untrusted input is one printable line.
pub fn printable(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_string();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_formed_uris_keep_user_and_hosts() {
        assert_eq!(
            redact_uri("mongodb://bob:pw@h1:1,h2:2/?authSource=admin"),
            "mongodb://bob:<redacted>@h1:1,h2:2/?authSource=admin"
        );
        assert_eq!(redact_uri("mongodb://h1:1"), "mongodb://h1:1");
        assert_eq!(redact_uri("mongodb://bob@h1"), "mongodb://bob@h1");
    }

    #[test]
    fn malformed_shapes_never_show_the_password() {
        for (input, secret) in [
            ("mongodb://user:pa/ss@host", "pa/ss"),
            ("mongodb://user:pa?ss@host/?x=1", "pa?ss"),
            ("mongodb://user:p@ss@host", "p@ss"),
            ("mongodb://user:pa#ss@host", "pa#ss"),
            ("pxuser:S3CR3T@127.0.0.1:3128", "S3CR3T"),
            ("http://pxuser:S3CR3T@127.0.0.1:99999", "S3CR3T"),
            ("//pxuser:S3CR3T@h", "S3CR3T"),
            ("user:S3CR3T@", "S3CR3T"),
            (":S3CR3T@h", "S3CR3T"),
            ("mongodb://a/b?S3CR3T@h", "S3CR3T"),
        ] {
            let shown = redact_uri(input);
            assert!(!shown.contains(secret), "{input} → {shown}");
            assert!(shown.contains(REDACTED), "{input} → {shown}");
        }
        assert_eq!(
            redact_uri("pxuser:S3CR3T@127.0.0.1:3128"),
            "pxuser:<redacted>@127.0.0.1:3128"
        );
    }

    #[test]
    fn text_redacts_every_address_in_a_message() {
        let msg = "refused: nothing accepts connections on basicuser:PASSWORD@127.0.0.1:53167 \
                   (\"http://u:TOKEN@h/x\")";
        let shown = redact_text(msg);
        assert!(
            !shown.contains("PASSWORD") && !shown.contains("TOKEN"),
            "{shown}"
        );
        assert!(shown.starts_with(
            "refused: nothing accepts connections on basicuser:<redacted>@127.0.0.1:53167"
        ));
        assert_eq!(redact_text("no at sign here"), "no at sign here");
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(printable("a\0b\x1b[31m\n"), "a\\u{0}b\\u{1b}[31m\\n");
        assert_eq!(printable("plain"), "plain");
    }
}
