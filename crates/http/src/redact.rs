//! Redaction for log lines: no key, token or full email address is ever printed.

/// `jane.doe@example.com` → `j***@example.com`.
pub fn email(address: &str) -> String {
    match address.split_once('@') {
        Some((local, domain)) => {
            let first = local.chars().next().map(String::from).unwrap_or_default();
            format!("{first}***@{domain}")
        }
        None => "***".to_owned(),
    }
}

/// Query parameters whose values are secrets on some platform (WooCommerce
/// query-string auth, OAuth codes, API keys).
const SECRET_PARAMETERS: [&str; 9] = [
    "consumer_key",
    "consumer_secret",
    "api_key",
    "apikey",
    "key",
    "token",
    "access_token",
    "refresh_token",
    "client_secret",
];

/// The URL with secret query values replaced by `***` and any userinfo removed.
pub fn url(url: &reqwest::Url) -> String {
    let mut clean = url.clone();
    let _ = clean.set_username("");
    let _ = clean.set_password(None);
    if url.query().is_some() {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(name, value)| {
                let secret = SECRET_PARAMETERS.iter().any(|s| name.eq_ignore_ascii_case(s))
                    || name.contains('@')
                    || value.contains('@');
                (name.into_owned(), if secret { "***".to_owned() } else { value.into_owned() })
            })
            .collect();
        clean.query_pairs_mut().clear().extend_pairs(pairs);
    }
    // Path segments can hold an email (e.g. /customers/jane@example.com).
    let path: Vec<String> = clean
        .path_segments()
        .map(|segments| {
            segments
                .map(|segment| {
                    let decoded = segment.replace("%40", "@");
                    if decoded.contains('@') { email(&decoded) } else { segment.to_owned() }
                })
                .collect()
        })
        .unwrap_or_default();
    if !path.is_empty() {
        clean.set_path(&path.join("/"));
    }
    clean.to_string()
}

/// Shortens a response body for an error message; emails inside are redacted.
pub fn body_snippet(body: &str) -> String {
    let compact: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    let words: Vec<String> = compact
        .split(' ')
        .map(
            |word| {
                if word.contains('@') && word.contains('.') { email(word.trim_matches('"')) } else { word.to_owned() }
            },
        )
        .collect();
    let mut text = words.join(" ");
    if text.len() > 300 {
        let mut cut = 300;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_keep_only_first_letter_and_domain() {
        assert_eq!(email("jane.doe@example.com"), "j***@example.com");
        assert_eq!(email("nonsense"), "***");
    }

    #[test]
    fn secret_query_values_and_userinfo_are_hidden() {
        let parsed = reqwest::Url::parse(
            "https://user:pw@shop.example.com/wp-json/wc/v3/orders?consumer_key=ck_123&consumer_secret=cs_456&page=2",
        )
        .unwrap();
        let shown = url(&parsed);
        assert!(!shown.contains("ck_123") && !shown.contains("cs_456") && !shown.contains("pw"), "{shown}");
        assert!(shown.contains("page=2"), "{shown}");
    }

    #[test]
    fn emails_in_paths_and_bodies_are_hidden() {
        let parsed = reqwest::Url::parse("https://track.customer.io/api/v1/customers/jane%40example.com").unwrap();
        assert!(!url(&parsed).contains("jane"), "{}", url(&parsed));
        assert!(!body_snippet(r#"{"error":"bad email jane@example.com"}"#).contains("jane@"));
    }
}
