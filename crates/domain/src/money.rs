//! Exact money. `Money` counts nano-dollars (10⁻⁹ USD) in an `i64`: exact decimal arithmetic
//! with nine fractional digits, summable in SQL on every backend, and cheap enough to keep in
//! atomics on the hot path. No float is ever converted into it.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::ops::{Add, AddAssign, Neg, Sub, SubAssign};
use std::str::FromStr;

/// Nano-dollars per dollar.
const NANOS_PER_USD: i64 = 1_000_000_000;
/// Fractional digits carried by `Money`.
const SCALE: usize = 9;

/// An exact amount of US dollars with nine fractional digits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Money(i64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("`{0}` is not a decimal amount")]
    NotDecimal(String),
    #[error("`{0}` has more than 9 fractional digits")]
    TooPrecise(String),
    #[error("`{0}` is out of range")]
    OutOfRange(String),
}

impl Money {
    pub const ZERO: Money = Money(0);

    pub const fn from_nanos(nanos: i64) -> Self {
        Self(nanos)
    }

    pub const fn nanos(self) -> i64 {
        self.0
    }

    /// Whole dollars.
    pub fn from_usd(usd: i64) -> Self {
        Self(usd.saturating_mul(NANOS_PER_USD))
    }

    pub fn is_negative(self) -> bool {
        self.0 < 0
    }

    pub fn checked_add(self, other: Money) -> Option<Money> {
        self.0.checked_add(other.0).map(Money)
    }

    /// The cost of `tokens` at `per_million` dollars per million tokens, rounded half-up to
    /// the nano-dollar. Computed in i128 so no intermediate can overflow.
    pub fn per_million_tokens(per_million: Money, tokens: u64) -> Money {
        let raw = i128::from(per_million.0) * i128::from(tokens);
        let rounded = (raw + 500_000) / 1_000_000;
        Money(i64::try_from(rounded).unwrap_or(i64::MAX))
    }
}

impl Add for Money {
    type Output = Money;
    fn add(self, rhs: Money) -> Money {
        Money(self.0.saturating_add(rhs.0))
    }
}

impl AddAssign for Money {
    fn add_assign(&mut self, rhs: Money) {
        *self = *self + rhs;
    }
}

impl Sub for Money {
    type Output = Money;
    fn sub(self, rhs: Money) -> Money {
        Money(self.0.saturating_sub(rhs.0))
    }
}

impl SubAssign for Money {
    fn sub_assign(&mut self, rhs: Money) {
        *self = *self - rhs;
    }
}

impl Neg for Money {
    type Output = Money;
    fn neg(self) -> Money {
        Money(self.0.saturating_neg())
    }
}

impl std::iter::Sum for Money {
    fn sum<I: Iterator<Item = Money>>(iter: I) -> Money {
        iter.fold(Money::ZERO, Add::add)
    }
}

impl FromStr for Money {
    type Err = MoneyError;

    /// Accepts `12`, `-3.5`, `0.000000001`, `+7.25`; rejects exponents, blanks and more than
    /// nine fractional digits (rounding would silently change an amount someone typed).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || MoneyError::NotDecimal(s.to_owned());
        let t = s.trim();
        let (negative, digits) = match t.as_bytes().first() {
            Some(b'-') => (true, &t[1..]),
            Some(b'+') => (false, &t[1..]),
            _ => (false, t),
        };
        let (int_part, frac_part) = match digits.split_once('.') {
            Some((i, f)) => (i, f),
            None => (digits, ""),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(bad());
        }
        if !int_part.bytes().all(|b| b.is_ascii_digit())
            || !frac_part.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        if frac_part.len() > SCALE {
            return Err(MoneyError::TooPrecise(s.to_owned()));
        }
        let range = || MoneyError::OutOfRange(s.to_owned());
        let whole: i64 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| range())?
        };
        let mut frac: i64 = 0;
        for (i, b) in frac_part.bytes().enumerate() {
            frac += i64::from(b - b'0') * 10_i64.pow(u32::try_from(SCALE - 1 - i).unwrap_or(0));
        }
        let nanos = whole
            .checked_mul(NANOS_PER_USD)
            .and_then(|w| w.checked_add(frac))
            .ok_or_else(range)?;
        Ok(Money(if negative { -nanos } else { nanos }))
    }
}

impl fmt::Display for Money {
    /// Plain decimal with at least two and at most nine fractional digits: `12.50`,
    /// `0.000001234`, `-3.00`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let nanos_per_usd = NANOS_PER_USD.unsigned_abs();
        let whole = abs / nanos_per_usd;
        let frac = format!("{:09}", abs % nanos_per_usd);
        let trimmed = frac.trim_end_matches('0');
        let shown = if trimmed.len() < 2 {
            &frac[..2]
        } else {
            trimmed
        };
        write!(f, "{sign}{whole}.{shown}")
    }
}

impl Serialize for Money {
    /// Always a JSON string, so no client parses money as a float by accident.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Money {
    /// From any format: a decimal string or an integer. A float is refused, because its
    /// value may already differ from what was written (use a string: `"0.10"`).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Money;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a decimal amount as a string, e.g. \"0.10\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Money, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Money, E> {
                v.to_string().parse().map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Money, E> {
                v.to_string().parse().map_err(E::custom)
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Money, E> {
                Err(E::custom(format!(
                    "write the amount {v} as a string (e.g. \"{v}\") so it stays exact"
                )))
            }
        }
        d.deserialize_any(V)
    }
}

/// `Money` in a JSON request body: a decimal string or a JSON number, read from its source
/// text so a number is never routed through `f64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonMoney(pub Money);

impl<'de> Deserialize<'de> for JsonMoney {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw: Box<serde_json::value::RawValue> = Deserialize::deserialize(d)?;
        let text = raw.get();
        let inner = if let Some(stripped) = text.strip_prefix('"') {
            stripped.strip_suffix('"').unwrap_or(stripped)
        } else {
            text
        };
        inner
            .parse()
            .map(JsonMoney)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(s: &str) -> Money {
        s.parse().unwrap()
    }

    #[test]
    fn parses_and_formats_exactly() {
        assert_eq!(m("12").nanos(), 12_000_000_000);
        assert_eq!(m("0.1").nanos(), 100_000_000);
        assert_eq!(m("-3.5").nanos(), -3_500_000_000);
        assert_eq!(m(".5").nanos(), 500_000_000);
        assert_eq!(m("0.000000001").nanos(), 1);
        assert_eq!(m("12").to_string(), "12.00");
        assert_eq!(m("12.5").to_string(), "12.50");
        assert_eq!(m("0.000001234").to_string(), "0.000001234");
        assert_eq!(m("-3").to_string(), "-3.00");
        assert_eq!(Money::from_nanos(-1).to_string(), "-0.000000001");
    }

    #[test]
    fn rejects_what_is_not_an_exact_decimal() {
        for bad in ["", "-", ".", "1e3", "abc", "1.2.3", "0x10", " 1 2", "NaN"] {
            assert!(bad.parse::<Money>().is_err(), "{bad:?} should fail");
        }
        assert!(matches!(
            "0.0000000001".parse::<Money>(),
            Err(MoneyError::TooPrecise(_))
        ));
        assert!(matches!(
            "99999999999999999999".parse::<Money>(),
            Err(MoneyError::OutOfRange(_))
        ));
    }

    #[test]
    fn json_accepts_strings_and_numbers_without_floats() {
        #[derive(Deserialize)]
        struct Body {
            amount: JsonMoney,
        }
        let a: Body = serde_json::from_str(r#"{"amount": 0.1}"#).unwrap();
        assert_eq!(a.amount.0.nanos(), 100_000_000);
        let b: Body = serde_json::from_str(r#"{"amount": "25.123456789"}"#).unwrap();
        assert_eq!(b.amount.0.nanos(), 25_123_456_789);
        let c: Body = serde_json::from_str(r#"{"amount": 12345678.123456789}"#).unwrap();
        assert_eq!(
            c.amount.0.nanos(),
            12_345_678_123_456_789,
            "17 digits, exact"
        );
        assert!(serde_json::from_str::<Body>(r#"{"amount": 1e2}"#).is_err());
        assert!(serde_json::from_str::<Body>(r#"{"amount": true}"#).is_err());
        assert_eq!(serde_json::to_string(&m("1.5")).unwrap(), r#""1.50""#);
    }

    #[test]
    fn other_formats_take_strings_and_integers_but_not_floats() {
        #[derive(Deserialize)]
        struct Price {
            input: Money,
        }
        let v: Price = serde_json::from_value(serde_json::json!({ "input": "0.10" })).unwrap();
        assert_eq!(v.input, m("0.10"));
        let v: Price = serde_json::from_value(serde_json::json!({ "input": 3 })).unwrap();
        assert_eq!(v.input, m("3"));
        let e = serde_json::from_value::<Price>(serde_json::json!({ "input": 0.1 }))
            .err()
            .unwrap();
        assert!(e.to_string().contains("as a string"), "{e}");
    }

    #[test]
    fn token_cost_is_exact_per_million() {
        let price = m("0.10");
        assert_eq!(Money::per_million_tokens(price, 1), Money::from_nanos(100));
        assert_eq!(
            Money::per_million_tokens(price, 1_000_000),
            Money::from_usd(0) + m("0.1")
        );
        // 0.15/M × 7 tokens = 0.00000105 exactly.
        assert_eq!(Money::per_million_tokens(m("0.15"), 7), m("0.00000105"));
        // Sub-nano results round half-up: 0.0000015/M × 1 token = 1.5e-12 → 0.
        assert_eq!(Money::per_million_tokens(m("0.0000015"), 1), Money::ZERO);
        assert_eq!(
            Money::per_million_tokens(m("0.5"), 1),
            Money::from_nanos(500)
        );
    }
}
