//! Requests refused to protect the service, each answered with a problem body and counted in
//! `stagewatch_http_refused_total{reason}`, so that probing and misconfiguration show on a
//! dashboard. The outbound side counts its refusals here too (`webhook_private_address`).

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No `Authorization: Bearer` API key.
    ApiKeyMissing,
    /// An API key that is not accepted.
    ApiKeyWrong,
    /// A Kombo webhook while `kombo.webhook_secret` is empty.
    KomboWebhooksUnconfigured,
    /// A Kombo webhook without `X-Kombo-Signature`.
    KomboSignatureMissing,
    /// A Kombo webhook whose signature is not over its body with our secret.
    KomboSignatureForged,
    /// A webhook endpoint URL naming a non-public address while private URLs are not allowed.
    PrivateWebhookUrl,
    /// A delivery whose endpoint resolved to (or named) a non-public address.
    WebhookPrivateAddress,
    /// A body over `api.body_limit_bytes`.
    BodyTooLarge,
    /// A JSON body nested deeper than [`super::extract::MAX_JSON_DEPTH`].
    JsonTooDeep,
    /// A console form posted from another site.
    CrossSiteForm,
    /// A console form whose CSRF token is missing or not its session's.
    CsrfTokenWrong,
    /// A console sign-in with a key that is not accepted.
    ConsoleSignInWrong,
}

impl Refusal {
    /// The metric's `reason` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ApiKeyMissing => "api_key_missing",
            Self::ApiKeyWrong => "api_key_wrong",
            Self::KomboWebhooksUnconfigured => "kombo_webhooks_unconfigured",
            Self::KomboSignatureMissing => "kombo_signature_missing",
            Self::KomboSignatureForged => "kombo_signature_forged",
            Self::PrivateWebhookUrl => "private_webhook_url",
            Self::WebhookPrivateAddress => "webhook_private_address",
            Self::BodyTooLarge => "body_too_large",
            Self::JsonTooDeep => "json_too_deep",
            Self::CrossSiteForm => "cross_site_form",
            Self::CsrfTokenWrong => "csrf_token_wrong",
            Self::ConsoleSignInWrong => "console_sign_in_wrong",
        }
    }

    /// Counts one refusal.
    pub fn count(self) {
        metrics::counter!("stagewatch_http_refused_total", "reason" => self.as_str()).increment(1);
    }
}
