//! Product carbon footprints in the WBCSD PACT Tech Specs v3 data model: the checks a
//! received footprint passes, and what the engine takes from it.
//!
//! The checks follow the `ProductFootprint` and `CarbonFootprint` schemas of the spec's
//! `openapi.yaml` (v3.0.3): every required property, every declared type, decimal strings
//! with their signs, URNs, UUIDs, RFC 3339 date-times, enums, non-empty and unique arrays,
//! the geography's one-of, and the DQI range. Each error names its JSON Pointer, so one bad
//! footprint in a page can be rejected with its id and the reason while the rest is kept.
//!
//! Numbers stay decimal strings as received (the document is stored unchanged); the engine
//! reads them as f64, and its trail shows both.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::date::Date;
use crate::units::Unit;

/// One problem of a footprint: where (a JSON Pointer into the footprint) and what.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PactError {
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for PactError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// `Active`: the one to use. `Deprecated`: superseded, never used for a calculation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Status {
    Active,
    Deprecated,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "Active",
            Status::Deprecated => "Deprecated",
        }
    }
    pub fn parse(s: &str) -> Option<Status> {
        match s {
            "Active" => Some(Status::Active),
            "Deprecated" => Some(Status::Deprecated),
            _ => None,
        }
    }
}

/// The declared units of the spec, each with the vcci unit it is.
pub const DECLARED_UNITS: [(&str, &str); 10] = [
    ("liter", "litres"),
    ("kilogram", "kg"),
    ("cubic meter", "cubic metres"),
    ("kilowatt hour", "kWh"),
    ("megajoule", "MJ"),
    ("ton kilometer", "tonne.km"),
    ("square meter", "m²"),
    ("piece", "piece"),
    ("hour", "hour"),
    ("megabit second", "megabit.second"),
];

/// The vcci unit of a PACT declared unit.
pub fn declared_unit(name: &str) -> Option<Unit> {
    DECLARED_UNITS
        .iter()
        .find(|(n, _)| *n == name)
        .and_then(|(_, u)| Unit::parse(u).ok())
}

const REGIONS: [&str; 22] = [
    "Africa",
    "Americas",
    "Asia",
    "Europe",
    "Oceania",
    "Australia and New Zealand",
    "Central Asia",
    "Eastern Asia",
    "Eastern Europe",
    "Latin America and the Caribbean",
    "Melanesia",
    "Micronesia",
    "Northern Africa",
    "Northern America",
    "Northern Europe",
    "Polynesia",
    "South-eastern Asia",
    "Southern Asia",
    "Southern Europe",
    "Sub-Saharan Africa",
    "Western Asia",
    "Western Europe",
];

/// What the engine uses of a footprint (cloned into a supplier's profile).
#[derive(Clone, Debug, PartialEq)]
pub struct ProductPcf {
    /// The footprint's id, lower case.
    pub id: String,
    pub product_ids: Vec<String>,
    pub company_name: String,
    pub spec_version: String,
    /// Seconds since 1970-01-01T00:00:00Z.
    pub created: i64,
    pub status: Status,
    /// The validity period, [start, end) in seconds, after the spec's default (from the
    /// reference period's end, for 3 years) where the footprint states none.
    pub validity: (i64, i64),
    pub validity_stated: bool,
    pub reference_period: (i64, i64),
    /// The spec's name of the declared unit ("kilogram") and the vcci unit it is.
    pub declared_unit_name: String,
    pub declared_unit: Unit,
    /// The decimal strings as received, and their values.
    pub declared_amount_text: String,
    pub declared_amount: f64,
    pub pcf_excluding_text: String,
    pub pcf_excluding: f64,
    pub pcf_including_text: String,
    pub pcf_including: f64,
    /// Technological, geographical and temporal DQR (1–5), where given.
    pub dqi: Option<[f64; 3]>,
    /// Percent, where given.
    pub primary_data_share: Option<f64>,
    pub verified: bool,
    /// The country (ISO 3166-1 alpha-2) of a country or subdivision footprint.
    pub country: Option<String>,
}

impl ProductPcf {
    /// kg CO2e per one declared unit (`pcfExcludingBiogenicUptake ÷ declaredUnitAmount`).
    pub fn kg_per_unit(&self) -> f64 {
        self.pcf_excluding / self.declared_amount
    }

    /// Whether `day` (taken at 00:00 UTC) is within the validity period.
    pub fn valid_on(&self, day: Date) -> bool {
        let t = day_seconds(day);
        self.validity.0 <= t && t < self.validity.1
    }

    /// How far `day` is from the validity period, in seconds (0 within it).
    pub fn distance(&self, day: Date) -> i64 {
        let t = day_seconds(day);
        if t < self.validity.0 {
            self.validity.0 - t
        } else if t >= self.validity.1 {
            t - self.validity.1 + 1
        } else {
            0
        }
    }
}

/// A footprint that passed the checks.
#[derive(Clone, Debug, PartialEq)]
pub struct Footprint {
    pub pcf: ProductPcf,
    pub company_ids: Vec<String>,
    pub product_name: String,
    pub preceding: Vec<String>,
    pub product_classifications: Vec<String>,
    /// The geography as given: a region, a country or a subdivision (none: global).
    pub geography: Option<String>,
}

/// The id of a footprint document, if it has a readable one (for naming a rejected one).
pub fn id_of(v: &Value) -> Option<&str> {
    v.get("id").and_then(Value::as_str)
}

/// Checks a footprint against the v3 data model and extracts what vcci uses. Every problem
/// is reported, each with its JSON Pointer.
pub fn parse(v: &Value) -> Result<Footprint, Vec<PactError>> {
    let mut c = Checker::default();
    let Some(o) = v.as_object() else {
        c.err("", "a ProductFootprint must be a JSON object");
        return Err(c.errors);
    };
    let id = c.uuid(o, "", "id", true);
    let spec_version = c.string(o, "", "specVersion", true, false);
    if let Some(s) = &spec_version {
        match spec_version_major(s) {
            None => c.err(
                "/specVersion",
                format!("'{s}' is not major.minor.patch (e.g. \"3.0.0\")"),
            ),
            Some(3) => {}
            Some(m) => c.err(
                "/specVersion",
                format!("version {m} of the spec is not supported: vcci reads PACT v3"),
            ),
        }
    }
    let created = c.datetime(o, "", "created", true);
    let status = c.string(o, "", "status", true, false).and_then(|s| {
        let st = Status::parse(&s);
        if st.is_none() {
            c.err(
                "/status",
                format!("'{s}' is not one of \"Active\", \"Deprecated\""),
            );
        }
        st
    });
    let validity_start = c.datetime(o, "", "validityPeriodStart", false);
    let validity_end = c.datetime(o, "", "validityPeriodEnd", false);
    let company_name = c.string(o, "", "companyName", true, true);
    let company_ids = c.urns(o, "", "companyIds", true);
    c.string(o, "", "productDescription", true, false);
    let product_ids = c.urns(o, "", "productIds", true);
    let product_classifications = c.urns(o, "", "productClassifications", false);
    let product_name = c.string(o, "", "productNameCompany", true, true);
    c.string(o, "", "comment", false, false);
    let preceding = c.uuids(o, "", "precedingPfIds");
    if let Some(ext) = o.get("extensions") {
        c.extensions(ext);
    }
    let pcf = match o.get("pcf") {
        None => {
            c.err("/pcf", "is required");
            None
        }
        Some(Value::Object(p)) => c.carbon_footprint(p),
        Some(_) => {
            c.err("/pcf", "must be a CarbonFootprint object");
            None
        }
    };
    if let (Some(a), Some(b)) = (validity_start, validity_end)
        && a >= b
    {
        c.err("/validityPeriodEnd", "must be after validityPeriodStart");
    }
    if !c.errors.is_empty() {
        return Err(c.errors);
    }
    // Every Option below is Some: a None pushed an error.
    let (
        Some(id),
        Some(spec_version),
        Some(created),
        Some(status),
        Some(company_name),
        Some(company_ids),
        Some(product_ids),
        Some(product_name),
        Some(p),
    ) = (
        id,
        spec_version,
        created,
        status,
        company_name,
        company_ids,
        product_ids,
        product_name,
        pcf,
    )
    else {
        return Err(vec![PactError {
            path: String::new(),
            message: "the footprint is incomplete".into(),
        }]);
    };
    const THREE_YEARS: i64 = 3 * 365 * 86_400 + 86_400;
    let start = validity_start.unwrap_or(p.reference.1);
    let end = validity_end
        .unwrap_or_else(|| add_years(p.reference.1, 3).unwrap_or(p.reference.1 + THREE_YEARS));
    let country = p.geography.as_deref().and_then(|g| {
        let b = g.as_bytes();
        (b.len() >= 2
            && b[0].is_ascii_uppercase()
            && b[1].is_ascii_uppercase()
            && (b.len() == 2 || b[2] == b'-'))
            .then(|| g[..2].to_owned())
    });
    let id_lower = id.clone();
    Ok(Footprint {
        pcf: ProductPcf {
            id,
            product_ids,
            company_name,
            spec_version,
            created,
            status,
            validity: (start, end),
            validity_stated: validity_start.is_some() || validity_end.is_some(),
            reference_period: p.reference,
            declared_unit_name: p.unit_name,
            declared_unit: p.unit,
            declared_amount_text: p.amount.0,
            declared_amount: p.amount.1,
            pcf_excluding_text: p.excluding.0,
            pcf_excluding: p.excluding.1,
            pcf_including_text: p.including.0,
            pcf_including: p.including.1,
            dqi: p.dqi,
            primary_data_share: p.primary_data_share,
            verified: p.verified,
            country,
        },
        company_ids,
        product_name,
        // The schema does not forbid a footprint listing itself (the spec's example 2 does);
        // it is no predecessor.
        preceding: preceding
            .unwrap_or_default()
            .into_iter()
            .filter(|p| *p != id_lower)
            .collect(),
        product_classifications: product_classifications.unwrap_or_default(),
        geography: p.geography,
    })
}

fn spec_version_major(s: &str) -> Option<u32> {
    let (core, pre) = match s.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (s, None),
    };
    if let Some(p) = pre
        && (p.len() != 8 || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let parts: Vec<&str> = core.split('.').collect();
    if parts.len() != 3
        || parts
            .iter()
            .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    parts[0].parse().ok()
}

/// What the checks of `pcf` extract.
struct CarbonParts {
    unit_name: String,
    unit: Unit,
    amount: (String, f64),
    excluding: (String, f64),
    including: (String, f64),
    reference: (i64, i64),
    geography: Option<String>,
    dqi: Option<[f64; 3]>,
    primary_data_share: Option<f64>,
    verified: bool,
}

/// The sign a decimal property must have.
#[derive(Clone, Copy, PartialEq)]
enum Sign {
    Any,
    PositiveNonZero,
    PositiveOrZero,
    NegativeOrZero,
}

#[derive(Default)]
struct Checker {
    errors: Vec<PactError>,
}

fn ptr(base: &str, key: &str) -> String {
    format!("{base}/{}", key.replace('~', "~0").replace('/', "~1"))
}

impl Checker {
    fn err(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(PactError {
            path: path.into(),
            message: message.into(),
        });
    }

    fn string(
        &mut self,
        o: &Map<String, Value>,
        base: &str,
        key: &str,
        required: bool,
        non_empty: bool,
    ) -> Option<String> {
        match o.get(key) {
            None if required => {
                self.err(ptr(base, key), "is required");
                None
            }
            None => None,
            Some(Value::String(s)) if non_empty && s.is_empty() => {
                self.err(ptr(base, key), "must not be empty");
                None
            }
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                self.err(ptr(base, key), "must be a string");
                None
            }
        }
    }

    fn uuid(
        &mut self,
        o: &Map<String, Value>,
        base: &str,
        key: &str,
        required: bool,
    ) -> Option<String> {
        let s = self.string(o, base, key, required, false)?;
        if is_uuid(&s) {
            Some(s.to_ascii_lowercase())
        } else {
            self.err(ptr(base, key), format!("'{}' is not a UUID", clip(&s)));
            None
        }
    }

    fn datetime(
        &mut self,
        o: &Map<String, Value>,
        base: &str,
        key: &str,
        required: bool,
    ) -> Option<i64> {
        let s = self.string(o, base, key, required, false)?;
        match parse_datetime(&s) {
            Some(t) => Some(t),
            None => {
                self.err(
                    ptr(base, key),
                    format!(
                        "'{}' is not an RFC 3339 date-time (e.g. \"2025-01-31T00:00:00Z\")",
                        clip(&s)
                    ),
                );
                None
            }
        }
    }

    /// A non-empty array of unique strings, each checked by `ok`.
    fn string_array(
        &mut self,
        o: &Map<String, Value>,
        base: &str,
        key: &str,
        required: bool,
        ok: fn(&str) -> bool,
        what: &str,
    ) -> Option<Vec<String>> {
        let path = ptr(base, key);
        let v = match o.get(key) {
            None => {
                if required {
                    self.err(path, "is required");
                }
                return None;
            }
            Some(v) => v,
        };
        let Some(a) = v.as_array() else {
            self.err(path, "must be an array");
            return None;
        };
        if a.is_empty() {
            self.err(path, "must not be empty");
            return None;
        }
        let mut out = Vec::with_capacity(a.len());
        let mut good = true;
        for (i, x) in a.iter().enumerate() {
            match x.as_str() {
                Some(s) if ok(s) => {
                    if out.iter().any(|o: &String| o == s) {
                        self.err(
                            format!("{path}/{i}"),
                            format!("'{}' is listed twice", clip(s)),
                        );
                        good = false;
                    }
                    out.push(s.to_owned());
                }
                Some(s) => {
                    self.err(
                        format!("{path}/{i}"),
                        format!("'{}' is not {what}", clip(s)),
                    );
                    good = false;
                }
                None => {
                    self.err(format!("{path}/{i}"), "must be a string");
                    good = false;
                }
            }
        }
        good.then_some(out)
    }

    fn urns(
        &mut self,
        o: &Map<String, Value>,
        base: &str,
        key: &str,
        required: bool,
    ) -> Option<Vec<String>> {
        self.string_array(o, base, key, required, is_urn, "a URN (urn:...)")
    }

    fn uuids(&mut self, o: &Map<String, Value>, base: &str, key: &str) -> Option<Vec<String>> {
        self.string_array(o, base, key, false, is_uuid, "a UUID")
            .map(|v| v.into_iter().map(|s| s.to_ascii_lowercase()).collect())
    }

    fn decimal(
        &mut self,
        o: &Map<String, Value>,
        base: &str,
        key: &str,
        required: bool,
        sign: Sign,
    ) -> Option<(String, f64)> {
        let path = ptr(base, key);
        let s = match o.get(key) {
            None => {
                if required {
                    self.err(path, "is required");
                }
                return None;
            }
            Some(Value::String(s)) => s,
            Some(Value::Number(n)) => {
                self.err(
                    path,
                    format!("must be a decimal string (\"{n}\"), not a JSON number"),
                );
                return None;
            }
            Some(_) => {
                self.err(path, "must be a decimal string");
                return None;
            }
        };
        let Some(v) = parse_decimal(s) else {
            self.err(
                path,
                format!("'{}' is not a decimal (e.g. \"1.25\")", clip(s)),
            );
            return None;
        };
        // The spec's patterns: PositiveNonZero and PositiveOrZero allow no '-', and
        // NegativeOrZero allows no '+'.
        let bad = match sign {
            Sign::Any => None,
            Sign::PositiveNonZero if s.starts_with('-') || v <= 0.0 => {
                Some("must be greater than 0")
            }
            Sign::PositiveOrZero if s.starts_with('-') => Some("must be 0 or more"),
            Sign::NegativeOrZero if v > 0.0 || s.starts_with('+') => Some("must be 0 or less"),
            _ => None,
        };
        if let Some(m) = bad {
            self.err(path, format!("'{s}' {m}"));
            return None;
        }
        Some((s.clone(), v))
    }

    fn boolean(&mut self, o: &Map<String, Value>, base: &str, key: &str) {
        if let Some(v) = o.get(key)
            && !v.is_boolean()
        {
            self.err(ptr(base, key), "must be true or false");
        }
    }

    fn extensions(&mut self, v: &Value) {
        let Some(a) = v.as_array() else {
            self.err("/extensions", "must be an array");
            return;
        };
        for (i, e) in a.iter().enumerate() {
            let base = format!("/extensions/{i}");
            let Some(o) = e.as_object() else {
                self.err(base, "must be a DataModelExtension object");
                continue;
            };
            self.string(o, &base, "specVersion", true, false);
            self.string(o, &base, "dataSchema", true, false);
            self.string(o, &base, "documentation", false, false);
            match o.get("data") {
                Some(Value::Object(_)) => {}
                None => self.err(ptr(&base, "data"), "is required"),
                Some(_) => self.err(ptr(&base, "data"), "must be an object"),
            }
        }
    }

    fn carbon_footprint(&mut self, p: &Map<String, Value>) -> Option<CarbonParts> {
        const B: &str = "/pcf";
        let unit = self
            .string(p, B, "declaredUnitOfMeasurement", true, false)
            .and_then(|n| match declared_unit(&n) {
                Some(u) => Some((n, u)),
                None => {
                    let names: Vec<&str> = DECLARED_UNITS.iter().map(|(n, _)| *n).collect();
                    self.err(
                        "/pcf/declaredUnitOfMeasurement",
                        format!("'{}' is not one of {}", clip(&n), names.join(", ")),
                    );
                    None
                }
            });
        let amount = self.decimal(p, B, "declaredUnitAmount", true, Sign::PositiveNonZero);
        self.decimal(p, B, "productMassPerDeclaredUnit", true, Sign::Any);
        let ref_start = self.datetime(p, B, "referencePeriodStart", true);
        let ref_end = self.datetime(p, B, "referencePeriodEnd", true);
        if let (Some(a), Some(b)) = (ref_start, ref_end)
            && a >= b
        {
            self.err(
                "/pcf/referencePeriodEnd",
                "must be after referencePeriodStart",
            );
        }
        // Geography: at most one of region, country, subdivision (none: global).
        let region = self.string(p, B, "geographyRegionOrSubregion", false, false);
        let country = self.string(p, B, "geographyCountry", false, false);
        let subdivision = self.string(p, B, "geographyCountrySubdivision", false, false);
        if let Some(r) = &region
            && !REGIONS.contains(&r.as_str())
        {
            self.err(
                "/pcf/geographyRegionOrSubregion",
                format!("'{}' is not a UN geographic region or subregion", clip(r)),
            );
        }
        if let Some(c) = &country
            && !(c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase()))
        {
            self.err(
                "/pcf/geographyCountry",
                format!(
                    "'{}' is not an ISO 3166-1 alpha-2 code (e.g. \"DE\")",
                    clip(c)
                ),
            );
        }
        if let Some(s) = &subdivision
            && !is_subdivision(s)
        {
            self.err(
                "/pcf/geographyCountrySubdivision",
                format!("'{}' is not an ISO 3166-2 code (e.g. \"US-CA\")", clip(s)),
            );
        }
        let given = [&region, &country, &subdivision]
            .iter()
            .filter(|g| g.is_some())
            .count();
        if given > 1 {
            self.err(
                "/pcf",
                "gives more than one of geographyRegionOrSubregion, geographyCountry, \
                 geographyCountrySubdivision; at most one is allowed",
            );
        }
        self.string(p, B, "boundaryProcessesDescription", false, false);
        let excluding = self.decimal(p, B, "pcfExcludingBiogenicUptake", true, Sign::Any);
        let including = self.decimal(p, B, "pcfIncludingBiogenicUptake", true, Sign::Any);
        for (key, required) in [
            ("fossilGhgEmissions", true),
            ("fossilCarbonContent", true),
            ("biogenicCarbonContent", false),
            ("recycledCarbonContent", false),
            ("landUseChangeGhgEmissions", false),
            ("landCarbonLeakage", false),
            ("landManagementFossilGhgEmissions", false),
            ("landManagementBiogenicCO2Emissions", false),
            ("biogenicNonCO2Emissions", false),
            ("landAreaOccupation", false),
            ("aircraftGhgEmissions", false),
            ("packagingGhgEmissions", false),
            ("packagingBiogenicCarbonContent", false),
            ("outboundLogisticsGhgEmissions", false),
            ("ccuCarbonContent", false),
        ] {
            self.decimal(p, B, key, required, Sign::PositiveOrZero);
        }
        for key in [
            "landManagementBiogenicCO2Removals",
            "biogenicCO2Uptake",
            "ccsTechnologicalCO2Capture",
            "technologicalCO2Removals",
        ] {
            self.decimal(p, B, key, false, Sign::NegativeOrZero);
        }
        self.boolean(p, B, "packagingEmissionsIncluded");
        self.boolean(p, B, "ccsTechnologicalCO2CaptureIncluded");
        self.string(p, B, "technologicalCO2CaptureOrigin", false, false);
        if let Some(a) = self.string(p, B, "ccuCalculationApproach", false, false)
            && a != "Cut-off"
            && a != "Credit"
        {
            self.err(
                "/pcf/ccuCalculationApproach",
                format!("'{}' is not one of \"Cut-off\", \"Credit\"", clip(&a)),
            );
        }
        self.string(p, B, "ccuCreditCertification", false, false);
        self.string_array(
            p,
            B,
            "ipccCharacterizationFactors",
            true,
            is_ar,
            "AR followed by a number (e.g. \"AR6\")",
        );
        self.string_array(
            p,
            B,
            "crossSectoralStandards",
            true,
            |s| !s.is_empty(),
            "a non-empty string",
        );
        if let Some(v) = p.get("productOrSectorSpecificRules") {
            self.rules(v);
        }
        self.decimal(p, B, "exemptedEmissionsPercent", true, Sign::Any);
        self.string(p, B, "exemptedEmissionsDescription", false, false);
        self.string(p, B, "allocationRulesDescription", false, false);
        if let Some(v) = p.get("secondaryEmissionFactorSources") {
            self.sources(v);
        }
        let share = self
            .decimal(p, B, "primaryDataShare", false, Sign::Any)
            .and_then(|(s, v)| {
                if (0.0..=100.0).contains(&v) {
                    Some(v)
                } else {
                    self.err(
                        "/pcf/primaryDataShare",
                        format!("'{s}' is not a percentage (0 to 100)"),
                    );
                    None
                }
            });
        let dqi = match p.get("dqi") {
            None => None,
            Some(Value::Object(d)) => {
                let mut vals = [0.0; 3];
                let mut ok = true;
                for (i, key) in ["technologicalDQR", "geographicalDQR", "temporalDQR"]
                    .iter()
                    .enumerate()
                {
                    match self.decimal(d, "/pcf/dqi", key, true, Sign::Any) {
                        Some((_, v)) if (1.0..=5.0).contains(&v) => vals[i] = v,
                        Some((s, _)) => {
                            self.err(
                                format!("/pcf/dqi/{key}"),
                                format!("'{s}' must be between 1 and 5"),
                            );
                            ok = false;
                        }
                        None => ok = false,
                    }
                }
                ok.then_some(vals)
            }
            Some(_) => {
                self.err("/pcf/dqi", "must be a DataQualityIndicators object");
                None
            }
        };
        let verified = match p.get("verification") {
            None => false,
            Some(Value::Object(v)) => {
                const VB: &str = "/pcf/verification";
                if let Some(cov) = self.string(v, VB, "coverage", false, false)
                    && !["PCF calculation model", "PCF program", "product level"]
                        .contains(&cov.as_str())
                {
                    self.err(
                        "/pcf/verification/coverage",
                        format!(
                            "'{}' is not one of \"PCF calculation model\", \"PCF program\", \"product level\"",
                            clip(&cov)
                        ),
                    );
                }
                self.string(v, VB, "providerName", false, false);
                self.datetime(v, VB, "completedAt", false);
                self.string(v, VB, "standardName", false, false);
                self.string(v, VB, "comments", false, false);
                true
            }
            Some(_) => {
                self.err("/pcf/verification", "must be a Verification object");
                false
            }
        };
        let ((unit_name, unit), amount, excluding, including, ref_start, ref_end) =
            (unit?, amount?, excluding?, including?, ref_start?, ref_end?);
        Some(CarbonParts {
            unit_name,
            unit,
            amount,
            excluding,
            including,
            reference: (ref_start, ref_end),
            geography: region.or(country).or(subdivision),
            dqi,
            primary_data_share: share,
            verified,
        })
    }

    fn rules(&mut self, v: &Value) {
        const P: &str = "/pcf/productOrSectorSpecificRules";
        let Some(a) = v.as_array().filter(|a| !a.is_empty()) else {
            self.err(P, "must be a non-empty array");
            return;
        };
        for (i, r) in a.iter().enumerate() {
            let base = format!("{P}/{i}");
            let Some(o) = r.as_object() else {
                self.err(base, "must be a ProductOrSectorSpecificRule object");
                continue;
            };
            if let Some(op) = self.string(o, &base, "operator", true, false)
                && !["PEF", "EPD International", "Other"].contains(&op.as_str())
            {
                self.err(
                    ptr(&base, "operator"),
                    format!(
                        "'{}' is not one of \"PEF\", \"EPD International\", \"Other\"",
                        clip(&op)
                    ),
                );
            }
            self.string_array(
                o,
                &base,
                "ruleNames",
                true,
                |s| !s.is_empty(),
                "a non-empty string",
            );
            self.string(o, &base, "otherOperatorName", false, true);
        }
    }

    fn sources(&mut self, v: &Value) {
        const P: &str = "/pcf/secondaryEmissionFactorSources";
        let Some(a) = v.as_array().filter(|a| !a.is_empty()) else {
            self.err(P, "must be a non-empty array");
            return;
        };
        for (i, s) in a.iter().enumerate() {
            let base = format!("{P}/{i}");
            let Some(o) = s.as_object() else {
                self.err(base, "must be an EmissionFactorSource object");
                continue;
            };
            self.string(o, &base, "name", true, true);
            self.string(o, &base, "version", true, true);
        }
    }
}

/// At most 80 characters of a value, for an error message.
fn clip(s: &str) -> String {
    if s.chars().count() <= 80 {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(77).collect();
        t.push_str("...");
        t
    }
}

pub fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// `urn:` (any case) and something after it.
pub fn is_urn(s: &str) -> bool {
    s.len() > 4 && s.as_bytes()[..4].eq_ignore_ascii_case(b"urn:")
}

fn is_ar(s: &str) -> bool {
    s.len() > 2 && s.starts_with("AR") && s[2..].bytes().all(|b| b.is_ascii_digit())
}

fn is_subdivision(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 4
        && b.len() <= 6
        && b[0].is_ascii_uppercase()
        && b[1].is_ascii_uppercase()
        && b[2] == b'-'
        && b[3..]
            .iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

/// A decimal string as the spec writes them: an optional sign, digits, and an optional
/// fraction (`"-1.25"`, `"+3"`, `"0.5"`); no exponent, no bare point.
pub fn parse_decimal(s: &str) -> Option<f64> {
    let t = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (int, frac) = match t.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (t, None),
    };
    let digits = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || frac.is_some_and(|f| !digits(f)) {
        return None;
    }
    s.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Days from 1970-01-01 to a civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day number from 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// The UTC year of an instant.
pub fn year_of(t: i64) -> u16 {
    civil_from_days(t.div_euclid(86_400)).0.clamp(0, 9999) as u16
}

/// Seconds since the epoch of `day` at 00:00 UTC.
pub fn day_seconds(day: Date) -> i64 {
    days_from_civil(
        i64::from(day.year()),
        i64::from(day.month()),
        i64::from(day.day()),
    ) * 86_400
}

/// `t` plus `n` calendar years (29 February to 28 February).
fn add_years(t: i64, n: i64) -> Option<i64> {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let y2 = y + n;
    let leap = (y2 % 4 == 0 && y2 % 100 != 0) || y2 % 400 == 0;
    let d2 = if m == 2 && d == 29 && !leap { 28 } else { d };
    Some(days_from_civil(y2, m, d2) * 86_400 + secs)
}

/// An RFC 3339 date-time (`2025-01-31T00:00:00Z`, `...T10:00:00.5+02:00`), as seconds since
/// the epoch (UTC; fractions of a second are dropped).
pub fn parse_datetime(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let x = b.get(r)?;
        x.iter()
            .all(u8::is_ascii_digit)
            .then(|| x.iter().fold(0i64, |a, c| a * 10 + i64::from(c - b'0')))
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let date = Date::new(
        u16::try_from(y).ok()?,
        u8::try_from(mo).ok()?,
        u8::try_from(d).ok()?,
    )?;
    if h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    let offset = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        c @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let o = oh * 3600 + om * 60;
            if *c == b'+' { o } else { -o }
        }
        _ => return None,
    };
    Some(day_seconds(date) + h * 3600 + mi * 60 + se.min(59) - offset)
}

/// An RFC 3339 date-time in UTC (`2025-01-31T00:00:00Z`).
pub fn format_datetime(t: i64) -> String {
    let (y, m, d) = civil_from_days(t.div_euclid(86_400));
    let s = t.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// The PACT Tech Specs v3 folder (`../shared/pact`), for tests that check against the spec's
/// own files, read at test time only (they are not ours to ship). `None` (the test skips)
/// when it is not there, unless `VCCI_REQUIRE_PACT_SPEC` is set; `VCCI_PACT_SPEC_DIR`
/// names another place.
pub fn spec_dir_for_tests() -> Option<std::path::PathBuf> {
    let candidates = [
        std::env::var("VCCI_PACT_SPEC_DIR").ok().map(Into::into),
        Some(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/pact")),
        Some("/work/shared/pact".into()),
    ];
    let found = candidates
        .into_iter()
        .flatten()
        .find(|d: &std::path::PathBuf| d.join("openapi.yaml").is_file());
    if found.is_none() {
        assert!(
            std::env::var("VCCI_REQUIRE_PACT_SPEC").is_err(),
            "the PACT spec (../shared/pact) was not found"
        );
        eprintln!("skipped: the PACT spec (../shared/pact) was not found");
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn minimal() -> Value {
        json!({
            "id": "3893bb5d-da16-4dc1-9185-11d97476c254",
            "specVersion": "3.0.0",
            "created": "2025-01-10T00:00:00Z",
            "status": "Active",
            "companyName": "Acme Steel",
            "companyIds": ["urn:company:example:acme"],
            "productDescription": "Hot-rolled coil",
            "productIds": ["urn:gtin:4712345060507"],
            "productNameCompany": "HRC-1",
            "pcf": {
                "declaredUnitOfMeasurement": "kilogram",
                "declaredUnitAmount": "1",
                "productMassPerDeclaredUnit": "1",
                "referencePeriodStart": "2024-01-01T00:00:00Z",
                "referencePeriodEnd": "2025-01-01T00:00:00Z",
                "pcfExcludingBiogenicUptake": "2.4",
                "pcfIncludingBiogenicUptake": "2.4",
                "fossilGhgEmissions": "2.3",
                "fossilCarbonContent": "0",
                "ipccCharacterizationFactors": ["AR6"],
                "crossSectoralStandards": ["GHGP-Product"],
                "exemptedEmissionsPercent": "0"
            }
        })
    }

    #[test]
    fn a_minimal_footprint_parses_with_the_default_validity() {
        let f = parse(&minimal()).unwrap();
        assert_eq!(f.pcf.kg_per_unit(), 2.4);
        assert_eq!(f.pcf.declared_unit.symbol(), "kg");
        // No validity stated: from the reference period's end, for 3 years.
        assert!(!f.pcf.validity_stated);
        assert_eq!(format_datetime(f.pcf.validity.0), "2025-01-01T00:00:00Z");
        assert_eq!(format_datetime(f.pcf.validity.1), "2028-01-01T00:00:00Z");
        assert!(f.pcf.valid_on(Date::new(2027, 12, 31).unwrap()));
        assert!(!f.pcf.valid_on(Date::new(2028, 1, 1).unwrap()));
        assert!(!f.pcf.valid_on(Date::new(2024, 12, 31).unwrap()));
    }

    #[test]
    fn every_error_is_named_by_its_pointer() {
        let mut v = minimal();
        v["id"] = json!("not-a-uuid");
        v["status"] = json!("Retired");
        v["productIds"] = json!([]);
        v["pcf"]["declaredUnitAmount"] = json!(1);
        v["pcf"]["declaredUnitOfMeasurement"] = json!("bushel");
        v["pcf"]["fossilGhgEmissions"] = json!("-1");
        v["pcf"]["geographyCountry"] = json!("DE");
        v["pcf"]["geographyRegionOrSubregion"] = json!("Europe");
        v["pcf"]["dqi"] =
            json!({"technologicalDQR": "7", "geographicalDQR": "1", "temporalDQR": "1"});
        v["specVersion"] = json!("2.3.0");
        let errs = parse(&v).unwrap_err();
        let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
        for p in [
            "/id",
            "/status",
            "/productIds",
            "/pcf/declaredUnitAmount",
            "/pcf/declaredUnitOfMeasurement",
            "/pcf/fossilGhgEmissions",
            "/pcf",
            "/pcf/dqi/technologicalDQR",
            "/specVersion",
        ] {
            assert!(paths.contains(&p), "{p} missing from {errs:?}");
        }
        let amount = errs
            .iter()
            .find(|e| e.path == "/pcf/declaredUnitAmount")
            .unwrap();
        assert!(amount.message.contains("not a JSON number"), "{amount:?}");
    }

    #[test]
    fn missing_required_properties_are_each_reported() {
        let mut v = minimal();
        v.as_object_mut().unwrap().remove("companyName");
        v["pcf"]
            .as_object_mut()
            .unwrap()
            .remove("referencePeriodEnd");
        let errs = parse(&v).unwrap_err();
        assert_eq!(
            errs,
            vec![
                PactError {
                    path: "/companyName".into(),
                    message: "is required".into()
                },
                PactError {
                    path: "/pcf/referencePeriodEnd".into(),
                    message: "is required".into()
                },
            ]
        );
    }

    #[test]
    fn decimals_and_signs() {
        assert_eq!(parse_decimal("1.25"), Some(1.25));
        assert_eq!(parse_decimal("+3"), Some(3.0));
        assert_eq!(parse_decimal("-0.5"), Some(-0.5));
        for bad in ["1e3", ".5", "5.", "", "1,5", "NaN", " 1"] {
            assert_eq!(parse_decimal(bad), None, "{bad}");
        }
        let mut v = minimal();
        v["pcf"]["declaredUnitAmount"] = json!("0");
        v["pcf"]["biogenicCO2Uptake"] = json!("0.5");
        let errs = parse(&v).unwrap_err();
        assert_eq!(errs.len(), 2, "{errs:?}");
    }

    #[test]
    fn date_times() {
        assert_eq!(parse_datetime("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_datetime("2024-12-31T00:00:00Z"), Some(1_735_603_200));
        assert_eq!(
            parse_datetime("2025-01-01T02:00:00.123+02:00"),
            parse_datetime("2025-01-01T00:00:00Z")
        );
        for bad in [
            "2024-12-31",
            "2024-13-01T00:00:00Z",
            "2024-02-30T00:00:00Z",
            "2024-01-01T00:00:00",
        ] {
            assert_eq!(parse_datetime(bad), None, "{bad}");
        }
        let t = parse_datetime("2024-02-29T10:11:12Z").unwrap();
        assert_eq!(format_datetime(t), "2024-02-29T10:11:12Z");
        assert_eq!(
            format_datetime(add_years(t, 1).unwrap()),
            "2025-02-28T10:11:12Z"
        );
    }

    #[test]
    fn the_spec_units_map_to_vcci_units() {
        for (name, _) in DECLARED_UNITS {
            assert!(declared_unit(name).is_some(), "{name}");
        }
        let l = declared_unit("liter").unwrap();
        let m3 = Unit::parse("m3").unwrap();
        assert_eq!(m3.factor_to(l).unwrap(), 1000.0);
    }
}
