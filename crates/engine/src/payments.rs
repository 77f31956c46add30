//! Card payments through Stripe Checkout: creating a session for a top-up, and crediting the
//! account when Stripe's signed webhook says it was paid — once per payment, however often
//! the event is delivered.

use crate::Engine;
use domain::{AccountId, ApiError, ErrorCode, LedgerKind, Money, NewLedgerEntry, UnixMillis};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

/// Stripe's documented tolerance between a webhook's timestamp and now.
pub const SIGNATURE_TOLERANCE_SECS: i64 = 300;
/// Smallest and largest checkout amounts accepted, in dollars.
const MIN_CHECKOUT_USD: i64 = 5;
const MAX_CHECKOUT_USD: i64 = 10_000;
/// Nano-dollars per cent.
const NANOS_PER_CENT: i64 = 10_000_000;

#[derive(Debug, Clone)]
pub struct StripeSettings {
    pub secret_key: String,
    pub webhook_secret: String,
    /// `https://api.stripe.com` in production; tests point it at a fake.
    pub api_base: String,
    pub success_url: String,
    pub cancel_url: String,
}

/// A created checkout session.
#[derive(Debug, Clone, Deserialize)]
pub struct CheckoutSession {
    pub id: String,
    pub url: String,
}

/// Checks a `Stripe-Signature` header (`t=…,v1=…[,v1=…]`) against the raw body: HMAC-SHA256
/// of `"{t}.{body}"` under the webhook secret, any `v1` matching, `t` within the tolerance.
pub fn verify_signature(
    header: &str,
    body: &[u8],
    secret: &str,
    now_secs: i64,
) -> Result<(), String> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => timestamp = v.parse::<i64>().ok(),
            Some(("v1", v)) => signatures.push(v),
            _ => {}
        }
    }
    let t = timestamp.ok_or("the signature header has no timestamp")?;
    if signatures.is_empty() {
        return Err("the signature header has no v1 signature".into());
    }
    if (now_secs - t).abs() > SIGNATURE_TOLERANCE_SECS {
        return Err("the signature timestamp is outside the tolerance".into());
    }
    let mac = || {
        let mut m = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).ok()?;
        m.update(t.to_string().as_bytes());
        m.update(b".");
        m.update(body);
        Some(m)
    };
    let matched = signatures.iter().any(|sig| {
        let (Ok(bytes), Some(m)) = (hex::decode(sig), mac()) else {
            return false;
        };
        m.verify_slice(&bytes).is_ok()
    });
    if matched {
        Ok(())
    } else {
        Err("no signature matches".into())
    }
}

#[derive(Deserialize)]
struct Event {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    data: EventData,
}

#[derive(Deserialize)]
struct EventData {
    object: SessionObject,
}

#[derive(Deserialize)]
struct SessionObject {
    id: String,
    client_reference_id: Option<String>,
    amount_total: Option<i64>,
    currency: Option<String>,
    payment_status: Option<String>,
}

/// What a webhook delivery did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookOutcome {
    Credited {
        account: AccountId,
        amount: Money,
    },
    /// This payment was credited before (a replay or a second event for it).
    AlreadyCredited,
    /// An event type or state that moves no money.
    Ignored,
}

impl Engine {
    pub fn payments_enabled(&self) -> bool {
        self.settings.stripe.is_some()
    }

    /// Creates a Stripe Checkout session for `amount` and returns it (with its URL).
    pub async fn checkout(
        &self,
        account: &AccountId,
        amount: Money,
    ) -> Result<CheckoutSession, ApiError> {
        let stripe = self.settings.stripe.as_ref().ok_or_else(|| {
            ApiError::new(
                ErrorCode::PaymentsDisabled,
                "card payments are not configured on this gateway",
            )
        })?;
        let cents = amount.nanos() / NANOS_PER_CENT;
        if amount.nanos() % NANOS_PER_CENT != 0
            || amount < Money::from_usd(MIN_CHECKOUT_USD)
            || amount > Money::from_usd(MAX_CHECKOUT_USD)
        {
            return Err(ApiError::new(
                ErrorCode::InvalidBody,
                format!("`amount_usd` must be whole cents between {MIN_CHECKOUT_USD} and {MAX_CHECKOUT_USD}"),
            ));
        }
        let form = [
            ("mode", "payment".to_owned()),
            ("success_url", stripe.success_url.clone()),
            ("cancel_url", stripe.cancel_url.clone()),
            ("client_reference_id", account.0.clone()),
            ("metadata[account_id]", account.0.clone()),
            ("line_items[0][quantity]", "1".to_owned()),
            ("line_items[0][price_data][currency]", "usd".to_owned()),
            ("line_items[0][price_data][unit_amount]", cents.to_string()),
            (
                "line_items[0][price_data][product_data][name]",
                "Switchyard credits".to_owned(),
            ),
        ];
        let url = format!(
            "{}/v1/checkout/sessions",
            stripe.api_base.trim_end_matches('/')
        );
        let resp = self
            .http
            .post(url)
            .bearer_auth(&stripe.secret_key)
            .form(&form)
            .send()
            .await
            .map_err(|e| {
                ApiError::new(
                    ErrorCode::UpstreamError,
                    format!("Stripe could not be reached: {e}"),
                )
            })?;
        let status = resp.status();
        if !status.is_success() {
            tracing::error!(%status, "Stripe refused to create a checkout session");
            return Err(ApiError::new(
                ErrorCode::UpstreamError,
                format!("Stripe refused the checkout (HTTP {status})"),
            ));
        }
        resp.json::<CheckoutSession>().await.map_err(|e| {
            ApiError::new(
                ErrorCode::UpstreamError,
                format!("Stripe answered unexpectedly: {e}"),
            )
        })
    }

    /// Verifies and applies one webhook delivery.
    pub async fn stripe_webhook(
        &self,
        signature: Option<&str>,
        body: &[u8],
    ) -> Result<WebhookOutcome, ApiError> {
        let stripe = self.settings.stripe.as_ref().ok_or_else(|| {
            ApiError::new(
                ErrorCode::PaymentsDisabled,
                "card payments are not configured on this gateway",
            )
        })?;
        let bad = |m: String| ApiError::new(ErrorCode::InvalidSignature, m);
        let header = signature.ok_or_else(|| bad("missing Stripe-Signature header".into()))?;
        verify_signature(
            header,
            body,
            &stripe.webhook_secret,
            UnixMillis::now().as_secs(),
        )
        .map_err(bad)?;
        let event: Event = serde_json::from_slice(body).map_err(|e| {
            ApiError::new(ErrorCode::InvalidBody, format!("not a Stripe event: {e}"))
        })?;
        let paid_event = matches!(
            event.kind.as_str(),
            "checkout.session.completed" | "checkout.session.async_payment_succeeded"
        );
        let session = event.data.object;
        if !paid_event || session.payment_status.as_deref() != Some("paid") {
            return Ok(WebhookOutcome::Ignored);
        }
        if session
            .currency
            .as_deref()
            .is_some_and(|c| !c.eq_ignore_ascii_case("usd"))
        {
            tracing::warn!(event = %event.id, "ignoring a non-USD checkout");
            return Ok(WebhookOutcome::Ignored);
        }
        let (Some(account), Some(cents)) = (session.client_reference_id, session.amount_total)
        else {
            return Err(ApiError::new(
                ErrorCode::InvalidBody,
                "the checkout session names no account or amount",
            ));
        };
        let account = AccountId(account);
        self.account(&account).await?;
        let amount = Money::from_nanos(cents.saturating_mul(NANOS_PER_CENT));
        let entry = NewLedgerEntry {
            account_id: account.clone(),
            kind: LedgerKind::Topup,
            amount,
            reason: "card payment".to_owned(),
            reference: Some(format!("stripe:{}", session.id)),
        };
        match self.post_entry(entry).await? {
            Some(_) => {
                tracing::info!(event = %event.id, %account, %amount, "credited a card payment");
                Ok(WebhookOutcome::Credited { account, amount })
            }
            None => Ok(WebhookOutcome::AlreadyCredited),
        }
    }
}

/// Signs a payload as Stripe does (for tests and tooling).
pub fn sign(body: &[u8], secret: &str, timestamp: i64) -> String {
    // HMAC takes keys of any length, so this never returns early.
    let Ok(mut m) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    m.update(timestamp.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    format!(
        "t={timestamp},v1={}",
        hex::encode(m.finalize().into_bytes())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_checked_as_stripe_specifies() {
        let body = br#"{"id":"evt_1"}"#;
        let header = sign(body, "whsec_test", 1_700_000_000);
        assert_eq!(
            verify_signature(&header, body, "whsec_test", 1_700_000_100),
            Ok(())
        );
        assert!(verify_signature(&header, body, "whsec_other", 1_700_000_100).is_err());
        assert!(
            verify_signature(&header, b"{\"id\":\"evt_2\"}", "whsec_test", 1_700_000_100).is_err()
        );
        assert!(verify_signature(&header, body, "whsec_test", 1_700_000_301)
            .unwrap_err()
            .contains("tolerance"));
        // Several v1 signatures (secret rotation): any one matching is enough.
        let good = header.split(",v1=").nth(1).unwrap();
        let rotated = format!("t=1700000000,v1={},v1={good},v0=abc", "00".repeat(32));
        assert_eq!(
            verify_signature(&rotated, body, "whsec_test", 1_700_000_000),
            Ok(())
        );
        assert!(verify_signature("v1=abc", body, "whsec_test", 0).is_err());
        assert!(verify_signature("t=1700000000", body, "whsec_test", 1_700_000_000).is_err());
    }
}
