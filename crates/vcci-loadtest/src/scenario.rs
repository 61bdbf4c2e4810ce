//! Scenarios modelled on real use: which requests, in what proportions, with what data.

use vcci_store::demo::Rng;

use crate::client::Req;

/// A named mix of requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// Analysts browsing and loading data: lists, details, summaries, some writes, imports.
    Mixed,
    /// Dashboards and exploration only.
    ReadHeavy,
    /// Systems pushing data: batch upserts and imports, with some reads.
    WriteHeavy,
    /// Stateless calculation of 100-line batches.
    Calculate,
}

impl Scenario {
    pub const ALL: [(&'static str, Scenario); 4] = [
        ("mixed", Scenario::Mixed),
        ("read-heavy", Scenario::ReadHeavy),
        ("write-heavy", Scenario::WriteHeavy),
        ("calculate", Scenario::Calculate),
    ];

    pub fn parse(s: &str) -> Result<Scenario, String> {
        Scenario::ALL
            .iter()
            .find(|(n, _)| *n == s)
            .map(|(_, x)| *x)
            .ok_or_else(|| {
                let names: Vec<_> = Scenario::ALL.iter().map(|(n, _)| *n).collect();
                format!(
                    "'{s}' is not a scenario; scenarios are {}",
                    names.join(", ")
                )
            })
    }

    pub fn name(self) -> &'static str {
        Scenario::ALL
            .iter()
            .find(|(_, x)| *x == self)
            .map_or("", |(n, _)| n)
    }

    /// (request kind, weight).
    fn weights(self) -> &'static [(Kind, u32)] {
        use Kind::*;
        match self {
            Scenario::Mixed => &[
                (ListTransactions, 25),
                (TransactionDetail, 15),
                (SupplierDetail, 15),
                (Summary, 20),
                (ByMonth, 10),
                (CreateTransactions, 7),
                (Calculate10, 6),
                (CsvImport, 2),
            ],
            Scenario::ReadHeavy => &[
                (ListTransactions, 30),
                (TransactionDetail, 30),
                (SupplierDetail, 15),
                (Summary, 15),
                (ByMonth, 10),
            ],
            Scenario::WriteHeavy => &[
                (CreateTransactions, 50),
                (CsvImport, 5),
                (Calculate10, 15),
                (ListTransactions, 15),
                (Summary, 15),
            ],
            Scenario::Calculate => &[(Calculate100, 1)],
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    ListTransactions,
    TransactionDetail,
    SupplierDetail,
    Summary,
    ByMonth,
    CreateTransactions,
    Calculate10,
    Calculate100,
    CsvImport,
}

/// What the generator knows of the target's data (sampled before the run).
#[derive(Clone, Debug, Default)]
pub struct Known {
    pub transaction_ids: Vec<String>,
    pub supplier_ids: Vec<String>,
    /// Years that have data.
    pub years: Vec<u16>,
}

/// Makes requests for one scenario; each worker has its own (own random stream).
#[derive(Debug)]
pub struct Generator {
    scenario: Scenario,
    known: std::sync::Arc<Known>,
    rng: Rng,
    /// Prefix of the ids of lines this run writes, so they are recognizable.
    run: String,
    seq: u64,
}

const NAICS: &[&str] = &[
    "334111", "484121", "541511", "325211", "481111", "721110", "562111",
];
const CURRENCIES: &[&str] = &["USD", "EUR", "GBP", "JPY", "CAD"];

fn url_part(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

impl Generator {
    pub fn new(
        scenario: Scenario,
        known: std::sync::Arc<Known>,
        seed: u64,
        run: &str,
    ) -> Generator {
        Generator {
            scenario,
            known,
            rng: Rng::new(seed),
            run: run.to_owned(),
            seq: 0,
        }
    }

    fn year(&mut self) -> u16 {
        if self.known.years.is_empty() {
            2024
        } else {
            *self.rng.pick(&self.known.years)
        }
    }

    fn spend_line(&mut self, with_id: bool) -> serde_json::Value {
        let y = self.year();
        let mut l = serde_json::json!({
            "date": format!("{y}-{:02}-{:02}", 1 + self.rng.below(12), 1 + self.rng.below(28)),
            "amount": (self.rng.f64() * 10_000.0 * 100.0).round() / 100.0 + 1.0,
            "currency": *self.rng.pick(CURRENCIES),
            "naics_code": *self.rng.pick(NAICS),
            "description": "load test",
        });
        if with_id {
            self.seq += 1;
            l["transaction_id"] = serde_json::Value::String(format!("{}-{}", self.run, self.seq));
        }
        if !self.known.supplier_ids.is_empty() && self.rng.below(2) == 0 {
            l["supplier_id"] =
                serde_json::Value::String(self.rng.pick(&self.known.supplier_ids).clone());
        }
        l
    }

    fn calculate(&mut self, n: usize) -> Req {
        let lines: Vec<_> = (0..n)
            .map(|i| {
                if i % 4 == 3 {
                    serde_json::json!({"date": "2024-05-01", "quantity": 100 + i, "unit": "tonne.km",
                        "activity_id": "freighting-goods/hgv-all-diesel/all-hgvs/average-laden/tonne.km"})
                } else {
                    self.spend_line(false)
                }
            })
            .collect();
        Req {
            name: if n == 100 {
                "calculate (100 lines)"
            } else {
                "calculate (10 lines)"
            },
            method: "POST",
            path: "/api/v1/emissions/calculate".into(),
            content_type: Some("application/json"),
            body: serde_json::to_vec(&serde_json::json!({ "lines": lines })).unwrap_or_default(),
        }
    }

    /// The next request.
    pub fn next_request(&mut self) -> Req {
        let weights = self.scenario.weights();
        let total: u32 = weights.iter().map(|w| w.1).sum();
        let mut r = self.rng.below(total as usize) as u32;
        let kind = weights
            .iter()
            .find(|(_, w)| {
                if r < *w {
                    true
                } else {
                    r -= w;
                    false
                }
            })
            .map_or(weights[0].0, |(k, _)| *k);
        let get = |name, path: String| Req {
            name,
            method: "GET",
            path,
            content_type: None,
            body: Vec::new(),
        };
        match kind {
            Kind::ListTransactions => {
                let y = self.year();
                let path = if self.rng.below(2) == 0 {
                    "/api/v1/transactions?limit=100".to_owned()
                } else {
                    format!(
                        "/api/v1/transactions?limit=100&date_to={y}-{:02}-28",
                        1 + self.rng.below(12)
                    )
                };
                get("list transactions", path)
            }
            Kind::TransactionDetail => match self.known.transaction_ids.len() {
                0 => get("list transactions", "/api/v1/transactions?limit=10".into()),
                _ => {
                    let id = url_part(self.rng.pick::<String>(&self.known.transaction_ids));
                    get("transaction detail", format!("/api/v1/transactions/{id}"))
                }
            },
            Kind::SupplierDetail => match self.known.supplier_ids.len() {
                0 => get("list suppliers", "/api/v1/suppliers?limit=50".into()),
                _ => {
                    let id = url_part(self.rng.pick::<String>(&self.known.supplier_ids));
                    get("supplier detail", format!("/api/v1/suppliers/{id}"))
                }
            },
            Kind::Summary => {
                let path = if self.rng.below(2) == 0 {
                    "/api/v1/emissions/summary".to_owned()
                } else {
                    let y = self.year();
                    format!("/api/v1/emissions/summary?date_from={y}-01-01&date_to={y}-12-31")
                };
                get("summary", path)
            }
            Kind::ByMonth => {
                let y = self.year();
                get("by month", format!("/api/v1/emissions/by-month?year={y}"))
            }
            Kind::CreateTransactions => {
                let lines: Vec<_> = (0..10).map(|_| self.spend_line(true)).collect();
                Req {
                    name: "create transactions (10)",
                    method: "POST",
                    path: "/api/v1/transactions".into(),
                    content_type: Some("application/json"),
                    body: serde_json::to_vec(&serde_json::json!({ "transactions": lines }))
                        .unwrap_or_default(),
                }
            }
            Kind::Calculate10 => self.calculate(10),
            Kind::Calculate100 => self.calculate(100),
            Kind::CsvImport => {
                let mut csv =
                    String::from("transaction_id,date,amount,currency,naics_code,description\n");
                for _ in 0..200 {
                    let l = self.spend_line(true);
                    csv += &format!(
                        "{},{},{},{},{},load test import\n",
                        l["transaction_id"].as_str().unwrap_or_default(),
                        l["date"].as_str().unwrap_or_default(),
                        l["amount"],
                        l["currency"].as_str().unwrap_or_default(),
                        l["naics_code"].as_str().unwrap_or_default()
                    );
                }
                Req {
                    name: "CSV import (200 lines)",
                    method: "POST",
                    path: "/api/v1/imports".into(),
                    content_type: Some("text/csv"),
                    body: csv.into_bytes(),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixes_follow_their_weights() {
        let known = std::sync::Arc::new(Known {
            transaction_ids: vec!["T 1".into()],
            supplier_ids: vec!["S/1".into()],
            years: vec![2024],
        });
        let mut g = Generator::new(Scenario::ReadHeavy, known.clone(), 7, "LT-x");
        let mut counts = std::collections::HashMap::new();
        for _ in 0..10_000 {
            let r = g.next_request();
            assert_eq!(r.method, "GET");
            *counts.entry(r.name).or_insert(0) += 1;
        }
        let share = |n: &str| counts[n] as f64 / 10_000.0;
        assert!((share("transaction detail") - 0.30).abs() < 0.02);
        assert!((share("by month") - 0.10).abs() < 0.02);
        let mut g = Generator::new(Scenario::Mixed, known, 7, "LT-x");
        let reqs: Vec<_> = (0..2000).map(|_| g.next_request()).collect();
        assert!(reqs.iter().any(|r| r.path == "/api/v1/transactions/T%201"));
        assert!(reqs.iter().any(|r| r.path == "/api/v1/suppliers/S%2F1"));
        let create = reqs
            .iter()
            .find(|r| r.name == "create transactions (10)")
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&create.body).unwrap();
        assert_eq!(body["transactions"].as_array().unwrap().len(), 10);
        assert!(
            body["transactions"][0]["transaction_id"]
                .as_str()
                .unwrap()
                .starts_with("LT-x-")
        );
        assert!(reqs.iter().any(|r| r.content_type == Some("text/csv")));
    }

    #[test]
    fn scenario_names() {
        for (n, s) in Scenario::ALL {
            assert_eq!(Scenario::parse(n).unwrap(), s);
            assert_eq!(s.name(), n);
        }
        assert!(
            Scenario::parse("chaos")
                .unwrap_err()
                .contains("mixed, read-heavy")
        );
    }
}
