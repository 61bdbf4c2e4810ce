//! The streaming import: messy but valid files, broken files with exact rejects output,
//! idempotence, updates, memory bounds and read models.

mod common;

use std::io::Read;

use common::{close, store};
use vcci_store::import::{ImportError, ImportOptions};
use vcci_store::model::reports::DateRange;

#[test]
fn messy_but_valid_exports_are_accepted() {
    let t = store();
    let org = t.org("acme");
    // BOM, CRLF, header names in any case and order, quoted commas and newlines, doubled
    // quotes, lower-case currency, a credit note.
    let csv = "\u{FEFF}Amount,TRANSACTION_ID,Currency, Date ,naics_code,Description,Extra\r\n\
               1000,t1,usd,2022-03-01,334111,\"Laptops, 10 units\",x\r\n\
               -500,t2,USD,2022-03-02,334111,\"Credit note\r\nfor returned \"\"laptop\"\"\",y\r\n\
               1000,t3,eur,2023-03-15,334111,EUR invoice,z\r\n";
    let (r, rejects) = t.import(&org, csv);
    assert_eq!(rejects, "line,column,error,original\n");
    assert_eq!((r.lines_read, r.inserted, r.rejected), (3, 3, 0));
    assert_eq!(r.ignored_columns, ["Extra"]);
    let db = t.store.connect().unwrap();
    let t2 = db.get_line(org.id, "t2").unwrap().unwrap();
    assert_eq!(
        t2.description.as_deref(),
        Some("Credit note\r\nfor returned \"laptop\"")
    );
    close(t2.emission.co2e_kg, -29.0);
    // 58 - 29 + 1000/0.9245 × 292.655/304.702 × 0.058
    let s = db.summary(org.id, DateRange::default(), None).unwrap();
    close(s.total_co2e_kg, 58.0 - 29.0 + 60.256_197_475_500_97);
    assert_eq!(s.transaction_count, 3);
    t.assert_read_models(&org);
}

#[test]
fn broken_lines_are_rejected_with_line_column_and_reason() {
    let t = store();
    let org = t.org("acme");
    let mut csv = b"transaction_id,date,amount,currency,naics_code,description\n\
ok1,2022-01-01,100,USD,484121,fine\n\
bad1,2022-13-01,100,USD,484121,bad date\n\
bad2,2022-01-01,abc,USD,484121,wrong type\n\
bad3,2022-01-01,\"1,234.50\",USD,484121,thousands\n\
bad4,2022-01-01,100,XYZ,484121,bad currency\n\
bad5,2022-01-01,100,PLN,484121,no fx\n\
bad6,2022-01-01,100,USD,999999,unknown naics\n\
bad7,2022-01-01,100,USD\n\
bad8,2022-01-01,100,USD,484121,caf\xe9 latin-1\n\
bad9,2022-01-01,,USD,484121,no amount\n\
ok1,2022-01-02,200,USD,484121,dup\n\
,2022-01-01,100,USD,484121,no id\n\
ok2,2022-01-01,100,usd,484121,\"multi\nline\"\n\
bad10,2009-06-01,100,EUR,484121,before fx table\n\
bad11,2022-01-01,100,USD,484121,\"never closed\n"
        .to_vec();
    csv.extend_from_slice(b"tail,2022-01-01,1,USD,484121,x\n");
    let (r, rejects) = t.import_with(&org, &csv[..], &ImportOptions::default());
    let r = r.unwrap();
    assert_eq!(
        rejects,
        "line,column,error,original\n\
3,date,date: '2022-13-01' is not a valid calendar date,\"bad1,2022-13-01,100,USD,484121,bad date\"\n\
4,amount,amount: 'abc' is not a number,\"bad2,2022-01-01,abc,USD,484121,wrong type\"\n\
5,amount,\"amount: '1,234.50' contains a comma; thousands separators and decimal commas are ambiguous, write 1234.50\",\"bad3,2022-01-01,\"\"1,234.50\"\",USD,484121,thousands\"\n\
6,currency,currency: 'XYZ' is not an ISO 4217 currency code,\"bad4,2022-01-01,100,XYZ,484121,bad currency\"\n\
7,currency,\"currency: no exchange rate for PLN; rates exist for USD and AUD, BRL, CAD, CHF, CNY, DKK, EUR, GBP, HKD, INR, JPY, KRW, MXN, MYR, NOK, NZD, SEK, SGD, THB, TWD, ZAR\",\"bad5,2022-01-01,100,PLN,484121,no fx\"\n\
8,naics_code,naics_code: NAICS 999999 has no factor in epa-supply-chain 1.3.0,\"bad6,2022-01-01,100,USD,999999,unknown naics\"\n\
9,,\"expected 6 fields, found 4\",\"bad7,2022-01-01,100,USD\"\n\
10,description,description: is not valid UTF-8 (at byte 3),\"bad8,2022-01-01,100,USD,484121,caf\u{FFFD} latin-1\"\n\
11,amount,amount: a line needs an amount (spend) or a quantity (activity),\"bad9,2022-01-01,,USD,484121,no amount\"\n\
12,transaction_id,transaction_id: 'ok1' already appears on line 2 of this file,\"ok1,2022-01-02,200,USD,484121,dup\"\n\
13,transaction_id,transaction_id: is required,\",2022-01-01,100,USD,484121,no id\"\n\
16,date,date: the EUR FX table starts in 2010; year 2009 is before it,\"bad10,2009-06-01,100,EUR,484121,before fx table\"\n\
17,,quoted field is not closed before the end of the file,\"bad11,2022-01-01,100,USD,484121,\"\"never closed\ntail,2022-01-01,1,USD,484121,x\"\n"
    );
    assert_eq!((r.lines_read, r.inserted, r.rejected), (15, 2, 13));
    let db = t.store.connect().unwrap();
    // The first ok1 was kept; its duplicate did not overwrite it.
    close(
        db.get_line(org.id, "ok1")
            .unwrap()
            .unwrap()
            .emission
            .co2e_kg,
        59.5,
    );
    assert_eq!(
        db.get_line(org.id, "ok2")
            .unwrap()
            .unwrap()
            .description
            .as_deref(),
        Some("multi\nline")
    );
    t.assert_read_models(&org);
}

#[test]
fn lines_written_out_of_file_order_keep_the_outcomes_of_file_order() {
    // Dates fall through the file, so a writer that writes a batch in date order (SQLite)
    // meets its lines in the reverse of the file's order; the repeat of t010 on the last line
    // has the earliest date of all. It must still be the duplicate, and the first t010 kept.
    let t = store();
    let org = t.org("acme");
    let mut csv = String::from("transaction_id,date,amount,currency,naics_code\n");
    for i in 0..100 {
        csv += &format!(
            "t{i:03},2023-{:02}-{:02},{},USD,484121\n",
            12 - i / 10,
            28 - (i % 10) * 2,
            100 + i
        );
    }
    csv += "t010,2022-01-01,999,USD,484121\n";
    let (r, rejects) = t.import(&org, &csv);
    assert_eq!((r.lines_read, r.inserted, r.rejected), (101, 100, 1));
    assert!(
        rejects.contains(
            "102,transaction_id,transaction_id: 't010' already appears on line 12 of this file"
        ),
        "{rejects}"
    );
    let line = t
        .store
        .connect()
        .unwrap()
        .get_line(org.id, "t010")
        .unwrap()
        .unwrap();
    assert_eq!(
        (line.date.as_str(), line.amount),
        ("2023-11-28", Some(110.0))
    );
    t.assert_read_models(&org);
}

#[test]
fn file_level_problems_import_nothing() {
    let t = store();
    let org = t.org("acme");
    let err = |csv: &[u8]| match t.import_with(&org, csv, &ImportOptions::default()).0 {
        Err(ImportError::File(m)) => m,
        other => panic!("expected a file error, got {other:?}"),
    };
    assert_eq!(err(b""), "the file is empty: expected a header line");
    assert_eq!(
        err(b"transaction_id,amount\nt1,5\n"),
        "missing required column(s): date"
    );
    assert_eq!(
        err(b"date,description\n2022-01-01,x\n"),
        "missing required column(s): transaction_id, amount or quantity"
    );
    assert_eq!(
        err(b"transaction_id,date,amount,Amount\n"),
        "column 'amount' appears twice (columns 3 and 4)"
    );
    assert_eq!(t.store.connect().unwrap().line_count(org.id).unwrap(), 0);
    // A header alone is a valid, empty import.
    let (r, _) = t.import(&org, "transaction_id,date,amount\n");
    assert_eq!((r.lines_read, r.inserted), (0, 0));
}

/// A reader that produces `head`, then `filler` bytes of 'x', then `tail`, without ever
/// holding the filler in memory.
struct HugeField {
    head: std::io::Cursor<Vec<u8>>,
    filler_left: usize,
    tail: std::io::Cursor<Vec<u8>>,
}

impl Read for HugeField {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.head.read(buf)?;
        if n > 0 {
            return Ok(n);
        }
        if self.filler_left > 0 {
            let n = buf.len().min(self.filler_left);
            buf[..n].fill(b'x');
            self.filler_left -= n;
            return Ok(n);
        }
        self.tail.read(buf)
    }
}

fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("VmHWM:")
                .map(|v| v.trim().trim_end_matches(" kB").trim().parse().unwrap_or(0))
        })
        .unwrap_or(0)
}

#[test]
fn a_100_mb_field_is_rejected_without_being_buffered() {
    let t = store();
    let org = t.org("acme");
    let input = HugeField {
        head: std::io::Cursor::new(
            b"transaction_id,date,amount,naics_code,description\nbig,2022-01-01,1,484121,\""
                .to_vec(),
        ),
        filler_left: 100 << 20,
        tail: std::io::Cursor::new(b"\"\nok,2022-01-01,10,484121,after\n".to_vec()),
    };
    let before = peak_rss_kb();
    let (r, rejects) = t.import_with(&org, input, &ImportOptions::default());
    let r = r.unwrap();
    let grew_mb = (peak_rss_kb().saturating_sub(before)) / 1024;
    assert!(
        grew_mb < 64,
        "peak RSS grew by {grew_mb} MB while importing a 100 MB field"
    );
    assert_eq!((r.lines_read, r.inserted, r.rejected), (2, 1, 1));
    let row = rejects.lines().nth(1).unwrap();
    assert!(
        row.starts_with(
            "2,,record is longer than the limit of 1048576 bytes,\"big,2022-01-01,1,484121,\"\"xxx"
        ),
        "{}",
        &row[..120]
    );
    assert!(row.len() < 1200, "only the start of the record is kept");
    close(
        t.store
            .connect()
            .unwrap()
            .get_line(org.id, "ok")
            .unwrap()
            .unwrap()
            .emission
            .co2e_kg,
        5.95,
    );
}

fn demo_csv(lines: usize) -> (String, String) {
    let spec = vcci_store::demo::DemoSpec {
        suppliers: 200,
        lines,
        ..Default::default()
    };
    let (mut s, mut t) = (Vec::new(), Vec::new());
    vcci_store::demo::generate(&spec, &mut s, &mut t).unwrap();
    (String::from_utf8(s).unwrap(), String::from_utf8(t).unwrap())
}

#[test]
fn reimporting_the_same_file_changes_nothing() {
    let t = store();
    let org = t.org("acme");
    let (suppliers, lines) = demo_csv(5000);
    t.import_suppliers(&org, &suppliers);
    let (first, rejects) = t.import(&org, &lines);
    assert_eq!(rejects.lines().count(), 1, "{rejects}");
    assert_eq!(first.inserted, 5000);
    let db = t.store.connect().unwrap();
    let before = db.summary(org.id, DateRange::default(), None).unwrap();
    let (second, _) = t.import(&org, &lines);
    assert_eq!(
        (
            second.inserted,
            second.updated,
            second.unchanged,
            second.rejected
        ),
        (0, 0, 5000, 0)
    );
    assert_eq!(
        db.summary(org.id, DateRange::default(), None).unwrap(),
        before
    );
    assert_eq!(db.line_count(org.id).unwrap(), 5000);
    t.assert_read_models(&org);
}

#[test]
fn changed_lines_replace_their_old_contribution() {
    let t = store();
    let org = t.org("acme");
    t.import(&org, "transaction_id,date,amount,naics_code,supplier_id\na,2022-01-10,1000,484121,S1\nb,2022-02-10,1000,484121,S1\n");
    // a moves to another month, supplier and amount; c is new.
    let (r, _) = t.import(&org, "transaction_id,date,amount,naics_code,supplier_id\na,2022-03-10,2000,484121,S2\nb,2022-02-10,1000,484121,S1\nc,2022-03-11,10,484121,S2\n");
    assert_eq!((r.inserted, r.updated, r.unchanged), (1, 1, 1));
    let db = t.store.connect().unwrap();
    let months = db.by_month(org.id, DateRange::default()).unwrap();
    let got: Vec<(String, f64)> = months
        .iter()
        .map(|m| (m.month.clone(), m.co2e_kg))
        .collect();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].0, "2022-02");
    close(got[0].1, 595.0);
    close(got[1].1, 1190.0 + 5.95);
    let sup = db.by_supplier(org.id, DateRange::default(), 10).unwrap();
    assert_eq!(sup[0].supplier_id.as_deref(), Some("S2"));
    close(sup[0].co2e_kg, 1195.95);
    close(sup[1].co2e_kg, 595.0);
    t.assert_read_models(&org);
}

#[test]
fn organizations_are_isolated() {
    let t = store();
    let (a, b) = (t.org("a"), t.org("b"));
    t.import(
        &a,
        "transaction_id,date,amount,naics_code\nsame,2022-01-01,1000,484121\n",
    );
    t.import(
        &b,
        "transaction_id,date,amount,naics_code\nsame,2022-01-01,10,484121\n",
    );
    let db = t.store.connect().unwrap();
    close(
        db.get_line(a.id, "same").unwrap().unwrap().emission.co2e_kg,
        595.0,
    );
    close(
        db.get_line(b.id, "same").unwrap().unwrap().emission.co2e_kg,
        5.95,
    );
    close(
        db.summary(a.id, DateRange::default(), None)
            .unwrap()
            .total_co2e_kg,
        595.0,
    );
    assert!(db.get_line(a.id, "other").unwrap().is_none());
}

#[test]
fn supplier_intensities_recalculate_their_lines() {
    let t = store();
    let org = t.org("acme");
    t.import(&org, "transaction_id,date,amount,currency,supplier_id,naics_code\nx,2024-05-01,500,GBP,ACME,484121\ny,2024-05-02,100,USD,OTHER,484121\n");
    let db = t.store.connect().unwrap();
    assert_eq!(
        db.get_line(org.id, "x").unwrap().unwrap().emission.method,
        vcci_core::Method::SpendBased
    );
    let (r, rejects) = t.import_suppliers(
        &org,
        "supplier_id,name,naics_code,intensity_kg_per_usd,intensity_year,intensity_source\n\
         ACME,Acme Freight,484121,0.25,2023,CDP 2024\n\
         BAD,Bad,12,-1,x,\n",
    );
    assert_eq!((r.inserted, r.rejected), (1, 1));
    assert!(rejects.contains("3,naics_code,naics_code: '12' is not a six-digit NAICS-2017 code; intensity_kg_per_usd: '-1' is negative; intensity_year: 'x' is not a year"), "{rejects}");
    let x = db.get_line(org.id, "x").unwrap().unwrap();
    // 500 / 0.7824 × 304.702/313.689 × 0.25
    close(x.emission.co2e_kg, 155.187_660_598_362_3);
    assert_eq!(x.emission.method, vcci_core::Method::SupplierSpecific);
    assert_eq!(
        (
            &*x.emission.factor.set,
            &*x.emission.factor.key,
            &*x.emission.factor.version
        ),
        ("supplier", "ACME", "2023")
    );
    let detail = db.get_supplier(org.id, "ACME").unwrap().unwrap();
    close(detail.emissions.co2e_kg, 155.187_660_598_362_3);
    assert_eq!(detail.emissions.transaction_count, 1);
    t.assert_read_models(&org);
}

#[test]
fn deleting_a_line_removes_its_contribution() {
    let t = store();
    let org = t.org("acme");
    t.import(&org, "transaction_id,date,amount,naics_code\na,2022-01-01,1000,484121\nb,2022-01-01,1000,334111\n");
    let mut db = t.store.connect().unwrap();
    assert!(
        db.delete_line(org.id, "a", &vcci_store::Actor::system("test"))
            .unwrap()
    );
    assert!(
        !db.delete_line(org.id, "a", &vcci_store::Actor::system("test"))
            .unwrap()
    );
    let s = db.summary(org.id, DateRange::default(), None).unwrap();
    close(s.total_co2e_kg, 58.0);
    assert_eq!(
        s.by_category.iter().map(|c| c.category).collect::<Vec<_>>(),
        [1]
    );
    assert!(s.categories_without_data.contains(&4));
    t.assert_read_models(&org);
}

#[test]
fn activity_lines_import_with_unit_conversion() {
    let t = store();
    let org = t.org("acme");
    let (r, rejects) = t.import(
        &org,
        "transaction_id,date,quantity,unit,activity_id\n\
         f,2024-03-01,500,t.km,freighting-goods/hgv-all-diesel/all-hgvs/average-laden/tonne.km\n\
         h,2024-03-01,3,nights,hotel-stay/hotel-stay/uk/room-per-night\n\
         w,2024-03-01,2500,kg,waste-disposal/refuse/organic-food-and-drink-waste/landfill/tonnes\n\
         bad,2024-03-01,5,kg,freighting-goods/hgv-all-diesel/all-hgvs/average-laden/tonne.km\n",
    );
    assert_eq!((r.inserted, r.rejected), (3, 1));
    assert!(
        rejects.contains(
            "5,unit,unit: cannot convert kg (mass) to tonne.km (freight distance (tonne.km))"
        ),
        "{rejects}"
    );
    let db = t.store.connect().unwrap();
    let s = db.summary(org.id, DateRange::default(), None).unwrap();
    close(s.total_co2e_kg, 48.76 + 31.2 + 1_750.524_025);
    let cats: Vec<(u8, i64)> = s
        .by_category
        .iter()
        .map(|c| (c.category, c.transaction_count))
        .collect();
    assert_eq!(cats, [(4, 1), (5, 1), (6, 1)]);
    let w = db.get_line(org.id, "w").unwrap().unwrap();
    let u = w.emission.conversions.unit.unwrap();
    assert_eq!(
        (u.from.as_str(), u.to.as_str(), u.factor, u.converted),
        ("kg", "tonnes", 0.001, 2.5)
    );
}

#[test]
fn a_file_of_mostly_bad_lines_streams_through_small_batches() {
    let t = store();
    let org = t.org("acme");
    let mut csv = String::from("transaction_id,date,amount,naics_code\n");
    for i in 0..30_000 {
        if i % 1000 == 0 {
            csv += &format!("ok{i},2022-01-01,10,484121\n");
        } else {
            csv += &format!("bad{i},2022-01-01,NaN,484121\n");
        }
    }
    let opts = ImportOptions {
        batch_size: 500,
        commit_lines: 2000,
        ..ImportOptions::default()
    };
    let (r, rejects) = t.import_with(&org, csv.as_bytes(), &opts);
    let r = r.unwrap();
    assert_eq!((r.lines_read, r.inserted, r.rejected), (30_000, 30, 29_970));
    let rows: Vec<&str> = rejects.lines().skip(1).collect();
    assert_eq!(rows.len(), 29_970);
    // In file order, whatever the batching.
    assert!(
        rows.windows(2)
            .all(|w| w[0].split(',').next().unwrap().parse::<u64>().unwrap()
                < w[1].split(',').next().unwrap().parse::<u64>().unwrap())
    );
    assert_eq!(
        rows[0],
        "3,amount,amount: 'NaN' is not a number,\"bad1,2022-01-01,NaN,484121\""
    );
    t.assert_read_models(&org);
}

#[test]
fn chunked_inserts_fall_back_line_by_line_on_existing_and_duplicate_ids() {
    let t = store();
    let org = t.org("acme");
    let line = |i: usize, amount: u32| format!("id{i:04},2022-01-01,{amount},484121\n");
    let mut first = String::from("transaction_id,date,amount,naics_code\n");
    for i in 0..40 {
        first += &line(i, 100);
    }
    t.import(&org, &first);
    // 200 lines: ids 0..40 exist (id 20 changed), id 0100 appears twice, the rest are new.
    let mut second = String::from("transaction_id,date,amount,naics_code\n");
    for i in 0..200 {
        second += &line(i, if i == 20 { 200 } else { 100 });
        if i == 150 {
            second += &line(100, 100);
        }
    }
    let (r, rejects) = t.import(&org, &second);
    assert_eq!(
        (r.inserted, r.updated, r.unchanged, r.rejected),
        (160, 1, 39, 1)
    );
    assert_eq!(
        rejects.lines().nth(1).unwrap(),
        "153,transaction_id,transaction_id: 'id0100' already appears on line 102 of this file,\"id0100,2022-01-01,100,484121\""
    );
    let db = t.store.connect().unwrap();
    assert_eq!(db.line_count(org.id).unwrap(), 200);
    close(
        db.get_line(org.id, "id0020")
            .unwrap()
            .unwrap()
            .emission
            .co2e_kg,
        119.0,
    );
    t.assert_read_models(&org);
}

#[test]
fn recalculation_reproduces_stored_lines_and_follows_a_pinned_release() {
    let t = store();
    let org = t.org("acme");
    let (suppliers, lines) = demo_csv(3000);
    t.import_suppliers(&org, &suppliers);
    t.import(&org, &lines);
    t.import(&org, "transaction_id,date,amount,naics_code,supplier_name,category,price_basis\nx,2022-05-01,1000,484121,Named Only,9,producer\ny,2022-05-01,1000,484121,,,\n");
    let mut db = t.store.connect().unwrap();
    // Every stored line decodes back to the same line and result: nothing changes.
    let r = db
        .recalculate(
            vcci_core::catalog(),
            &org,
            &org,
            &vcci_store::Actor::system("test"),
        )
        .unwrap();
    assert_eq!((r.changed, r.errors.len(), r.categories.len()), (0, 0, 0));
    // Pinning EPA v1.2 recalculates spend lines: 484121 is 1.115 kg/2021 USD there.
    let v12 = vcci_store::Org {
        epa_version: vcci_core::EpaVersion::V1_2,
        ..org.clone()
    };
    let r = db
        .recalculate(
            vcci_core::catalog(),
            &org,
            &v12,
            &vcci_store::Actor::system("test"),
        )
        .unwrap();
    assert!(r.changed > 2000, "{}", r.changed);
    assert!(!r.categories.is_empty());
    assert!(
        r.categories
            .iter()
            .all(|c| c.lines_before == c.lines_after && c.co2e_kg_before != c.co2e_kg_after)
    );
    let y = db.get_line(org.id, "y").unwrap().unwrap();
    close(y.emission.co2e_kg, 1000.0 * 270.970 / 292.655 * 1.115);
    assert_eq!(
        (&*y.emission.factor.version, &*y.emission.factor.unit),
        ("1.2", "kg CO2e/2021 USD, purchaser price")
    );
    let x = db.get_line(org.id, "x").unwrap().unwrap();
    assert_eq!(
        (
            x.supplier_id.as_deref(),
            x.supplier_name.as_deref(),
            x.emission.category
        ),
        (Some("Named Only"), Some("Named Only"), 9)
    );
    assert_eq!(
        x.emission.conversions.spend.unwrap().price_basis.as_deref(),
        Some("without_margins")
    );
    t.assert_read_models(&org);
}

#[test]
fn several_writers_import_exactly_what_one_writer_does() {
    // Duplicates across batches, bad lines, updates of stored lines, small batches: the
    // outcome, the rejects file and the read models are the same with one writer or one
    // per write bucket (PostgreSQL; SQLite always has one).
    let mut csv = String::from("transaction_id,date,amount,naics_code\n");
    for i in 0..6_000 {
        match i % 10 {
            3 => csv += &format!("bad{i},2023-02-30,10,484121\n"),
            7 => csv += &format!("L{:05},2023-03-01,99,484121\n", i - 505),
            _ => {
                csv += &format!(
                    "L{i:05},{}-0{}-1{},{i}.5,484121\n",
                    2022 + i % 3,
                    1 + i % 9,
                    i % 10
                )
            }
        }
    }
    let opts = |writers| ImportOptions {
        batch_size: 250,
        commit_lines: 1_000,
        writers: Some(writers),
        ..ImportOptions::default()
    };
    let mut results = Vec::new();
    for writers in [1, 2] {
        let t = store();
        let org = t.org("acme");
        let (first, _) = t.import_with(
            &org,
            "transaction_id,date,amount,naics_code\nL00042,2021-05-05,1,484121\n".as_bytes(),
            &opts(1),
        );
        assert_eq!(first.unwrap().inserted, 1);
        let (r, rejects) = t.import_with(&org, csv.as_bytes(), &opts(writers));
        let mut r = r.unwrap();
        r.seconds = 0.0;
        t.assert_read_models(&org);
        let db = t.store.connect().unwrap();
        let s = db.summary(org.id, Default::default(), None).unwrap();
        results.push((r, rejects, s.transaction_count, s.total_co2e_kg));
    }
    assert_eq!(results[0].0.rejected, 1_150, "{:?}", results[0].0);
    assert_eq!(results[0].0.updated, 1, "L00042 was stored before");
    assert_eq!(results[0], results[1]);
}

#[test]
fn a_first_load_in_bulk_imports_exactly_what_a_progressive_one_does() {
    // An organization's first load (PostgreSQL: one transaction, each year's partition built
    // apart and attached; SQLite ignores the option): the same outcome, rejects file, read
    // models and lines as an import that commits as it goes, with duplicates within a batch
    // and across batches, bad lines, several years; and a re-import of the file after it
    // finds every line unchanged.
    let mut csv = String::from("transaction_id,date,amount,naics_code,supplier_id\n");
    for i in 0..6_000 {
        match i % 10 {
            3 => csv += &format!("bad{i},2023-02-30,10,484121,S1\n"),
            7 if i > 505 => csv += &format!("L{:05},2023-03-01,99,484121,S2\n", i - 505),
            _ => {
                csv += &format!(
                    "L{i:05},{}-0{}-1{},{i}.5,484121,S{}\n",
                    2021 + i % 4,
                    1 + i % 9,
                    i % 10,
                    i % 7
                )
            }
        }
        if i % 100 == 50 {
            csv += &format!("L{:05},2024-01-01,5,484121,S3\n", i - 1);
        }
    }
    let opts = |bulk| ImportOptions {
        batch_size: 250,
        commit_lines: 1_000,
        first_load_in_bulk: bulk,
        ..ImportOptions::default()
    };
    let mut results = Vec::new();
    for bulk in [false, true] {
        let t = store();
        let org = t.org("acme");
        let (r, rejects) = t.import_with(&org, csv.as_bytes(), &opts(bulk));
        let mut r = r.unwrap();
        r.seconds = 0.0;
        r.import_id = 0;
        t.assert_read_models(&org);
        let db = t.store.connect().unwrap();
        let s = db.summary(org.id, Default::default(), None).unwrap();
        let months = db.by_month(org.id, Default::default()).unwrap();
        let l = db.get_line(org.id, "L00049").unwrap().unwrap();
        let (again, again_rejects) = t.import_with(&org, csv.as_bytes(), &opts(bulk));
        let again = again.unwrap();
        assert_eq!(
            (again.inserted, again.updated, again.unchanged),
            (0, 0, r.inserted)
        );
        // Not assert_eq!: a failure would print two files of rejects.
        assert!(again_rejects == rejects, "the re-import's rejects differ");
        t.assert_read_models(&org);
        results.push((
            r,
            rejects,
            s.transaction_count,
            s.total_co2e_kg,
            months.len(),
            l.date,
            l.emission.co2e_kg,
        ));
    }
    // 600 bad dates, 550 duplicates ~two batches later, 60 a line later.
    assert_eq!(results[0].0.rejected, 1_210, "{:?}", results[0].0);
    assert_eq!(results[0].0.inserted, 6_000 - 600 - 550);
    assert!(
        results[0]
            .1
            .contains("'L00049' already appears on line 51 of this file"),
        "{}",
        results[0].1
    );
    assert_eq!(results[0], results[1]);
}

#[test]
fn capex_and_energy_lines_survive_import_and_recalculation() {
    let t = store();
    let org = t.org("acme");
    let (r, rejects) = t.import(
        &org,
        "transaction_id,date,amount,currency,naics_code,capex,quantity,unit,activity_id\n\
         c1,2022-06-30,1000,USD,334111,true,,,\n\
         c2,2022-06-30,1000,USD,334111,false,,,\n\
         c3,2022-06-30,1000,USD,334111,perhaps,,,\n\
         e1,2024-02-10,,,,,100000,kWh,uk-electricity/electricity-generated/electricity-uk/kwh\n\
         e2,2024-02-10,,,,,10,kg,refrigerant-and-other/kyoto-protocol-products/methane/emissions-including-only-kyoto-products/kg\n",
    );
    assert_eq!((r.inserted, r.rejected), (3, 2), "{rejects}");
    assert!(
        rejects.contains("4,capex,capex: 'perhaps' is not true or false"),
        "{rejects}"
    );
    assert!(rejects.contains("6,activity_id,\"activity_id: 'refrigerant-and-other/kyoto-protocol-products/methane/emissions-including-only-kyoto-products/kg' is a Scope 1 factor (Refrigerant & other)"), "{rejects}");
    let mut db = t.store.connect().unwrap();
    let c1 = db.get_line(org.id, "c1").unwrap().unwrap();
    assert!(c1.capex);
    assert_eq!(c1.emission.category, 2);
    assert_eq!(
        db.get_line(org.id, "c2")
            .unwrap()
            .unwrap()
            .emission
            .category,
        1
    );
    let e1 = db.get_line(org.id, "e1").unwrap().unwrap();
    close(e1.emission.co2e_kg, 6_817.0);
    close(e1.emission.scope_1_2.unwrap().co2e_kg, 20_705.0);
    // Stored lines decode back to the same lines and results.
    let rc = db
        .recalculate(
            vcci_core::catalog(),
            &org,
            &org,
            &vcci_store::Actor::system("test"),
        )
        .unwrap();
    assert_eq!(
        (rc.changed, rc.errors.len(), rc.categories.len()),
        (0, 0, 0)
    );
    t.assert_read_models(&org);
}

/// A supplier's intensity is a history by year: a line uses its own year's value, another
/// year's as a recorded fallback, and adding or removing a year changes only the lines that
/// used it.
#[test]
fn supplier_intensities_are_kept_per_year() {
    let t = store();
    let org = t.org("acme");
    let header = "supplier_id,name,naics_code,intensity_kg_per_usd,intensity_year,intensity_source,intensity_boundary,intensity_verified\n";
    let (r, rejects) = t.import_suppliers(
        &org,
        &format!("{header}S,Supplier,484121,0.30,2022,CDP 2023,cradle_to_gate,true\n"),
    );
    assert_eq!((r.inserted, r.rejected), (1, 0), "{rejects}");
    let (r, rejects) = t.import(
        &org,
        "transaction_id,date,amount,currency,supplier_id\n\
         a,2022-05-01,1000000,USD,S\n\
         b,2024-03-01,1000,USD,S\n\
         c,2023-03-01,1000,USD,S\n",
    );
    assert_eq!((r.inserted, r.rejected), (3, 0), "{rejects}");
    let db = t.store.connect().unwrap();
    let kg = |id: &str| db.get_line(org.id, id).unwrap().unwrap().emission;
    // The example: 1,000,000 USD in 2022 at the 2022 value 0.30.
    close(kg("a").co2e_kg, 300_000.0);
    assert_eq!(kg("a").data_quality, 1);
    // 2024 and 2023 lines take the 2022 value: 1,000 × 292.655/313.689 × 0.30 and
    // 1,000 × 292.655/304.702 × 0.30, recorded as another year's.
    close(kg("b").co2e_kg, 279.883_897_745_856_5);
    close(kg("c").co2e_kg, 288.138_902_928_106_8);
    assert!(
        kg("b")
            .fallbacks
            .iter()
            .any(|f| f.code == "intensity_other_year")
    );
    let a_before = kg("a").co2e_kg;

    // A 2024 value (no boundary, so cradle-to-gate, not stated) leaves 2022 alone.
    let (r, _) = t.import_suppliers(&org, &format!("{header}S,Supplier,484121,0.20,2024,,,\n"));
    assert_eq!(r.inserted, 1);
    assert_eq!(kg("a").co2e_kg.to_bits(), a_before.to_bits());
    close(kg("b").co2e_kg, 200.0);
    assert!(
        kg("b")
            .fallbacks
            .iter()
            .any(|f| f.code == "boundary_not_stated")
    );
    // 2023 is a year from both: the earlier value.
    close(kg("c").co2e_kg, 288.138_902_928_106_8);
    let h = db.supplier_intensities(org.id, "S").unwrap().unwrap();
    let years: Vec<_> = h
        .iter()
        .map(|v| {
            (
                v.year,
                v.kg_per_usd,
                v.boundary_stated,
                v.verified,
                v.source.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        years,
        [
            (Some(2022), 0.30, true, true, Some("CDP 2023")),
            (Some(2024), 0.20, false, false, None)
        ]
    );
    // A row without an intensity changes the supplier and keeps the history.
    t.import_suppliers(&org, &format!("{header}S,Supplier Inc,484121,,,,,\n"));
    let s = db.get_supplier(org.id, "S").unwrap().unwrap().supplier;
    assert_eq!((s.name.as_str(), s.intensities.len()), ("Supplier Inc", 2));
    assert_eq!(
        (s.intensity_kg_per_usd, s.intensity_year),
        (Some(0.20), Some(2024))
    );

    // A verified Scope 1+2 value for 2024 makes the 2024 line hybrid: 1,000 × 0.10 from
    // the supplier, the EEIO cradle-to-gate 1,000 × 292.655/313.689 × 0.595 = 555.103 kg,
    // and the upstream share the rest.
    t.import_suppliers(
        &org,
        &format!("{header}S,Supplier Inc,484121,0.10,2024,CDP 2025,scope_1_2,true\n"),
    );
    let b = kg("b");
    assert_eq!(b.method, vcci_core::Method::Hybrid);
    close(b.co2e_kg, 555.103_063_862_615_5);
    let hy = b.supplier_data.as_ref().unwrap().hybrid.as_ref().unwrap();
    close(hy.supplier_scope_1_2_kg, 100.0);
    close(hy.upstream_kg, 455.103_063_862_615_5);
    assert_eq!(&*hy.eeio_factor.key, "484121");
    close(b.gases.as_ref().unwrap().unspecified, b.co2e_kg);
    // Read back as the engine made it, to the bit.
    let line = vcci_core::Line {
        transaction_id: Some("b".into()),
        date: vcci_core::Date::parse("2024-03-01").ok(),
        amount: Some(1000.0),
        currency: Some(vcci_core::Currency::USD),
        supplier_id: Some("S".into()),
        ..Default::default()
    };
    let profiles = db.supplier_profiles(org.id).unwrap();
    let fresh = vcci_core::calculate(
        vcci_core::catalog(),
        org.calc_config(),
        &line,
        profiles.get("S"),
    )
    .unwrap()
    .record(vcci_core::catalog(), &line);
    assert_eq!(b.supplier_data, fresh.supplier_data);
    assert_eq!(b.gases, fresh.gases);
    assert_eq!(b.co2e_kg.to_bits(), fresh.co2e_kg.to_bits());
    assert_eq!(b.data_quality_indicators, fresh.data_quality_indicators);
    t.assert_read_models(&org);

    // Removing the 2022 value: the 2022 line takes the 2024 one (hybrid): the EEIO estimate
    // 1,000,000 × 0.595 = 595,000 kg, of which 1,000,000 × 313.689/292.655 × 0.10 =
    // 107,187.30 kg is the supplier's.
    let mut w = t.store.connect().unwrap();
    assert_eq!(
        w.remove_supplier_intensity(
            vcci_core::catalog(),
            &org,
            "S",
            Some(2022),
            &vcci_store::Actor::system("test")
        )
        .unwrap(),
        Some(2)
    );
    let a = kg("a");
    close(a.co2e_kg, 595_000.0);
    close(
        a.supplier_data
            .unwrap()
            .hybrid
            .unwrap()
            .supplier_scope_1_2_kg,
        107_187.302_455_109_27,
    );
    assert!(a.fallbacks.iter().any(|f| f.code == "intensity_other_year"));
    assert_eq!(
        w.remove_supplier_intensity(
            vcci_core::catalog(),
            &org,
            "S",
            Some(2022),
            &vcci_store::Actor::system("test")
        )
        .unwrap(),
        None
    );
    assert_eq!(
        w.remove_supplier_intensity(
            vcci_core::catalog(),
            &org,
            "S",
            None,
            &vcci_store::Actor::system("test")
        )
        .unwrap(),
        None
    );
    t.assert_read_models(&org);

    // Bad rows name the field; the valid rest is kept.
    let (r, rejects) = t.import_suppliers(
        &org,
        &format!("{header}X,X,,0.1,2024,,scope_3,maybe\nY,Y,,,2024,,cradle_to_gate,\nZ,Z,,0.4,2023,,scope_1_2_3_upstream,no\n"),
    );
    assert_eq!((r.inserted, r.rejected), (1, 2));
    assert!(rejects.contains("intensity_boundary: 'scope_3' is not one of scope_1_2, scope_1_2_3_upstream, cradle_to_gate; intensity_verified: 'maybe' is not true or false"), "{rejects}");
    assert!(
        rejects.contains(
            "intensity_year: describes an intensity, and intensity_kg_per_usd is missing"
        ),
        "{rejects}"
    );
    let z = db.supplier_intensities(org.id, "Z").unwrap().unwrap();
    assert_eq!(z[0].boundary, vcci_core::Boundary::Scope123Upstream);
    // In one file, an undated value and a later row without one: both apply.
    t.import_suppliers(&org, &format!("{header}U,U,,0.5,,,,\nU,U Renamed,,,,,,\n"));
    let u = db.get_supplier(org.id, "U").unwrap().unwrap().supplier;
    assert_eq!((u.name.as_str(), u.intensities.len()), ("U Renamed", 1));
    assert_eq!(
        (u.intensities[0].year, u.intensities[0].kg_per_usd),
        (None, 0.5)
    );
}
