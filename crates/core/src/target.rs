//! The URL a webhook posts to.

use crate::Invalid;

/// The longest URL accepted for a webhook.
pub const MAX_URL_LEN: usize = 8 * 1024;

/// An absolute `http` or `https` URL with a host and no credentials in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl(url::Url);

impl WebhookUrl {
    pub fn parse(text: &str, field: &str) -> Result<Self, Invalid> {
        if text.len() > MAX_URL_LEN {
            return Err(Invalid::new(field, "must be at most 8 KiB long"));
        }
        let url = url::Url::parse(text)
            .map_err(|e| Invalid::new(field, format!("is not a valid URL: {e}")))?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(Invalid::new(field, "must use http or https"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(Invalid::new(field, "must name a host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Invalid::new(
                field,
                "must not carry credentials; use the webhook's secret instead",
            ));
        }
        Ok(WebhookUrl(url))
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    pub fn url(&self) -> &url::Url {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_and_https_urls_with_hosts_are_accepted() {
        assert!(WebhookUrl::parse("https://hooks.example.com/lockstep?x=1", "url").is_ok());
        assert!(WebhookUrl::parse("http://127.0.0.1:9000/", "url").is_ok());
    }

    #[test]
    fn other_urls_are_refused_naming_the_field() {
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        for bad in [
            "",
            "not a url",
            "ftp://example.com/",
            "https://u:p@example.com/",
            &long,
        ] {
            let err = WebhookUrl::parse(bad, "url").unwrap_err();
            assert_eq!(err.field, "url");
        }
    }
}
