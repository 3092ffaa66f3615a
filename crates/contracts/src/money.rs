//! Money: always integer cents, never floating point.

use serde::{Deserialize, Serialize};

/// The largest price one menu item may have: 100,000.00.
pub const MAX_PRICE_CENTS: i64 = 10_000_000;

/// A price in cents: positive and at most [`MAX_PRICE_CENTS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct PriceCents(i64);

/// Why a number is not a price.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidPrice {
    #[error("must be a positive number of cents")]
    NotPositive,
    #[error("must be at most {MAX_PRICE_CENTS} cents")]
    TooLarge,
}

impl PriceCents {
    pub fn parse(cents: i64) -> Result<Self, InvalidPrice> {
        if cents <= 0 {
            Err(InvalidPrice::NotPositive)
        } else if cents > MAX_PRICE_CENTS {
            Err(InvalidPrice::TooLarge)
        } else {
            Ok(Self(cents))
        }
    }

    pub fn cents(self) -> i64 {
        self.0
    }
}

impl TryFrom<i64> for PriceCents {
    type Error = InvalidPrice;
    fn try_from(cents: i64) -> Result<Self, Self::Error> {
        Self::parse(cents)
    }
}

impl From<PriceCents> for i64 {
    fn from(p: PriceCents) -> i64 {
        p.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_positive_cents() {
        assert_eq!(PriceCents::parse(1).map(PriceCents::cents), Ok(1));
        assert_eq!(
            PriceCents::parse(MAX_PRICE_CENTS).map(PriceCents::cents),
            Ok(MAX_PRICE_CENTS)
        );
    }

    #[test]
    fn refuses_zero_negative_and_absurd_prices() {
        assert_eq!(PriceCents::parse(0), Err(InvalidPrice::NotPositive));
        assert_eq!(PriceCents::parse(-150), Err(InvalidPrice::NotPositive));
        assert_eq!(
            PriceCents::parse(MAX_PRICE_CENTS + 1),
            Err(InvalidPrice::TooLarge)
        );
    }

    #[test]
    fn deserialising_validates() {
        assert!(serde_json::from_str::<PriceCents>("1250").is_ok());
        assert!(serde_json::from_str::<PriceCents>("-1").is_err());
        assert!(serde_json::from_str::<PriceCents>("12.5").is_err());
    }
}
