//! NAICS-2017 industry codes (six digits), parsed at the edge.

use serde::{Deserialize, Serialize};

/// A six-digit NAICS-2017 code. Whether a factor exists for it is the factor set's business.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Naics(u32);

impl Naics {
    /// Accepts exactly six ASCII digits (surrounding spaces ignored), first digit 1–9.
    pub fn parse(s: &str) -> Result<Naics, String> {
        let t = s.trim();
        let b = t.as_bytes();
        if b.len() == 6 && b.iter().all(u8::is_ascii_digit) && b[0] != b'0' {
            Ok(Naics(
                b.iter().fold(0u32, |a, d| a * 10 + u32::from(d - b'0')),
            ))
        } else {
            Err(format!("'{t}' is not a six-digit NAICS-2017 code"))
        }
    }

    /// The code as a number, e.g. 334111.
    pub fn code(self) -> u32 {
        self.0
    }

    pub fn from_code(code: u32) -> Option<Naics> {
        (100_000..1_000_000).contains(&code).then_some(Naics(code))
    }
}

impl std::fmt::Display for Naics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl TryFrom<String> for Naics {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Naics::parse(&s)
    }
}

impl From<Naics> for String {
    fn from(n: Naics) -> String {
        n.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn parse() {
        assert_eq!(Naics::parse(" 334111 ").unwrap().code(), 334111);
        for bad in ["33411", "3341111", "33411a", "", "033411", "3341.1"] {
            assert!(Naics::parse(bad).is_err(), "{bad}");
        }
    }
}
