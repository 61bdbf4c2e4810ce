//! Price-year and currency tables: BLS CPI-U annual averages and Federal Reserve annual
//! average exchange rates (units of currency per USD), as shipped in `data/`.

use crate::csv::CsvScanner;
use crate::currency::Currency;

/// A value looked up by year, with the year actually used.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct YearValue {
    pub value: f64,
    /// The year whose value was used: the asked year, or the table's last year when the
    /// asked year is after it (recent data not yet published).
    pub year: u16,
    /// True when `year` differs from the year asked for.
    pub fallback: bool,
}

/// A contiguous run of yearly values.
#[derive(Clone, Debug)]
pub struct YearSeries {
    pub first: u16,
    pub values: Vec<f64>,
}

impl YearSeries {
    pub fn last(&self) -> u16 {
        self.first + self.values.len() as u16 - 1
    }

    /// `Err(first_year)` when `year` is before the table starts.
    #[inline]
    pub fn get(&self, year: u16) -> Result<YearValue, u16> {
        if year < self.first {
            return Err(self.first);
        }
        let i = (year - self.first) as usize;
        match self.values.get(i) {
            Some(&value) => Ok(YearValue {
                value,
                year,
                fallback: false,
            }),
            None => Ok(YearValue {
                value: self.values[self.values.len() - 1],
                year: self.last(),
                fallback: true,
            }),
        }
    }
}

/// US CPI-U (CUUR0000SA0) annual averages.
#[derive(Clone, Debug)]
pub struct CpiTable {
    pub series: YearSeries,
}

/// Annual average FX rates, units of currency per USD.
#[derive(Clone, Debug)]
pub struct FxTable {
    pub rates: Vec<(Currency, YearSeries)>,
}

impl FxTable {
    #[inline]
    pub fn series(&self, c: Currency) -> Option<&YearSeries> {
        self.rates.iter().find(|(k, _)| *k == c).map(|(_, s)| s)
    }

    pub fn currencies(&self) -> impl Iterator<Item = Currency> + '_ {
        self.rates.iter().map(|(c, _)| *c)
    }
}

pub(crate) fn records(text: &str) -> Vec<Vec<String>> {
    let mut s = CsvScanner::new(text.as_bytes(), usize::MAX);
    let mut out = Vec::new();
    while let Some(r) = s.next_record().expect("reading embedded data cannot fail") {
        let r = r.expect("embedded data is well-formed CSV");
        out.push(
            (0..r.len())
                .map(|i| String::from_utf8_lossy(r.field(i).unwrap_or_default()).into_owned())
                .collect(),
        );
    }
    out
}

pub(crate) fn column(header: &[String], name: &str) -> usize {
    header
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("embedded data lacks column {name}"))
}

fn series_from(mut pairs: Vec<(u16, f64)>, what: &str) -> YearSeries {
    pairs.sort_by_key(|p| p.0);
    let first = pairs[0].0;
    for (i, (y, _)) in pairs.iter().enumerate() {
        assert_eq!(*y, first + i as u16, "{what}: years must be contiguous");
    }
    YearSeries {
        first,
        values: pairs.into_iter().map(|p| p.1).collect(),
    }
}

impl CpiTable {
    pub fn parse(text: &str) -> CpiTable {
        let rows = records(text);
        let (y, v) = (column(&rows[0], "year"), column(&rows[0], "cpi_u"));
        let pairs = rows[1..]
            .iter()
            .map(|r| (r[y].parse().expect("year"), r[v].parse().expect("cpi")))
            .collect();
        CpiTable {
            series: series_from(pairs, "CPI"),
        }
    }
}

impl FxTable {
    pub fn parse(text: &str) -> FxTable {
        let rows = records(text);
        let h = &rows[0];
        let (y, c, v) = (
            column(h, "year"),
            column(h, "currency"),
            column(h, "units_per_usd"),
        );
        let mut by: Vec<(Currency, Vec<(u16, f64)>)> = Vec::new();
        for r in &rows[1..] {
            let cur = Currency::parse(&r[c]).expect("currency");
            let pair = (r[y].parse().expect("year"), r[v].parse().expect("rate"));
            match by.iter_mut().find(|(k, _)| *k == cur) {
                Some((_, list)) => list.push(pair),
                None => by.push((cur, vec![pair])),
            }
        }
        by.sort_by_key(|(c, _)| *c);
        FxTable {
            rates: by
                .into_iter()
                .map(|(c, p)| (c, series_from(p, c.as_str())))
                .collect(),
        }
    }
}
