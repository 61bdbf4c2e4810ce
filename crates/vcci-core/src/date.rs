//! Calendar dates (`YYYY-MM-DD`), the only date format lines may use.

use serde::{Deserialize, Serialize};

/// A proleptic Gregorian date; ordering is chronological.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Date {
    year: u16,
    month: u8,
    day: u8,
}

fn days_in_month(y: u16, m: u8) -> u8 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400) => 29,
        _ => 28,
    }
}

impl Date {
    pub fn new(year: u16, month: u8, day: u8) -> Option<Date> {
        ((1000..=9999).contains(&year)
            && (1..=12).contains(&month)
            && day >= 1
            && day <= days_in_month(year, month))
        .then_some(Date { year, month, day })
    }

    /// Parses exactly `YYYY-MM-DD` (surrounding spaces ignored).
    pub fn parse(s: &str) -> Result<Date, String> {
        let t = s.trim();
        let b = t.as_bytes();
        let digits = |r: std::ops::Range<usize>| -> Option<u16> {
            b[r].iter().try_fold(0u16, |a, d| {
                d.is_ascii_digit().then(|| a * 10 + u16::from(d - b'0'))
            })
        };
        if b.len() == 10
            && b[4] == b'-'
            && b[7] == b'-'
            && let (Some(y), Some(m), Some(d)) = (digits(0..4), digits(5..7), digits(8..10))
        {
            return Date::new(y, m as u8, d as u8)
                .ok_or_else(|| format!("'{t}' is not a valid calendar date"));
        }
        Err(format!("'{t}' is not a date in YYYY-MM-DD form"))
    }

    pub fn year(self) -> u16 {
        self.year
    }
    pub fn month(self) -> u8 {
        self.month
    }
    pub fn day(self) -> u8 {
        self.day
    }

    /// The date as the integer yyyymmdd (20240131): sortable, compact, fast to compare.
    pub fn yyyymmdd(self) -> u32 {
        u32::from(self.year) * 10_000 + u32::from(self.month) * 100 + u32::from(self.day)
    }

    /// The inverse of `yyyymmdd`.
    pub fn from_yyyymmdd(n: u32) -> Option<Date> {
        Date::new(
            u16::try_from(n / 10_000).ok()?,
            (n / 100 % 100) as u8,
            (n % 100) as u8,
        )
    }

    /// `YYYY-MM`.
    pub fn month_key(self) -> String {
        format!("{:04}-{:02}", self.year, self.month)
    }

    /// The first day of the following month.
    pub fn next_month_start(self) -> Date {
        if self.month == 12 {
            Date {
                year: self.year + 1,
                month: 1,
                day: 1,
            }
        } else {
            Date {
                year: self.year,
                month: self.month + 1,
                day: 1,
            }
        }
    }

    /// Days in this date's month.
    pub fn month_len(self) -> u8 {
        days_in_month(self.year, self.month)
    }
}

impl std::fmt::Display for Date {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl TryFrom<String> for Date {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Date::parse(&s)
    }
}

impl From<Date> for String {
    fn from(d: Date) -> String {
        d.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn parse_dates() {
        assert_eq!(Date::parse("2024-02-29").unwrap().to_string(), "2024-02-29");
        assert!(Date::parse("2023-02-29").is_err());
        assert!(Date::parse("2023-13-01").is_err());
        assert!(Date::parse("01/02/2023").is_err());
        assert!(Date::parse("2023-1-01").is_err());
        assert!(Date::parse("2023-01-01T00:00").is_err());
        assert!(Date::parse("2023-00-10").is_err());
        let d = Date::parse("2024-02-29").unwrap();
        assert_eq!(d.yyyymmdd(), 20240229);
        assert_eq!(Date::from_yyyymmdd(20240229), Some(d));
        assert_eq!(Date::from_yyyymmdd(20230229), None);
    }
}
