//! The form body of an OAuth token request (RFC 6749 §3.2), as both token endpoints read it:
//! `application/x-www-form-urlencoded` or nothing, and an empty value counts as absent.

use bytes::Bytes;
use http::HeaderMap;

/// A token request's parameters, in order.
#[derive(Debug)]
pub struct TokenForm(Vec<(String, String)>);

impl TokenForm {
    /// The parameters of a request whose content type is form-urlencoded; `None` for another
    /// content type.
    pub fn read(headers: &HeaderMap, body: &Bytes) -> Option<Self> {
        let form_ct = headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
        form_ct.then(|| Self(url::form_urlencoded::parse(body).into_owned().collect()))
    }

    /// Whether some parameter is given more than once.
    pub fn repeats(&self) -> bool {
        let mut seen = std::collections::HashSet::new();
        !self.0.iter().all(|(k, _)| seen.insert(k.as_str()))
    }

    /// The (first) non-empty value of parameter `k`.
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn form(ct: &'static str, body: &'static str) -> Option<TokenForm> {
        let mut h = HeaderMap::new();
        h.insert(http::header::CONTENT_TYPE, HeaderValue::from_static(ct));
        TokenForm::read(&h, &Bytes::from_static(body.as_bytes()))
    }

    #[test]
    fn only_a_form_is_read_and_empty_values_are_absent() {
        let f = form("application/x-www-form-urlencoded", "a=1&b=&c=x%20y").unwrap();
        assert_eq!(f.get("a"), Some("1"));
        assert_eq!(f.get("b"), None);
        assert_eq!(f.get("c"), Some("x y"));
        assert!(!f.repeats());
        assert!(form("application/json", "a=1").is_none());
        assert!(TokenForm::read(&HeaderMap::new(), &Bytes::from_static(b"a=1")).is_none());
    }

    #[test]
    fn a_parameter_given_twice_is_seen() {
        let f = form("application/x-www-form-urlencoded", "code=1&code=2").unwrap();
        assert!(f.repeats());
    }
}
