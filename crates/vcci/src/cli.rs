//! The command-line contract (flags, env vars, defaults). See ../shared/API.md, "Command line".

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// vcci — Value Chain Carbon Intelligence: Scope 3 emissions from procurement spend and
/// activity data, with every number explained (factor, version, FX rate, CPI ratio, units).
#[derive(Debug, Parser)]
#[command(
    name = "vcci",
    version,
    about,
    long_about,
    after_help = "Start here:\n  vcci serve --demo                         the API, the dashboard (/) and API docs (/docs) over a demo company\n  vcci demo                                 generate and import a demo company, print its inventory\n  vcci report --org demo --by month         emissions per month and category\n  vcci explain --org demo TX-2023-00000001  one line's audit trail\n  vcci factors search HGV average laden t.km\n\nDocs: README.md, docs/HTTP.md, docs/CALCULATION.md, docs/IMPORT.md, BENCHMARKS.md"
)]
pub struct Cli {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Where data lives. Without --database-url, an SQLite file in the data directory.
#[derive(Debug, Args, Clone)]
pub struct StoreArgs {
    /// Data directory for the embedded SQLite database.
    #[arg(
        long,
        global = true,
        env = "VCCI_DATA_DIR",
        default_value = "./vcci-data"
    )]
    pub data_dir: PathBuf,
    /// Database URL: sqlite:PATH, or postgres://USER@HOST:PORT/DB for PostgreSQL (shared by
    /// any number of API nodes). Default: the SQLite file in --data-dir.
    #[arg(long, global = true, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// PostgreSQL: seconds a connection attempt may take.
    #[arg(
        long,
        global = true,
        env = "VCCI_DB_CONNECT_TIMEOUT",
        default_value_t = 5.0
    )]
    pub db_connect_timeout: f64,
    /// PostgreSQL: seconds one statement may run before the server cancels it (0 = none).
    #[arg(
        long,
        global = true,
        env = "VCCI_DB_STATEMENT_TIMEOUT",
        default_value_t = 60.0
    )]
    pub db_statement_timeout: f64,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP API (see ../shared/API.md and docs/HTTP.md).
    Serve(ServeArgs),
    /// Generate a deterministic demo company (suppliers and years of lines), import it and
    /// print its Scope 3 inventory by category.
    Demo(DemoArgs),
    /// Import a CSV of transactions (spend and activity lines) or suppliers.
    Import(ImportArgs),
    /// Report emissions by category, month, supplier, method or data quality.
    Report(ReportArgs),
    /// Show one stored line with its full audit trail (factor, FX, CPI, units, fallbacks).
    Explain(ExplainArgs),
    /// Recalculate an organization's stored lines (optionally pinning an EPA release first).
    Calculate(CalculateArgs),
    /// Check that the summary read models equal a full recomputation from the lines.
    Verify(OrgArg),
    /// Search and show emission factors.
    #[command(subcommand)]
    Factors(FactorsCommand),
    /// Manage API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Suppliers' intensity histories (set values by importing a supplier CSV).
    #[command(subcommand)]
    Suppliers(SuppliersCommand),
    /// Reporting periods: close a year (freezing it as an inventory version), reopen it,
    /// list and show periods and versions.
    #[command(subcommand)]
    Period(PeriodCommand),
    /// A year against the previous year and the base year, by category (closed years: their
    /// disclosed version).
    Compare(CompareArgs),
    /// Reduction targets and their progress against the linear path.
    #[command(subcommand)]
    Target(TargetCommand),
    /// Set one year's value of an intensity denominator (revenue, headcount, …).
    Denominator(DenominatorArgs),
    /// The audit log: every change with who, when, what and the request, newest first;
    /// `vcci audit verify` checks its hash chain.
    Audit(AuditArgs),
    /// Supplier product footprints (PACT Tech Specs v3): receive a supplier's footprints,
    /// list them with their status and lineage.
    #[command(subcommand)]
    Pact(PactCommand),
    /// Load-test an API (open or closed loop), check SLOs, write reports; exits non-zero
    /// when an SLO fails.
    Loadtest(LoadtestArgs),
    /// Line classification: rules, the review threshold, training the organization model.
    #[command(subcommand)]
    Classify(ClassifyCommand),
}

#[derive(Debug, Subcommand)]
pub enum ClassifyCommand {
    /// The organization's rules: list, add, delete.
    #[command(subcommand)]
    Rules(ClassifyRulesCommand),
    /// Classify again the stored lines the machine classified, with today's rules, reviews
    /// and model (reviewed lines and closed years keep theirs).
    Apply(OrgArg),
    /// The review queue: list it by spend, accept or correct lines.
    #[command(subcommand)]
    Review(ClassifyReviewCommand),
    /// Train the organization model again from every line that carries its own NAICS code
    /// and every reviewed line.
    Train(OrgArg),
    /// The review threshold, rules and model of an organization; `--review-below` sets the
    /// threshold.
    Status(ClassifyStatusArgs),
    /// How much of the spend and emissions rests on classification, by source; what needs
    /// review; the suppliers without a code with the most classified spend.
    Coverage(ClassifyCoverageArgs),
}

#[derive(Debug, Subcommand)]
pub enum ClassifyReviewCommand {
    /// Lines flagged for review, largest spend first.
    List(ClassifyReviewListArgs),
    /// Accept the classification of lines (by transaction_id).
    Accept(ClassifyReviewArgs),
    /// Correct the classification of lines: --naics, --category and/or --capex.
    Correct(ClassifyReviewArgs),
}

#[derive(Debug, Args)]
pub struct ClassifyReviewListArgs {
    #[arg(long)]
    pub org: String,
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct ClassifyReviewArgs {
    #[arg(long)]
    pub org: String,
    /// The lines' transaction ids.
    #[arg(required = true)]
    pub ids: Vec<String>,
    /// The right six-digit NAICS 2017 code (its category follows unless --category).
    #[arg(long)]
    pub naics: Option<String>,
    /// The right category (1–15).
    #[arg(long)]
    pub category: Option<u8>,
    /// The lines are capital purchases (category 2), or (`--capex false`) are not.
    #[arg(long)]
    pub capex: Option<bool>,
    /// Also make a rule from the (one) line: supplier, gl_account or keyword.
    #[arg(long)]
    pub rule: Option<String>,
    /// The rule's pattern (default: the line's supplier or ledger account; a keyword rule
    /// needs one).
    #[arg(long)]
    pub pattern: Option<String>,
}

#[derive(Debug, Args)]
pub struct ClassifyCoverageArgs {
    #[arg(long)]
    pub org: String,
    /// Only this year's lines.
    #[arg(long)]
    pub year: Option<u16>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

#[derive(Debug, Subcommand)]
pub enum ClassifyRulesCommand {
    List(OrgFormatArgs),
    /// Add a rule (a rule of the same kind and pattern is replaced).
    Add(ClassifyRuleArgs),
    /// Delete a rule by id.
    Delete(ClassifyRuleDeleteArgs),
}

#[derive(Debug, Args)]
pub struct ClassifyRuleArgs {
    #[arg(long)]
    pub org: String,
    /// gl_account (exactly, or a prefix ending in `*`), supplier (its id or name), keyword
    /// (words of the description or account name, in order).
    #[arg(long)]
    pub kind: String,
    #[arg(long)]
    pub pattern: String,
    /// The six-digit NAICS 2017 code the matching lines get.
    #[arg(long)]
    pub naics: String,
    /// The category (1–15); default: the one the code implies.
    #[arg(long)]
    pub category: Option<u8>,
    /// The lines are capital purchases (category 2).
    #[arg(long)]
    pub capex: bool,
}

#[derive(Debug, Args)]
pub struct ClassifyRuleDeleteArgs {
    #[arg(long)]
    pub org: String,
    pub id: i64,
}

#[derive(Debug, Args)]
pub struct ClassifyStatusArgs {
    #[arg(long)]
    pub org: String,
    /// Set the confidence below which classified lines are flagged for review (0 to 1).
    #[arg(long)]
    pub review_below: Option<f64>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LoadMode {
    /// Constant arrival rate (--rate), latencies from each request's scheduled start.
    Open,
    /// --users concurrent users with --think-ms between requests.
    Closed,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LoadShape {
    Constant,
    /// From 10 % to full load over --ramp-secs.
    Ramp,
    /// --spike-factor times the load during the middle fifth of the run.
    Spike,
    /// Constant; the report compares the first and last tenths (use a long --duration).
    Soak,
}

#[derive(Debug, Args)]
pub struct LoadtestArgs {
    /// Base URL of the API (http:// only), e.g. http://127.0.0.1:8080.
    #[arg(
        long,
        env = "VCCI_LOADTEST_URL",
        required_unless_present = "self_host",
        conflicts_with = "self_host"
    )]
    pub url: Option<String>,
    /// API key (write scenarios need the analyst role). Env: VCCI_KEY.
    #[arg(
        long,
        env = "VCCI_KEY",
        hide_env_values = true,
        required_unless_present = "self_host"
    )]
    pub key: Option<String>,
    /// Start an in-process server over fresh demo data on loopback and test that.
    #[arg(long)]
    pub self_host: bool,
    /// Demo lines for --self-host.
    #[arg(long, default_value_t = 200_000)]
    pub self_host_lines: usize,
    #[arg(long, value_enum, default_value_t = LoadMode::Open)]
    pub mode: LoadMode,
    /// Requests per second (open loop) at full load.
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,
    /// Concurrent users (closed loop).
    #[arg(long, default_value_t = 64)]
    pub users: usize,
    /// Think time between a user's requests, in ms (closed loop).
    #[arg(long, default_value_t = 0)]
    pub think_ms: u64,
    /// mixed, read-heavy, write-heavy or calculate.
    #[arg(long, default_value = "mixed")]
    pub scenario: String,
    #[arg(long, value_enum, default_value_t = LoadShape::Constant)]
    pub shape: LoadShape,
    #[arg(long, default_value_t = 10)]
    pub ramp_secs: u64,
    #[arg(long, default_value_t = 5.0)]
    pub spike_factor: f64,
    /// Length of the run in seconds (at most 3600).
    #[arg(long, default_value_t = 30)]
    pub duration: u64,
    /// A request not answered in this many ms counts as an error.
    #[arg(long, default_value_t = 10_000)]
    pub timeout_ms: u64,
    /// Connections (requests in flight) at most, open loop.
    #[arg(long, default_value_t = 256)]
    pub connections: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// SLO: p95 latency below this many ms.
    #[arg(long, default_value_t = 500.0)]
    pub slo_p95_ms: f64,
    /// SLO: p99 latency below this many ms.
    #[arg(long, default_value_t = 1000.0)]
    pub slo_p99_ms: f64,
    /// SLO: share of failed requests below this (0.001 = 0.1 %).
    #[arg(long, default_value_t = 0.001)]
    pub slo_error_rate: f64,
    /// SLO: throughput of at least this many req/s.
    #[arg(long)]
    pub slo_rps: Option<f64>,
    /// Write the report as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write the report as a self-contained HTML page with charts to this file.
    #[arg(long)]
    pub html: Option<PathBuf>,
    /// No live progress line.
    #[arg(long)]
    pub quiet: bool,
    /// Live updates instead of requests: open this many idle GET /api/v1/events streams,
    /// hold them for --duration seconds, then time --events-writes writes to their events
    /// on every stream; reports the node's memory per stream (from its /metrics).
    #[arg(long)]
    pub events_streams: Option<usize>,
    /// Writes timed by --events-streams.
    #[arg(long, default_value_t = 20)]
    pub events_writes: usize,
    /// Streams opened at once by --events-streams.
    #[arg(long, default_value_t = 256)]
    pub events_opening: usize,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "VCCI_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Load the demo company on first start and print an API key for it.
    #[arg(long)]
    pub demo: bool,
    /// Database connections kept open between requests.
    #[arg(long, env = "VCCI_POOL_SIZE", default_value_t = 8)]
    pub pool_size: usize,
    /// Requests per second allowed per API key (bursts of twice that); 0 turns limiting off.
    #[arg(long, env = "VCCI_RATE_LIMIT", default_value_t = 5000.0)]
    pub rate_limit: f64,
    /// Seconds before a request is answered 503 `timeout` (CSV uploads excepted).
    #[arg(long, env = "VCCI_REQUEST_TIMEOUT", default_value_t = 30.0)]
    pub request_timeout: f64,
    /// Responses kept by the in-process cache (0 turns it off).
    #[arg(long, env = "VCCI_CACHE_ENTRIES", default_value_t = 20_000)]
    pub cache_entries: usize,
    /// Memory the in-process cache may use, in MiB.
    #[arg(long, env = "VCCI_CACHE_MB", default_value_t = 128)]
    pub cache_mb: usize,
    /// Seconds a cached response may be served (writes invalidate it sooner).
    #[arg(long, env = "VCCI_CACHE_TTL", default_value_t = 300)]
    pub cache_ttl: u64,
    /// Largest CSV accepted by POST /api/v1/imports, in MiB.
    #[arg(long, env = "VCCI_MAX_IMPORT_MB", default_value_t = 4096)]
    pub max_import_mb: u64,
    /// Database calls slower than this many milliseconds are logged and reported.
    #[arg(long, env = "VCCI_SLOW_QUERY_MS", default_value_t = 100)]
    pub slow_query_ms: u64,
    /// Cache warming: at start (while `/ready` answers 503 `warming`) and after the Redis
    /// level comes back from a failure, answer the dashboard's first requests for this many
    /// of the most active organizations (0: no warming).
    #[arg(long, env = "VCCI_WARM_ORGS", default_value_t = 10)]
    pub warm_orgs: usize,
    /// The longest a warming may take, in seconds.
    #[arg(long, env = "VCCI_WARM_SECS", default_value_t = 10)]
    pub warm_secs: u64,
    /// Redis shared by the API nodes (redis://HOST:PORT/DB): second cache level, shared
    /// rate limits, cross-node invalidation. Without it, everything stays in this process.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// Prefix of every Redis key and channel (deployments sharing one Redis differ here).
    #[arg(long, env = "VCCI_REDIS_PREFIX", default_value = "vcci:")]
    pub redis_prefix: String,
    /// Milliseconds one Redis operation may take before Redis counts as down.
    #[arg(long, env = "VCCI_REDIS_TIMEOUT_MS", default_value_t = 100)]
    pub redis_timeout_ms: u64,
    /// Milliseconds between polls of the database for other processes' writes.
    #[arg(long, env = "VCCI_POLL_MS", default_value_t = 250)]
    pub poll_ms: u64,
    /// Seconds without a heartbeat after which a running job counts as orphaned (its node
    /// died) and is run again by another node.
    #[arg(long, env = "VCCI_JOB_STALE", default_value_t = 30.0)]
    pub job_stale: f64,
    /// PostgreSQL: an import job of at least this many MiB into an organization without lines
    /// is written as a first load (one transaction, partitions built apart; docs/CLUSTER.md).
    #[arg(long, env = "VCCI_BULK_LOAD_MB", default_value_t = 32)]
    pub bulk_load_mb: u64,
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key. The PACT routes
    /// (/3/..., /auth/token) need HTTPS.
    #[arg(long, env = "VCCI_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, env = "VCCI_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// A TLS proxy sits in front of this node: the PACT routes accept plain HTTP from it
    /// (it should set X-Forwarded-Proto). Without it, and without --tls-cert, they refuse.
    #[arg(long, env = "VCCI_PACT_BEHIND_TLS_PROXY")]
    pub pact_behind_tls_proxy: bool,
    /// The URL customers reach this node at (PACT pagination links and discovery), e.g.
    /// https://pact.example.com; default: the request's scheme and Host.
    #[arg(long, env = "VCCI_PUBLIC_URL")]
    pub public_url: Option<String>,
    #[command(flatten)]
    pub pact: PactClientArgs,
    /// Allow admins to take CPU profiles of this node (GET /api/v1/admin/profile).
    #[arg(long, env = "VCCI_PROFILING")]
    pub profiling: bool,
    /// Seconds between heartbeats of an idle live-update stream (GET /api/v1/events).
    #[arg(long, env = "VCCI_EVENTS_HEARTBEAT", default_value_t = 15.0)]
    pub events_heartbeat: f64,
    /// The most live-update streams this node holds open (each is a connection and a file
    /// descriptor); beyond, new ones are answered 503.
    #[arg(long, env = "VCCI_EVENTS_MAX_STREAMS", default_value_t = 50_000)]
    pub events_max_streams: u64,
    #[command(flatten)]
    pub otlp: OtlpArgs,
}

/// Tracing: spans of requests, jobs and database calls sent over OTLP (HTTP/protobuf) to
/// an OpenTelemetry collector. Off unless an endpoint is set. The other standard OTEL_*
/// variables apply too (docs/HTTP.md, "Tracing").
#[derive(Debug, Args, Clone)]
pub struct OtlpArgs {
    /// The collector's base URL, e.g. http://127.0.0.1:4318 (spans go to its /v1/traces).
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    /// Share of new traces kept, 0 to 1 (a request with a `traceparent` follows its
    /// caller's choice). Default: OTEL_TRACES_SAMPLER/OTEL_TRACES_SAMPLER_ARG, else all.
    #[arg(long, env = "VCCI_OTLP_SAMPLING_RATIO")]
    pub otlp_sampling_ratio: Option<f64>,
    /// `service.name` of the spans.
    #[arg(long, env = "OTEL_SERVICE_NAME", default_value = "vcci")]
    pub otlp_service_name: String,
    /// Trust only the CA certificates of this PEM file for an https:// collector.
    #[arg(long, env = "VCCI_OTLP_CA_FILE")]
    pub otlp_ca_file: Option<PathBuf>,
}

impl OtlpArgs {
    pub fn config(&self) -> vcci_server::telemetry::OtlpConfig {
        vcci_server::telemetry::OtlpConfig {
            endpoint: self.otlp_endpoint.clone(),
            sampling_ratio: self.otlp_sampling_ratio,
            service_name: self.otlp_service_name.clone(),
            ca_file: self.otlp_ca_file.clone(),
        }
    }
}

/// What the PACT client side needs: the key secrets are sealed with, and whom to trust.
#[derive(Debug, Args, Clone)]
pub struct PactClientArgs {
    /// 64 hex digits (`openssl rand -hex 32`): PACT connection secrets are stored encrypted
    /// with it. Keep it out of the database's backups.
    #[arg(long, env = "VCCI_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,
    /// Trust only the CA certificates of this PEM file for suppliers' PACT hosts (else the
    /// system's roots).
    #[arg(long, env = "VCCI_PACT_CA_FILE")]
    pub pact_ca_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct OrgArg {
    /// Organization name.
    #[arg(long)]
    pub org: String,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Organization to load the demo into.
    #[arg(long, default_value = "demo")]
    pub org: String,
    /// Number of transaction lines.
    #[arg(long, default_value_t = 200_000)]
    pub lines: usize,
    /// Number of suppliers.
    #[arg(long, default_value_t = 3000)]
    pub suppliers: usize,
    /// First year of data (three years are generated).
    #[arg(long, default_value_t = 2023)]
    pub first_year: u16,
    /// Random seed: the same seed gives the same data.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Write the generated CSVs here instead of <data-dir>/demo.
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
    /// Only write the CSVs (suppliers.csv, transactions.csv); import nothing.
    #[arg(long)]
    pub generate_only: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ImportKind {
    Transactions,
    Suppliers,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// CSV file to import, or '-' for standard input.
    pub file: PathBuf,
    /// Organization to import into (created if it does not exist).
    #[arg(long)]
    pub org: String,
    /// The currency of lines that name none, for an organization created by this import
    /// (default USD); an existing organization's must match.
    #[arg(long)]
    pub default_currency: Option<String>,
    /// What the file holds.
    #[arg(long, value_enum, default_value = "transactions")]
    pub kind: ImportKind,
    /// Where to write rejected lines (default: FILE.rejects.csv, or ./stdin.rejects.csv).
    #[arg(long)]
    pub rejects: Option<PathBuf>,
    /// Lines per database transaction.
    #[arg(long, default_value_t = 50_000)]
    pub batch_size: usize,
    /// Largest accepted record, in bytes; longer records are rejected.
    #[arg(long, default_value_t = 1 << 20)]
    pub max_record_bytes: usize,
    /// PostgreSQL: a file of at least this many MiB into an organization without lines is
    /// written as a first load (one transaction, partitions built apart; docs/CLUSTER.md).
    #[arg(long, env = "VCCI_BULK_LOAD_MB", default_value_t = 32)]
    pub bulk_load_mb: u64,
    /// No progress display.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ReportBy {
    Category,
    Month,
    Supplier,
    Method,
    Quality,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Format {
    Table,
    Csv,
    Json,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    #[arg(long)]
    pub org: String,
    /// Breakdown.
    #[arg(long, value_enum, default_value = "category")]
    pub by: ReportBy,
    /// First day included (YYYY-MM-DD).
    #[arg(long)]
    pub from: Option<String>,
    /// Last day included (YYYY-MM-DD).
    #[arg(long)]
    pub to: Option<String>,
    /// A calendar year (shorthand for --from YEAR-01-01 --to YEAR-12-31).
    #[arg(long, conflicts_with_all = ["from", "to"])]
    pub year: Option<u16>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Rows in a supplier report.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    #[arg(long)]
    pub org: String,
    /// The line's transaction_id.
    pub transaction_id: String,
}

#[derive(Debug, Args)]
pub struct CalculateArgs {
    #[arg(long)]
    pub org: String,
    /// Pin this EPA Supply Chain release for the organization's spend lines (1.3.0 or 1.2).
    #[arg(long)]
    pub epa_version: Option<String>,
    /// Set the currency of the organization's lines that name none (ISO 4217), then
    /// recalculate.
    #[arg(long)]
    pub default_currency: Option<String>,
    /// Report flights with radiative forcing (DESNZ's recommendation, the default for a new
    /// organization) or without, then recalculate.
    #[arg(long, value_enum)]
    pub flights_rf: Option<RfArg>,
    /// Corrected supplier data and lines for a restatement (with --preview or --restate): a
    /// JSON file `{"suppliers": [...], "transactions": [...]}`, each as the API's upserts
    /// take them. They are written even where they change a closed year.
    #[arg(long, value_name = "FILE.json")]
    pub corrections: Option<std::path::PathBuf>,
    /// With closed periods: show what the new settings would do to each closed year
    /// (disclosed against restated, per category), and change nothing.
    #[arg(long, conflicts_with = "restate")]
    pub preview: bool,
    /// With closed periods: apply the new settings as a restatement with this reason (each
    /// closed year gets a new inventory version; earlier versions stay readable).
    #[arg(long)]
    pub restate: Option<String>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RfArg {
    With,
    Without,
}

#[derive(Debug, Subcommand)]
pub enum FactorsCommand {
    /// Find factors whose key, name or unit contain all the words.
    Search(FactorSearchArgs),
    /// Show one factor with its gas split.
    Show(FactorShowArgs),
}

#[derive(Debug, Args)]
pub struct FactorSearchArgs {
    /// Words to look for, e.g. "HGV average laden t.km".
    pub text: Vec<String>,
    /// Only this factor set (epa-supply-chain or desnz).
    #[arg(long)]
    pub set: Option<String>,
    /// Only factors per this unit (desnz), e.g. tonne.km.
    #[arg(long)]
    pub unit: Option<String>,
    /// Only this region (US, UK, or a hotel-stay country).
    #[arg(long)]
    pub region: Option<String>,
    #[arg(long)]
    pub year: Option<u16>,
    #[arg(long, default_value_t = 25)]
    pub limit: usize,
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct FactorShowArgs {
    /// Factor set: epa-supply-chain or desnz.
    pub set: String,
    /// Factor key: a NAICS code for epa-supply-chain, a key from `factors search` for desnz.
    pub key: String,
    #[arg(long)]
    pub version: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum SuppliersCommand {
    /// List a supplier's intensity values, one per year.
    Intensities(SupplierIntensitiesArgs),
    /// Remove one year's value (`undated` for the value given without a year) and
    /// recalculate the supplier's lines.
    RemoveIntensity(SupplierRemoveIntensityArgs),
    /// Pairs of suppliers that may be one (a new name or id close to an existing
    /// supplier's), best score first.
    Matches(SupplierMatchesArgs),
    /// Merge supplier --from into --into: its lines, data and names follow.
    Merge(SupplierMergeArgs),
    /// Undo a merge by its id (`vcci suppliers merges`).
    Unmerge(SupplierMergeIdArgs),
    /// The organization's merges, newest first.
    Merges(OrgFormatArgs),
    /// Dismiss a pair: the two are different suppliers.
    Dismiss(SupplierMergeIdArgs),
    /// Names and merged ids that link to suppliers.
    Aliases(SupplierAliasesArgs),
}

#[derive(Debug, Args)]
pub struct SupplierMatchesArgs {
    #[arg(long)]
    pub org: String,
    /// open, merged, dismissed or all.
    #[arg(long, default_value = "open")]
    pub status: String,
    /// Only pairs of suppliers whose id or name contains this (case-insensitive).
    #[arg(long)]
    pub q: Option<String>,
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct SupplierMergeArgs {
    #[arg(long)]
    pub org: String,
    /// The supplier merged away (its id, or its name for a supplier known by name).
    #[arg(long)]
    pub from: String,
    /// The supplier that stays.
    #[arg(long)]
    pub into: String,
}

#[derive(Debug, Args)]
pub struct SupplierMergeIdArgs {
    #[arg(long)]
    pub org: String,
    pub id: i64,
}

#[derive(Debug, Args)]
pub struct SupplierAliasesArgs {
    #[arg(long)]
    pub org: String,
    /// Only this supplier's.
    #[arg(long)]
    pub supplier: Option<String>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct SupplierIntensitiesArgs {
    #[arg(long)]
    pub org: String,
    pub supplier_id: String,
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct SupplierRemoveIntensityArgs {
    #[arg(long)]
    pub org: String,
    pub supplier_id: String,
    /// The year (1990–2100), or `undated`.
    pub year: String,
}

#[derive(Debug, Subcommand)]
pub enum PeriodCommand {
    /// Close a year: its results become the next inventory version, and writes that would
    /// change it are refused.
    Close(PeriodYearArgs),
    /// Reopen a closed year, with a written reason.
    Reopen(PeriodReopenArgs),
    /// List the periods (years closed at least once) with their status and versions.
    List(OrgFormatArgs),
    /// Show one period, or with --version one inventory version's inventory (JSON).
    Show(PeriodShowArgs),
    /// Set the base year and the significance threshold of recalculations.
    BaseYear(BaseYearArgs),
}

#[derive(Debug, Args)]
pub struct BaseYearArgs {
    #[arg(long)]
    pub org: String,
    pub year: u16,
    /// A share: 0.05 is 5 %.
    #[arg(long, default_value_t = 0.05)]
    pub threshold: f64,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    #[arg(long)]
    pub org: String,
    #[arg(long)]
    pub year: u16,
    /// Also the total per unit of this denominator.
    #[arg(long)]
    pub denominator: Option<String>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub command: Option<AuditCommand>,
    #[command(flatten)]
    pub list: AuditListArgs,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the organization's hash chain from its first entry; names the first broken
    /// entry and exits non-zero if there is one.
    Verify(OrgFormatArgs),
}

#[derive(Debug, Args)]
pub struct AuditListArgs {
    /// Organization name.
    #[arg(long, required = true)]
    pub org: Option<String>,
    /// An action (import, lines.written, period.closed, …), or a family: `period.`.
    #[arg(long)]
    pub action: Option<String>,
    /// What the change was made to (a transaction id, a year, an import id, a supplier).
    #[arg(long)]
    pub subject: Option<String>,
    /// Only changes made with this API key id.
    #[arg(long)]
    pub key_id: Option<i64>,
    /// From this time (RFC 3339, or a date).
    #[arg(long)]
    pub since: Option<String>,
    /// Up to this time (RFC 3339, or a date: to its end).
    #[arg(long)]
    pub until: Option<String>,
    /// Only changes that wrote this line (by transaction_id): its history.
    #[arg(long)]
    pub line: Option<String>,
    /// Entries before this seq (the next page after a listing that ended at it).
    #[arg(long)]
    pub before: Option<i64>,
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

#[derive(Debug, Subcommand)]
pub enum PactCommand {
    /// Receive a supplier's product footprints from a JSON file: one ProductFootprint, an
    /// array of them, or a PACT list response (`{"data": [...]}`). Each is checked against
    /// the v3 data model; a broken one is reported with its id and every reason, the rest
    /// stored; the supplier's lines naming a product are recalculated.
    Import(PactImportArgs),
    /// The footprints received, by id, with their status and lineage.
    Footprints(PactListArgs),
    /// Publish the organization's own footprints to its customers (served at /3/footprints
    /// by `vcci serve` over HTTPS) from a JSON file. `id`, `created`, `specVersion` and
    /// `status` may be left out; a footprint of the same products as an Active one is its
    /// new version (the old one becomes Deprecated).
    Publish(PactPublishArgs),
    /// PACT API clients of the organization's customers.
    #[command(subcommand)]
    Clients(PactClientsCommand),
    /// Register a connection to a supplier's PACT host (the secret is read from the
    /// environment variable PACT_CLIENT_SECRET, or asked for on the terminal's stdin).
    Connect(PactConnectArgs),
    /// The organization's connections with their last sync.
    Connections(OrgFormatArgs),
    /// Pull a connection's footprints now (incremental by id), in this process.
    Sync(PactSyncArgs),
}

#[derive(Debug, Args)]
pub struct PactConnectArgs {
    #[arg(long)]
    pub org: String,
    #[arg(long)]
    pub supplier: String,
    /// The supplier's PACT host, https://…
    #[arg(long)]
    pub url: String,
    /// Its auth server (default: discovered from the host's openid-configuration).
    #[arg(long)]
    pub auth_url: Option<String>,
    #[arg(long)]
    pub client_id: String,
    #[arg(long, env = "PACT_CLIENT_SECRET", hide_env_values = true)]
    pub client_secret: Option<String>,
    /// A customer's host: tell it (PublishedEvent) of the footprints we publish.
    #[arg(long)]
    pub notify_published: bool,
    #[command(flatten)]
    pub pact: PactClientArgs,
}

#[derive(Debug, Args)]
pub struct PactSyncArgs {
    #[arg(long)]
    pub org: String,
    /// The connection's id (`vcci pact connections`).
    pub connection: String,
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    #[command(flatten)]
    pub pact: PactClientArgs,
}

#[derive(Debug, Args)]
pub struct PactPublishArgs {
    #[arg(long)]
    pub org: String,
    pub file: PathBuf,
    /// The URL customers reach the server at: customers' hosts marked `--notify-published`
    /// are told of the new footprints (by a running `vcci serve`). Without it, none is.
    #[arg(long, env = "VCCI_PUBLIC_URL")]
    pub public_url: Option<String>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

#[derive(Debug, Subcommand)]
pub enum PactClientsCommand {
    /// Create a client for a customer; prints its id and secret (shown once).
    Create(PactClientCreateArgs),
    /// The organization's clients (never their secrets).
    List(OrgFormatArgs),
    /// Revoke a client: its tokens stop working at once.
    Revoke(PactClientRevokeArgs),
}

#[derive(Debug, Args)]
pub struct PactClientCreateArgs {
    #[arg(long)]
    pub org: String,
    /// The customer's name.
    #[arg(long)]
    pub name: String,
}

#[derive(Debug, Args)]
pub struct PactClientRevokeArgs {
    #[arg(long)]
    pub org: String,
    pub client_id: String,
}

#[derive(Debug, Args)]
pub struct PactImportArgs {
    #[arg(long)]
    pub org: String,
    /// The supplier the footprints are from (lines name it in supplier_id).
    #[arg(long)]
    pub supplier: String,
    /// The JSON file.
    pub file: PathBuf,
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct PactListArgs {
    #[arg(long)]
    pub org: String,
    #[arg(long)]
    pub supplier: Option<String>,
    /// Only footprints of this product (a URN).
    #[arg(long)]
    pub product: Option<String>,
    /// Only Active or Deprecated footprints.
    #[arg(long)]
    pub status: Option<String>,
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

#[derive(Debug, Subcommand)]
pub enum TargetCommand {
    /// Record a target: --reduction-pct % less than the base year by the target year.
    Add(TargetAddArgs),
    /// The targets with their progress.
    List(TargetListArgs),
}

#[derive(Debug, Args)]
pub struct TargetAddArgs {
    #[arg(long)]
    pub org: String,
    #[arg(long)]
    pub name: String,
    /// Categories covered, e.g. 1,4,6 (default: all).
    #[arg(long, value_delimiter = ',')]
    pub categories: Vec<u8>,
    #[arg(long)]
    pub base_year: u16,
    #[arg(long)]
    pub target_year: u16,
    #[arg(long)]
    pub reduction_pct: f64,
}

#[derive(Debug, Args)]
pub struct TargetListArgs {
    #[arg(long)]
    pub org: String,
    /// The last year to show.
    #[arg(long)]
    pub through: Option<u16>,
}

#[derive(Debug, Args)]
pub struct DenominatorArgs {
    #[arg(long)]
    pub org: String,
    #[arg(long)]
    pub name: String,
    #[arg(long)]
    pub year: u16,
    #[arg(long)]
    pub value: f64,
    #[arg(long, default_value = "")]
    pub unit: String,
}

#[derive(Debug, Args)]
pub struct PeriodYearArgs {
    #[arg(long)]
    pub org: String,
    pub year: u16,
}

#[derive(Debug, Args)]
pub struct PeriodReopenArgs {
    #[arg(long)]
    pub org: String,
    pub year: u16,
    /// Why the disclosed year is reopened (recorded).
    #[arg(long)]
    pub reason: String,
}

#[derive(Debug, Args)]
pub struct OrgFormatArgs {
    #[arg(long)]
    pub org: String,
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct PeriodShowArgs {
    #[arg(long)]
    pub org: String,
    pub year: u16,
    #[arg(long)]
    pub version: Option<u32>,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create an API key; the key is printed once, alone on the last line of standard output.
    Create(KeyCreateArgs),
    /// Revoke an API key.
    Revoke(KeyRevokeArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RoleArg {
    Admin,
    Analyst,
    Viewer,
}

#[derive(Debug, Args)]
pub struct KeyCreateArgs {
    /// Organization (created if it does not exist).
    #[arg(long)]
    pub org: String,
    /// The currency of lines that name none, for an organization created here (default
    /// USD); an existing organization's must match.
    #[arg(long)]
    pub default_currency: Option<String>,
    #[arg(long, value_enum)]
    pub role: RoleArg,
}

#[derive(Debug, Args)]
pub struct KeyRevokeArgs {
    /// The key to revoke.
    pub key: String,
}
