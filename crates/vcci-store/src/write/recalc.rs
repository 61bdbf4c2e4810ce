//! Recalculation: stored lines read back as `Line`s and written again through the same
//! path as any write, so that a changed factor, setting or supplier profile updates exactly
//! the lines whose result changed (and the read models with them).

use std::collections::{BTreeMap, HashMap};

use vcci_core::{Catalog, Currency, Date, Line, LineError, Naics, SupplierProfile, Unit};

use super::{Delta, LineOutcome, LineWriter, NewSuppliers, WriteBatch, prepare};
use crate::codec::{Body, basis_from_code};
use serde_json::json;

use crate::conn::{Arg, Db, Dialect, Tx, args};
use crate::model::audit::{self, Actor, Change, LineDigests};
use crate::model::orgs::{Org, OrgId, bump_generation};
use crate::model::reports::RecordedApart;
use crate::{Result, StoreError};

/// What a recalculation changed.
#[derive(Clone, Debug, PartialEq)]
pub struct Recalculation {
    /// Lines whose result changed.
    pub changed: u64,
    /// Lines that can no longer be calculated: they keep their previous result.
    pub errors: Vec<(String, LineError)>,
    /// Per category whose total or line count changed: before and after.
    pub categories: Vec<CategoryChange>,
    /// Scope 1 and 2 recorded apart, before and after.
    pub scope_1_2_before: RecordedApart,
    pub scope_1_2_after: RecordedApart,
}

/// A category's total and line count before and after a recalculation.
#[derive(Clone, Debug, PartialEq)]
pub struct CategoryChange {
    pub category: u8,
    pub co2e_kg_before: f64,
    pub co2e_kg_after: f64,
    pub lines_before: i64,
    pub lines_after: i64,
}

/// Per category (co2e mg, lines), and the Scope 1 and 2 recorded apart (mg), of `org`.
type Totals = (BTreeMap<u8, (i64, i64)>, (i64, i64));

fn totals(tx: &Tx<'_>, org: OrgId) -> Result<Totals> {
    let mut by_cat = BTreeMap::new();
    let (mut s1, mut s2) = (0, 0);
    for (c, mg, n, a, b) in tx.query(
        "SELECT category, CAST(SUM(co2e_mg) AS BIGINT), CAST(SUM(line_count) AS BIGINT),
           CAST(SUM(scope1_mg) AS BIGINT), CAST(SUM(scope2_mg) AS BIGINT)
         FROM summary_monthly WHERE org_id = ?1 GROUP BY category",
        args![org.0],
        |r| Ok((r.u8(0)?, r.i64(1)?, r.i64(2)?, r.i64(3)?, r.i64(4)?)),
    )? {
        by_cat.insert(c, (mg, n));
        s1 += a;
        s2 += b;
    }
    Ok((by_cat, (s1, s2)))
}

impl Db {
    /// Whether new settings (`after`: an EPA release pinned, a default currency, the RF
    /// choice) would change a closed year of the organization: `Err(PeriodClosed)` naming
    /// the first such year, else Ok. A dry run; callers check before they set.
    pub fn check_settings_change(
        &mut self,
        cat: &'static Catalog,
        before: &Org,
        after: &Org,
    ) -> Result<()> {
        let profiles = self.supplier_profiles(before.id)?;
        let tx = self.conn.begin()?;
        let years = closed_year_changes(&tx, cat, (before, &profiles), (after, &profiles), None)?;
        drop(tx);
        match years.into_iter().next() {
            Some((year, lines)) => Err(StoreError::PeriodClosed {
                year,
                message: format!(
                    "{} ({lines} of its lines would change; a restatement is the way to change disclosed figures)",
                    crate::error::period_closed_message(year)
                ),
            }),
            None => Ok(()),
        }
    }

    /// Recalculates every stored line of `before`'s organization with `after`'s settings
    /// (the EPA release pinned, the default currency, the RF choice: set first when they
    /// differ from `before`'s), the current factors and the supplier profiles, and says what
    /// changed per category. A line that can no longer be calculated keeps its previous
    /// result and is reported. One transaction, with its entry in the audit log
    /// (`settings.changed` or `lines.recalculated`, by `actor`, with the lines' digests).
    /// Closed years keep their lines: callers check `check_settings_change` first.
    pub fn recalculate(
        &mut self,
        cat: &'static Catalog,
        before: &Org,
        after: &Org,
        actor: &Actor,
    ) -> Result<Recalculation> {
        let org = after;
        let profiles = self.supplier_profiles(org.id)?;
        let tx = self.conn.begin_immediate()?;
        super::turns::lock_org(&tx, org.id, None)?;
        let settings = before != after;
        if settings {
            put_settings(&tx, after)?;
        }
        let (before_t, apart_before) = totals(&tx, org.id)?;
        let r = recalculate_tx(&tx, cat, org, &profiles, None, false)?;
        let (after_t, apart_after) = totals(&tx, org.id)?;
        if settings {
            bump_generation(&tx, org.id)?;
        }
        let (action, detail) = if settings {
            let cause = settings_cause(before, after);
            (
                "settings.changed",
                json!({"cause": cause, "settings": settings_json(after), "lines_changed": r.changed}),
            )
        } else {
            (
                "lines.recalculated",
                json!({"settings": settings_json(after), "lines_changed": r.changed}),
            )
        };
        audit::append(
            &tx,
            org.id,
            actor,
            Change::new(action, "", detail).with_lines(&r.digests),
        )?;
        tx.commit()?;
        let (before, after, changed, errors) = (before_t, after_t, r.changed, r.errors);
        let kg = |mg: i64| mg as f64 / 1e6;
        let categories = before
            .keys()
            .chain(after.keys())
            .copied()
            .collect::<std::collections::BTreeSet<u8>>()
            .into_iter()
            .filter_map(|c| {
                let (b, a) = (before.get(&c), after.get(&c));
                (b != a).then(|| {
                    let (b, a) = (
                        b.copied().unwrap_or_default(),
                        a.copied().unwrap_or_default(),
                    );
                    CategoryChange {
                        category: c,
                        co2e_kg_before: kg(b.0),
                        co2e_kg_after: kg(a.0),
                        lines_before: b.1,
                        lines_after: a.1,
                    }
                })
            })
            .collect();
        Ok(Recalculation {
            changed,
            errors,
            categories,
            scope_1_2_before: RecordedApart::from_mg(apart_before.0, apart_before.1),
            scope_1_2_after: RecordedApart::from_mg(apart_after.0, apart_after.1),
        })
    }
}

/// The settings `before` and `after` differ in, in words.
pub fn settings_cause(before: &Org, after: &Org) -> String {
    let mut parts = Vec::new();
    if before.epa_version != after.epa_version {
        parts.push(format!(
            "EPA supply chain {} instead of {}",
            after.epa_version.as_str(),
            before.epa_version.as_str()
        ));
    }
    if before.default_currency != after.default_currency {
        parts.push(format!(
            "default currency {} instead of {}",
            after.default_currency, before.default_currency
        ));
    }
    if before.flights_with_rf != after.flights_with_rf {
        parts.push(format!(
            "flights {} radiative forcing",
            if after.flights_with_rf {
                "with"
            } else {
                "without"
            }
        ));
    }
    parts.join("; ")
}

/// An organization's settings as its audit entries record them.
pub(crate) fn settings_json(org: &Org) -> serde_json::Value {
    json!({
        "epa_version": org.epa_version.as_str(),
        "default_currency": org.default_currency.as_str(),
        "flights_with_rf": org.flights_with_rf,
    })
}

/// Sets `org`'s settings (an EPA release pinned, the default currency, the RF choice) in
/// `tx`, and bumps its settings version (API nodes drop the settings they cached).
pub(crate) fn put_settings(tx: &Tx<'_>, org: &Org) -> Result<()> {
    tx.execute(
        "UPDATE organizations SET epa_version = ?2, default_currency = ?3, flights_with_rf = ?4,
           settings_version = settings_version + 1 WHERE id = ?1",
        args![
            org.id.0,
            org.epa_version.as_str(),
            org.default_currency.as_str(),
            i64::from(org.flights_with_rf)
        ],
    )?;
    Ok(())
}

/// What `recalculate_tx` did.
#[derive(Debug, Default)]
pub(crate) struct Recalculated {
    /// Lines whose result changed.
    pub changed: u64,
    /// Lines that could not be calculated (or, of a closed year, were not written).
    pub errors: Vec<(String, LineError)>,
    /// The audit digests of the lines written.
    pub digests: LineDigests,
}

/// `Db::recalculate` inside a caller's transaction.
pub(crate) fn recalculate_tx(
    tx: &Tx<'_>,
    cat: &'static Catalog,
    org: &Org,
    profiles: &HashMap<String, SupplierProfile>,
    only_suppliers: Option<&[String]>,
    restating: bool,
) -> Result<Recalculated> {
    let mut out = Recalculated::default();
    let mut after = String::new();
    let mut writer = LineWriter::for_conn(tx);
    let classifier = crate::classify::load(tx, org.id)?;
    loop {
        let lines = load_lines(tx, org.id, &after, only_suppliers, None, 5000)?;
        let Some(last) = lines.last() else { break };
        after = last.0.clone();
        let lines = lines.into_iter().map(|(_, l)| l).collect();
        let w = Rewrite {
            org,
            profiles,
            classifier: Some(&classifier),
            restating,
        };
        w.write(tx, cat, &mut writer, lines, &mut out)?;
    }
    Ok(out)
}

/// Stored lines written again through the write path, as `Line`s (a recalculation's page,
/// or lines a review gave a classification).
pub(crate) struct Rewrite<'a> {
    pub org: &'a Org,
    pub profiles: &'a HashMap<String, SupplierProfile>,
    /// Classifies lines without a classification that need one.
    pub classifier: Option<&'a crate::classify::OrgClassifier>,
    pub restating: bool,
}

impl Rewrite<'_> {
    /// Writes `lines` in `tx`: lines whose result changed are updated with the read models,
    /// and counted in `out`; lines that cannot be calculated, or are of a closed year, are
    /// kept as they were and reported in `out.errors`.
    pub(crate) fn write(
        &self,
        tx: &Tx<'_>,
        cat: &'static Catalog,
        writer: &mut LineWriter,
        lines: Vec<Line>,
        out: &mut Recalculated,
    ) -> Result<()> {
        let none = NewSuppliers::new();
        let mut batch = Vec::with_capacity(lines.len());
        for line in lines {
            let id = line.transaction_id.clone().unwrap_or_default();
            match prepare(cat, self.org, line, self.profiles, None, self.classifier) {
                Ok(p) => batch.push(p),
                Err(e) => out.errors.push((id, e)),
            }
        }
        let mut delta = Delta::default();
        let wb = WriteBatch {
            restating: self.restating,
            ..WriteBatch::direct(self.org.id, &batch, &none)
        };
        let outcomes = writer.write(tx, &wb, &mut delta)?;
        delta.flush(tx, self.org.id)?;
        super::record_digests(&mut out.digests, &batch, &outcomes);
        for (p, o) in batch.iter().zip(&outcomes) {
            match o {
                LineOutcome::Updated { .. } => out.changed += 1,
                // A closed year's line keeps the result it was disclosed with.
                LineOutcome::PeriodClosed { year } => out.errors.push((
                    p.id().to_owned(),
                    LineError::new(
                        vcci_core::Field::Date,
                        "period_closed",
                        crate::error::period_closed_message(*year),
                    ),
                )),
                _ => {}
            }
        }
        Ok(())
    }
}

/// What a change would do to the closed years: per closed year, the lines whose result it
/// would change. A dry run, nothing written: the closed years' lines (of `only_suppliers`,
/// if given) are calculated with the settings and profiles `before` and `after`, and a line
/// counts when the two differ (so lines stored by an older version are not counted as
/// changes of their own).
pub(crate) fn closed_year_changes(
    tx: &Tx<'_>,
    cat: &'static Catalog,
    before: (&Org, &HashMap<String, SupplierProfile>),
    after: (&Org, &HashMap<String, SupplierProfile>),
    only_suppliers: Option<&[String]>,
) -> Result<BTreeMap<u16, u64>> {
    let closed = crate::model::periods::closed_years(tx, before.0.id)?;
    let mut out = BTreeMap::new();
    if closed.is_empty() {
        return Ok(out);
    }
    let mut from = String::new();
    let classifier = crate::classify::load(tx, before.0.id)?;
    loop {
        let lines = load_lines(tx, before.0.id, &from, only_suppliers, Some(&closed), 5000)?;
        let Some(last) = lines.last() else { break };
        from = last.0.clone();
        for (_, line) in lines {
            let year = line.date.map_or(0, |d| d.year());
            let a = prepare(
                cat,
                before.0,
                line.clone(),
                before.1,
                None,
                Some(&classifier),
            );
            let b = prepare(cat, after.0, line, after.1, None, Some(&classifier));
            let differs = match (a, b) {
                (Ok(a), Ok(b)) => a.hash != b.hash,
                (Err(a), Err(b)) => a != b,
                _ => true,
            };
            if differs {
                *out.entry(year).or_default() += 1;
            }
        }
    }
    Ok(out)
}

/// Lines as `Line`s again (for recalculation), keyset-paged by transaction_id; of some
/// suppliers only, and of some years only, if given.
pub(crate) fn load_lines(
    tx: &Tx<'_>,
    org: OrgId,
    after: &str,
    only: Option<&[String]>,
    years: Option<&[u16]>,
    limit: i64,
) -> Result<Vec<(String, Line)>> {
    let mut sql = match tx.dialect() {
        Dialect::Sqlite => String::from(
            "SELECT transaction_id, day, supplier_id, body FROM transactions t
             WHERE org_id = ?1 AND transaction_id > ?2",
        ),
        Dialect::Postgres => String::from(
            "SELECT k.transaction_id, t.day, t.supplier_id, t.body FROM transaction_keys k
             JOIN transactions t ON t.org_id = k.org_id AND t.day = k.day AND t.transaction_id = k.transaction_id
             WHERE k.org_id = ?1 AND k.transaction_id > ?2",
        ),
    };
    let mut args: Vec<Arg<'_>> = vec![Arg::Int(org.0), Arg::Text(after), Arg::Int(limit)];
    if let Some(ids) = only {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let marks: Vec<String> = (0..ids.len()).map(|i| format!("?{}", i + 4)).collect();
        sql.push_str(&format!(" AND t.supplier_id IN ({})", marks.join(", ")));
        args.extend(ids.iter().map(|s| Arg::Text(s)));
    }
    if let Some(years) = years {
        let ranges: Vec<String> = years
            .iter()
            .map(|y| {
                let (a, b) = (i64::from(*y) * 10_000, i64::from(*y) * 10_000 + 1231);
                args.push(Arg::Int(a));
                args.push(Arg::Int(b));
                format!("t.day BETWEEN ?{} AND ?{}", args.len() - 1, args.len())
            })
            .collect();
        sql.push_str(&format!(" AND ({})", ranges.join(" OR ")));
    }
    sql.push_str(match tx.dialect() {
        Dialect::Sqlite => " ORDER BY transaction_id LIMIT ?3",
        Dialect::Postgres => " ORDER BY k.transaction_id LIMIT ?3",
    });
    tx.query(&sql, &args, |r| {
        let id = r.string(0)?;
        let line = stored_as_line(id.clone(), r.u32(1)?, r.opt_string(2)?, r.blob(3)?)?;
        Ok((id, line))
    })
}

/// A stored line (its id, day, supplier key and body) as the `Line` it was written from.
pub(crate) fn stored_as_line(
    id: String,
    day: u32,
    supplier_id: Option<String>,
    body: &[u8],
) -> Result<Line> {
    let bad = |m: String| StoreError::corrupt(format!("stored line: {m}"));
    let b = Body::decode(body)?;
    {
        {
            Ok(Line {
                transaction_id: Some(id),
                date: Some(Date::from_yyyymmdd(day).ok_or_else(|| bad("bad day".into()))?),
                // The stored supplier_id is the line's supplier key: its link, else its id,
                // else its name.
                supplier_id: match (b.supplier_id_given, &b.supplier_named_id) {
                    (true, Some(named)) => Some(named.clone()),
                    (true, None) => supplier_id.clone(),
                    (false, _) => None,
                },
                supplier_link: match (b.supplier_id_given, &b.supplier_named_id) {
                    (true, Some(_)) => supplier_id,
                    (true, None) => None,
                    (false, _) => supplier_id.filter(|k| b.supplier_name.as_ref() != Some(k)),
                },
                supplier_name: b.supplier_name,
                description: b.description,
                amount: b.amount,
                currency: b
                    .currency
                    .map(|c| Currency::parse(&c))
                    .transpose()
                    .map_err(bad)?,
                naics: b.naics_code.and_then(Naics::from_code),
                category: b
                    .category_in
                    .and_then(|c| u8::try_from(c).ok())
                    .and_then(vcci_core::Category::new),
                quantity: b.quantity,
                unit: b.unit.map(|u| Unit::parse(&u)).transpose().map_err(bad)?,
                activity_id: b.activity_id,
                country: b.country,
                price_basis: basis_from_code(b.price_basis),
                capex: b.capex,
                product_id: b.product_id,
                gl_account: b.gl_account,
                gl_account_name: b.gl_account_name,
                // The classification the line was calculated with, kept: a recalculation
                // does not reclassify (a rule or a review does, explicitly).
                classification: b
                    .classification
                    .as_deref()
                    .map(serde_json::from_str)
                    .transpose()
                    .map_err(|e| bad(format!("classification: {e}")))?
                    .map(std::sync::Arc::new),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use vcci_core::{Category, Date, Line, Unit};

    use crate::codec::{Body, BodyRef};
    use crate::conn::{Store, args};

    const UK_ELECTRICITY: &str = "uk-electricity/electricity-generated/electricity-uk/kwh";

    /// Rewrites the one stored line as the previous version stored it: booked at `co2e_kg`,
    /// its body without the fields added since (Scope 1/2 apart, upstream parts, indicators,
    /// flags), a content hash that no recalculation matches. Callers rebuild the read models.
    fn as_the_previous_version_stored_it(db: &crate::conn::Db, co2e_kg: f64) {
        let body: Vec<u8> = db
            .conn
            .query_one("SELECT body FROM transactions", &[], |r| {
                Ok(r.blob(0)?.to_vec())
            })
            .unwrap();
        let b = Body::decode(&body).unwrap();
        let mut old = Vec::new();
        BodyRef {
            quantity: b.quantity,
            unit: b.unit.as_deref(),
            activity_id: b.activity_id.as_deref(),
            price_basis: b.price_basis,
            category_source: b.category_source,
            factor_source: b.factor_source,
            factor_key: &b.factor_key,
            factor_value: b.factor_value,
            unit_factor: b.unit_factor,
            supplier_id_given: b.supplier_id_given,
            ..BodyRef::default()
        }
        .encode(&mut old);
        db.conn
            .execute(
                "UPDATE transactions SET co2e_kg = ?1, content_hash = 1, body = ?2",
                args![co2e_kg, old.as_slice()],
            )
            .unwrap();
    }

    /// A database of the previous version (migrations 1 to 4, an electricity line booked in
    /// full in category 3, no Scope 1/2 in its body) migrates, and a recalculation moves the
    /// line's generation out of Scope 3, saying so per category.
    #[test]
    fn a_previous_versions_energy_line_is_corrected_by_recalculation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vcci.db");
        {
            // The previous version's schema: the first four migrations.
            let c = rusqlite::Connection::open(&path).unwrap();
            for sql in &crate::schema::sqlite_migrations()[..4] {
                c.execute_batch(sql).unwrap();
            }
            c.execute_batch("PRAGMA user_version = 4").unwrap();
        }
        let store = Store::open_file(&path).unwrap();
        let mut db = store.connect().unwrap();
        db.finish_migrations().unwrap();
        let org = db.ensure_org("old").unwrap();
        let line = Line {
            transaction_id: Some("e1".into()),
            date: Some(Date::parse("2024-02-10").unwrap()),
            quantity: Some(100_000.0),
            unit: Some(Unit::parse("kWh").unwrap()),
            activity_id: Some(UK_ELECTRICITY.into()),
            ..Line::default()
        };
        let p = super::prepare(
            vcci_core::catalog(),
            &org,
            line,
            &Default::default(),
            None,
            None,
        )
        .unwrap();
        db.write_lines(org.id, &[p], &Vec::new(), &crate::Actor::system("test"))
            .unwrap();
        // What the previous version stored: 20,705 kg in category 3, a body without the
        // Scope 1/2 fields, read models without them.
        as_the_previous_version_stored_it(&db, 20_705.0);
        db.rebuild_read_models(org.id).unwrap();
        assert!(db.verify_read_models(org.id).unwrap().is_empty());

        let r = db
            .recalculate(
                vcci_core::catalog(),
                &org,
                &org,
                &crate::Actor::system("test"),
            )
            .unwrap();
        assert_eq!((r.changed, r.errors.len()), (1, 0));
        assert_eq!(r.categories.len(), 1);
        let c = &r.categories[0];
        assert_eq!(c.category, Category::FUEL_ENERGY.number());
        assert_eq!(
            (c.co2e_kg_before, c.lines_before, c.lines_after),
            (20_705.0, 1, 1)
        );
        assert!(
            (c.co2e_kg_after - 6_817.0).abs() < 1e-6,
            "{}",
            c.co2e_kg_after
        );
        assert_eq!(r.scope_1_2_before.scope_2_kg, 0.0);
        assert!((r.scope_1_2_after.scope_2_kg - 20_705.0).abs() < 1e-6);
        assert!(db.verify_read_models(org.id).unwrap().is_empty());
        let e = db.get_line(org.id, "e1").unwrap().unwrap().emission;
        assert_eq!(e.scope_1_2.unwrap().scope, 2);
        assert_eq!(e.upstream.len(), 3);
    }

    /// Migration 7 leaves the gas columns of stored lines to `finish_migrations`: after it,
    /// the read models agree with the lines again, and a second call does nothing.
    #[test]
    fn finishing_migration_7_sums_the_gases_of_stored_lines() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_dir(dir.path()).unwrap();
        let mut db = store.connect().unwrap();
        db.finish_migrations().unwrap();
        let org = db.ensure_org("acme").unwrap();
        let mut lines = Vec::new();
        for (i, (key, unit, q)) in [
            (UK_ELECTRICITY, "kWh", 1000.0),
            ("business-travel-air/flights/long-haul-to-from-uk/economy-class/with-rf/passenger.km", "passenger.km", 5000.0),
            ("bioenergy/biofuel/bioethanol/litres", "litres", 30.0),
        ]
        .into_iter()
        .enumerate()
        {
            let line = Line {
                transaction_id: Some(format!("a{i}")),
                date: Some(Date::parse("2024-02-10").unwrap()),
                quantity: Some(q),
                unit: Some(Unit::parse(unit).unwrap()),
                activity_id: Some(key.into()),
                ..Line::default()
            };
            lines.push(super::prepare(vcci_core::catalog(), &org, line, &Default::default(), None, None).unwrap());
        }
        let spend = Line {
            transaction_id: Some("s1".into()),
            date: Some(Date::parse("2022-06-30").unwrap()),
            amount: Some(1000.0),
            currency: Some(vcci_core::Currency::USD),
            naics: vcci_core::Naics::parse("484121").ok(),
            ..Line::default()
        };
        lines.push(
            super::prepare(
                vcci_core::catalog(),
                &org,
                spend,
                &Default::default(),
                None,
                None,
            )
            .unwrap(),
        );
        db.write_lines(org.id, &lines, &Vec::new(), &crate::Actor::system("test"))
            .unwrap();
        assert!(db.verify_read_models(org.id).unwrap().is_empty());
        let s = db.summary(org.id, Default::default(), None).unwrap();
        // Within the EPA per-gas rows' rounding (594.484 of 484121's 595 kg).
        assert!(
            (s.by_gas.total() - s.total_co2e_kg).abs() < 0.52,
            "{:?} vs {}",
            s.by_gas,
            s.total_co2e_kg
        );
        assert!(s.by_gas.radiative_forcing > 0.0 && s.by_gas.unspecified > 0.0);
        assert!(
            (s.biogenic_co2_kg - (115.07 + 45.6)).abs() < 1e-6,
            "{}",
            s.biogenic_co2_kg
        );
        // As a database of the previous version has them: no gas sums, the marker set.
        let cols = crate::codec::EXTRA_COLUMNS[2..]
            .iter()
            .map(|c| format!("{c} = 0"))
            .collect::<Vec<_>>()
            .join(", ");
        for table in ["summary_daily", "summary_monthly"] {
            db.conn
                .execute(&format!("UPDATE {table} SET {cols}"), &[])
                .unwrap();
        }
        db.conn
            .execute(
                "INSERT INTO maintenance (name) VALUES ('read_model_extras')",
                &[],
            )
            .unwrap();
        assert!(!db.verify_read_models(org.id).unwrap().is_empty());
        db.finish_migrations().unwrap();
        assert!(db.verify_read_models(org.id).unwrap().is_empty());
        assert_eq!(db.summary(org.id, Default::default(), None).unwrap(), s);
        db.finish_migrations().unwrap();
        assert_eq!(db.summary(org.id, Default::default(), None).unwrap(), s);
    }

    /// A flight stored before flights carried their WTT: its gases add up to what it was
    /// booked with, and the recalculation adds the WTT to both.
    #[test]
    fn an_earlier_flight_keeps_gases_that_add_up_until_recalculated() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_dir(dir.path()).unwrap();
        let mut db = store.connect().unwrap();
        db.finish_migrations().unwrap();
        let org = db.ensure_org("acme").unwrap();
        let key =
            "business-travel-air/flights/long-haul-to-from-uk/economy-class/with-rf/passenger.km";
        let line = Line {
            transaction_id: Some("f1".into()),
            date: Some(Date::parse("2024-05-01").unwrap()),
            quantity: Some(11_000.0),
            unit: Some(Unit::parse("passenger.km").unwrap()),
            activity_id: Some(key.into()),
            ..Line::default()
        };
        let p = super::prepare(
            vcci_core::catalog(),
            &org,
            line,
            &Default::default(),
            None,
            None,
        )
        .unwrap();
        db.write_lines(org.id, &[p], &Vec::new(), &crate::Actor::system("test"))
            .unwrap();
        // As the previous version stored it: 11,000 × 0.20011 = 2,201.21 kg, no WTT part.
        assert!(
            Body::decode(
                &db.conn
                    .query_one("SELECT body FROM transactions", &[], |r| Ok(r
                        .blob(0)?
                        .to_vec()))
                    .unwrap()
            )
            .unwrap()
            .upstream
            .is_some()
        );
        as_the_previous_version_stored_it(&db, 2_201.21);
        db.rebuild_read_models(org.id).unwrap();
        let s = db.summary(org.id, Default::default(), None).unwrap();
        assert!((s.by_gas.total() - 2_201.21).abs() < 1e-6, "{:?}", s.by_gas);
        assert_eq!(s.by_gas.unspecified, 0.0);
        let r = db
            .recalculate(
                vcci_core::catalog(),
                &org,
                &org,
                &crate::Actor::system("test"),
            )
            .unwrap();
        assert_eq!(r.changed, 1);
        let s = db.summary(org.id, Default::default(), None).unwrap();
        assert!((s.total_co2e_kg - 2_471.92).abs() < 1e-6);
        assert!((s.by_gas.total() - 2_471.92).abs() < 1e-6, "{:?}", s.by_gas);
        assert!((s.by_gas.unspecified - 270.71).abs() < 1e-6);
        assert!(db.verify_read_models(org.id).unwrap().is_empty());
    }

    /// A database of the previous version (migrations 1 to 7: one intensity per supplier,
    /// on the supplier row) migrates: the intensity becomes the history's one value,
    /// cradle-to-gate and not stated, and the supplier's line keeps its result.
    #[test]
    fn a_previous_versions_supplier_intensity_becomes_its_history() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vcci.db");
        {
            let c = rusqlite::Connection::open(&path).unwrap();
            for sql in &crate::schema::sqlite_migrations()[..7] {
                c.execute_batch(sql).unwrap();
            }
            c.execute_batch(
                "PRAGMA user_version = 7;
                 INSERT INTO organizations (id, name, created_at) VALUES (1, 'old', 'x');
                 INSERT INTO suppliers (org_id, supplier_id, name, naics_code, intensity_kg_per_usd,
                   intensity_year, intensity_source, updated_at)
                 VALUES (1, 'A', 'Acme', 484121, 0.25, 2023, 'CDP 2024', 't'),
                        (1, 'B', 'Beta', NULL, 0.5, NULL, NULL, 't'),
                        (1, 'C', 'Gamma', 484121, NULL, NULL, NULL, 't');",
            )
            .unwrap();
        }
        let store = Store::open_file(&path).unwrap();
        let mut db = store.connect().unwrap();
        db.finish_migrations().unwrap();
        let org = db.ensure_org("old").unwrap();
        let a = db.supplier_intensities(org.id, "A").unwrap().unwrap();
        assert_eq!(a.len(), 1);
        assert_eq!(
            (
                a[0].year,
                a[0].kg_per_usd,
                a[0].boundary,
                a[0].boundary_stated,
                a[0].verified
            ),
            (
                Some(2023),
                0.25,
                vcci_core::Boundary::CradleToGate,
                false,
                false
            )
        );
        assert_eq!(a[0].source.as_deref(), Some("CDP 2024"));
        let b = db.supplier_intensities(org.id, "B").unwrap().unwrap();
        assert_eq!((b[0].year, b[0].kg_per_usd), (None, 0.5));
        assert!(
            db.supplier_intensities(org.id, "C")
                .unwrap()
                .unwrap()
                .is_empty()
        );
        // The undated value serves a line of any year as before: 100 USD × 0.5.
        let line = Line {
            transaction_id: Some("l1".into()),
            date: Some(Date::parse("2021-02-10").unwrap()),
            amount: Some(100.0),
            currency: Some(vcci_core::Currency::USD),
            supplier_id: Some("B".into()),
            ..Line::default()
        };
        let profiles = db.supplier_profiles(org.id).unwrap();
        let p = super::prepare(vcci_core::catalog(), &org, line, &profiles, None, None).unwrap();
        db.write_lines(org.id, &[p], &Vec::new(), &crate::Actor::system("test"))
            .unwrap();
        let e = db.get_line(org.id, "l1").unwrap().unwrap().emission;
        assert_eq!(
            (e.co2e_kg, e.method),
            (50.0, vcci_core::Method::SupplierSpecific)
        );
        assert!(
            e.fallbacks
                .iter()
                .any(|f| f.code == "intensity_year_assumed")
        );
    }
}
