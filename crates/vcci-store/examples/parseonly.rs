use std::time::Instant;
use vcci_core::csv::CsvScanner;
use vcci_core::line::{Field, N_FIELDS};
fn main() {
    let path = std::env::args().nth(1).unwrap();
    let cat = vcci_core::catalog();
    let org = vcci_store::Org {
        id: vcci_store::OrgId(1),
        name: "x".into(),
        epa_version: vcci_core::EpaVersion::V1_3_0,
        default_currency: vcci_core::Currency::USD,
        flights_with_rf: true,
    };
    let profiles = std::collections::HashMap::new();
    let t = Instant::now();
    let f = std::fs::File::open(path).unwrap();
    let mut s = CsvScanner::new(std::io::BufReader::with_capacity(1 << 20, f), 1 << 20);
    let h = s.next_record().unwrap().unwrap().unwrap();
    let mut cols = [None; N_FIELDS];
    for i in 0..h.len() {
        if let Some(f) = Field::from_header(std::str::from_utf8(h.field(i).unwrap()).unwrap()) {
            cols[f as usize] = Some(i);
        }
    }
    let (mut n, mut ok, mut sum) = (0, 0, 0.0);
    let t_scan = Instant::now();
    while let Some(r) = s.next_record().unwrap() {
        let r = r.unwrap();
        n += 1;
        let mut v = [None; N_FIELDS];
        for (f, c) in cols.iter().enumerate() {
            if let Some(c) = c {
                v[f] = Some(std::str::from_utf8(r.field(*c).unwrap()).unwrap());
            }
        }
        if std::env::var("SCANONLY").is_ok() {
            continue;
        }
        let line = vcci_core::Line::parse(&v, true).unwrap();
        if let Ok(p) = vcci_store::write::prepare(cat, &org, line, &profiles, Some(n), None) {
            ok += 1;
            sum += p.emission.co2e_kg;
        }
    }
    let el = t_scan.elapsed().as_secs_f64();
    println!(
        "{n} lines, {ok} ok, {:.0} lines/s (sum {sum:.1}), total {:.2}s",
        n as f64 / el,
        t.elapsed().as_secs_f64()
    );
}
