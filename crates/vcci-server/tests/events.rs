//! Live updates: `GET /api/v1/events` (Server-Sent Events) through the real router.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tower::ServiceExt;

mod common;
use common::{blocking, call, config, get};

/// One event as a client parses it.
#[derive(Debug, Clone, Default)]
struct Ev {
    id: Option<String>,
    event: String,
    data: Value,
}

/// An open stream: the response body, read as text and split into events.
struct Sse {
    body: axum::body::BodyDataStream,
    buf: String,
    /// Heartbeat comments seen.
    comments: usize,
    ended: bool,
}

impl Sse {
    /// The next event (skipping comments), or None when the stream ended or nothing came
    /// within `within`.
    async fn next(&mut self, within: Duration) -> Option<Ev> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            while let Some(at) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..at + 2).collect();
                let mut ev = Ev::default();
                let mut data = String::new();
                let mut any = false;
                for line in block.lines() {
                    if line.starts_with(':') {
                        self.comments += 1;
                    } else if let Some((k, v)) = line.split_once(':') {
                        let v = v.strip_prefix(' ').unwrap_or(v);
                        any = true;
                        match k {
                            "id" => ev.id = Some(v.to_owned()),
                            "event" => ev.event = v.to_owned(),
                            "data" => data.push_str(v),
                            _ => {}
                        }
                    }
                }
                if any && !ev.event.is_empty() {
                    ev.data = serde_json::from_str(&data).unwrap_or(Value::Null);
                    return Some(ev);
                }
            }
            if self.ended {
                return None;
            }
            match tokio::time::timeout_at(deadline, self.body.next()).await {
                Ok(Some(Ok(b))) => self.buf.push_str(std::str::from_utf8(&b).unwrap()),
                Ok(_) => self.ended = true,
                Err(_) => return None,
            }
        }
    }

    /// The next event of `kind` within `within`, skipping others.
    async fn next_of(&mut self, kind: &str, within: Duration) -> Option<Ev> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let ev = self.next(left).await?;
            if ev.event == kind {
                return Some(ev);
            }
        }
    }
}

const WAIT: Duration = Duration::from_secs(20);

async fn open(
    router: &Router,
    key: Option<&str>,
    last: Option<&str>,
) -> (StatusCode, HeaderMap, Sse) {
    let mut r = Request::builder().uri("/api/v1/events");
    if let Some(k) = key {
        r = r.header("authorization", format!("Bearer {k}"));
    }
    if let Some(l) = last {
        r = r.header("last-event-id", l);
    }
    // A compressed stream would hold events back: the client asks for gzip anyway.
    r = r.header("accept-encoding", "gzip");
    let res = router
        .clone()
        .oneshot(r.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let (parts, body) = res.into_parts();
    (
        parts.status,
        parts.headers,
        Sse {
            body: body.into_data_stream(),
            buf: String::new(),
            comments: 0,
            ended: false,
        },
    )
}

struct Node {
    app: Arc<vcci_server::App>,
    router: Router,
}

fn node(store: &vcci_store::Store, tune: impl FnOnce(&mut vcci_server::AppConfig)) -> Node {
    let mut c = config(store);
    c.poll_interval = Duration::from_millis(50);
    tune(&mut c);
    let app = vcci_server::App::new(store.clone(), c).unwrap();
    Node {
        router: vcci_server::build_app(Arc::clone(&app)),
        app,
    }
}

struct Fixture {
    _db: vcci_store::testing::TestDb,
    _dir: tempfile::TempDir,
    store: vcci_store::Store,
    admin: String,
    other: String,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let db = vcci_store::testing::fresh_store(dir.path()).unwrap();
    let store = db.store.clone();
    let keys = blocking(|| common::seed(&store));
    Fixture {
        _db: db,
        _dir: dir,
        store,
        admin: keys.0,
        other: keys.3,
    }
}

async fn write_line(router: &Router, key: &str, id: &str) {
    let (s, v) = call(
        router,
        "POST",
        "/api/v1/transactions",
        Some(key),
        Some(json!({"transactions": [{"transaction_id": id, "date": "2023-05-01", "amount": 10, "naics_code": "484121"}]})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

#[tokio::test]
async fn a_stream_needs_a_key_and_starts_with_ready() {
    let f = fixture();
    let n = node(&f.store, |_| {});
    let (s, _, mut sse) = open(&n.router, None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let _ = sse.next(Duration::from_millis(10)).await;
    let (s, h, mut sse) = open(&n.router, Some(&f.admin), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["content-type"], "text/event-stream");
    assert!(
        h.get("content-encoding").is_none(),
        "an event stream is never compressed"
    );
    assert_eq!(h["cache-control"], "no-cache");
    let ready = sse.next(WAIT).await.unwrap();
    assert_eq!(ready.event, "ready");
    assert_eq!(ready.id, None, "ready is not an event to resume after");
    assert!(ready.data["generation"].as_u64().unwrap() >= 1);
    assert_eq!(ready.data["resumed"], false);
    let (_, _, m) = get(&n.router, "/metrics", None).await;
    assert!(m.contains("\nvcci_events_streams 1\n"), "{m}");
    drop(sse);
    let (_, _, m) = get(&n.router, "/metrics", None).await;
    assert!(m.contains("\nvcci_events_streams 0\n"));
}

#[tokio::test]
async fn writes_jobs_and_periods_reach_their_organization_and_no_other() {
    let f = fixture();
    let n = node(&f.store, |_| {});
    let bg = n.app.start_background();
    let (_, _, mut acme) = open(&n.router, Some(&f.admin), None).await;
    let (_, _, mut other) = open(&n.router, Some(&f.other), None).await;
    let g0 = acme.next(WAIT).await.unwrap().data["generation"]
        .as_u64()
        .unwrap();
    other.next(WAIT).await.unwrap();

    // A write: `data` with the new generation.
    write_line(&n.router, &f.admin, "live-1").await;
    let d = acme.next_of("data", WAIT).await.unwrap();
    assert!(d.data["generation"].as_u64().unwrap() > g0, "{:?}", d);
    assert!(d.id.is_some());

    // An import job: queued, running, then its end, each as the job route shows it.
    let csv = "transaction_id,date,amount,currency,naics_code\nj1,2023-01-02,100,USD,484121\nj2,2023-01-03,oops,USD,484121\n";
    let (st, v) = common::upload(&n.router, &f.admin, csv, "text/csv").await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    let job_id = v["job_id"].as_str().unwrap().to_owned();
    let mut statuses = Vec::new();
    let last = loop {
        let j = acme.next_of("job", WAIT).await.expect("job events");
        assert_eq!(j.data["job_id"], job_id.as_str());
        assert_eq!(j.data["kind"], "import");
        assert!(
            j.data.get("errors").is_none(),
            "the rejected lines stay in the job"
        );
        let s = j.data["status"].as_str().unwrap().to_owned();
        if statuses.last() != Some(&s) {
            statuses.push(s.clone());
        }
        if s == "succeeded" || s == "failed" {
            break j;
        }
    };
    // Queued, unless this node's worker claimed it before the route read it back (the
    // worker is running here; `a_queued_job_is_announced_as_queued` has none).
    assert!(
        matches!(
            statuses.first().map(String::as_str),
            Some("queued" | "running")
        ),
        "{statuses:?}"
    );
    assert!(statuses.contains(&"running".to_owned()), "{statuses:?}");
    assert_eq!(statuses.last().map(String::as_str), Some("succeeded"));
    assert_eq!(last.data["result"]["accepted"], 1);
    assert_eq!(last.data["result"]["rejected"], 1);
    assert_eq!(last.data["errors_listed"], 1);
    let (_, full) = call(
        &n.router,
        "GET",
        &format!("/api/v1/jobs/{job_id}"),
        Some(&f.admin),
        None,
    )
    .await;
    assert_eq!(full["result"], last.data["result"]);
    assert_eq!(full["progress"], last.data["progress"]);

    // Closing a year: `period`.
    let (s, v) = call(
        &n.router,
        "POST",
        "/api/v1/periods/2022/close",
        Some(&f.admin),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let p = acme.next_of("period", WAIT).await.unwrap();
    assert_eq!(
        (p.data["year"].as_i64(), p.data["status"].as_str()),
        (Some(2022), Some("closed"))
    );
    // A restatement of the closed year: its period has a new version.
    let (s, v) = call(
        &n.router,
        "POST",
        "/api/v1/restatements",
        Some(&f.admin),
        Some(json!({"epa_version": "1.2", "reason": "comparability"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let p = acme.next_of("period", WAIT).await.unwrap();
    assert_eq!(p.data["year"], 2022);
    assert_eq!(
        p.data["versions"].as_array().map(Vec::len),
        Some(2),
        "{:?}",
        p.data
    );

    // The other organization saw none of it: its first event after `ready` is its own write.
    write_line(&n.router, &f.other, "other-1").await;
    let first = other.next(WAIT).await.unwrap();
    assert_eq!(first.event, "data", "{first:?}");
    assert!(
        other.next(Duration::from_millis(300)).await.is_none(),
        "nothing of acme's"
    );
    bg.stop().await;
}

#[tokio::test]
async fn a_queued_job_is_announced_as_queued() {
    let f = fixture();
    // No worker on this node (nor any other): the job stays queued.
    let n = node(&f.store, |_| {});
    let (_, _, mut s) = open(&n.router, Some(&f.admin), None).await;
    s.next(WAIT).await.unwrap();
    let (st, v) = call(
        &n.router,
        "POST",
        "/api/v1/reports",
        Some(&f.admin),
        Some(json!({"report_type": "by_category", "date_from": "2022-01-01", "date_to": "2023-12-31"})),
    )
    .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    let j = s.next_of("job", WAIT).await.unwrap();
    assert_eq!(
        (
            &j.data["job_id"],
            j.data["kind"].as_str(),
            j.data["status"].as_str()
        ),
        (&v["job_id"], Some("report"), Some("queued"))
    );
}

#[tokio::test]
async fn a_stream_resumes_after_its_last_event_and_resets_outside_the_window() {
    let f = fixture();
    let n = node(&f.store, |_| {});
    let (_, _, mut s) = open(&n.router, Some(&f.admin), None).await;
    s.next(WAIT).await.unwrap();
    write_line(&n.router, &f.admin, "r-1").await;
    let seen = s.next_of("data", WAIT).await.unwrap();
    drop(s);
    // Missed while away: two writes.
    write_line(&n.router, &f.admin, "r-2").await;
    write_line(&n.router, &f.admin, "r-3").await;
    let (_, _, mut s) = open(&n.router, Some(&f.admin), seen.id.as_deref()).await;
    let ready = s.next(WAIT).await.unwrap();
    assert_eq!(
        (ready.event.as_str(), &ready.data["resumed"]),
        ("ready", &json!(true))
    );
    let a = s.next(WAIT).await.unwrap();
    let b = s.next(WAIT).await.unwrap();
    assert_eq!((a.event.as_str(), b.event.as_str()), ("data", "data"));
    let g = |e: &Ev| e.data["generation"].as_u64().unwrap();
    assert!(g(&seen) < g(&a) && g(&a) < g(&b), "{seen:?} {a:?} {b:?}");
    assert!(
        s.next(Duration::from_millis(200)).await.is_none(),
        "nothing twice"
    );
    // An id this node never gave (another node's, a restarted one's, garbage): reset.
    for bad in ["0badc0de-3", "x".repeat(500).as_str()] {
        let (st, _, mut s) = open(&n.router, Some(&f.admin), Some(bad)).await;
        assert_eq!(st, StatusCode::OK);
        let ready = s.next(WAIT).await.unwrap();
        assert_eq!(ready.data["resumed"], false);
        let r = s.next(WAIT).await.unwrap();
        assert_eq!(
            (r.event.as_str(), &r.data["reason"]),
            ("reset", &json!("outside_window"))
        );
    }
    // Another organization's id replays nothing of that organization's: a replay is of the
    // caller's own events only (here it has none, and its window is new: `reset`).
    let (_, _, mut o) = open(&n.router, Some(&f.other), seen.id.as_deref()).await;
    assert_eq!(o.next(WAIT).await.unwrap().event, "ready");
    while let Some(ev) = o.next(Duration::from_millis(200)).await {
        assert_eq!(ev.event, "reset", "nothing of acme's: {ev:?}");
    }
}

#[tokio::test]
async fn idle_streams_get_heartbeats() {
    let f = fixture();
    let n = node(&f.store, |c| c.events_heartbeat = Duration::from_millis(30));
    let (_, _, mut s) = open(&n.router, Some(&f.admin), None).await;
    s.next(WAIT).await.unwrap();
    assert!(s.next(Duration::from_millis(200)).await.is_none());
    assert!(s.comments >= 2, "{} heartbeats", s.comments);
}

#[tokio::test]
async fn a_revoked_key_ends_its_stream_and_a_stopping_node_ends_all() {
    let f = fixture();
    let n = node(&f.store, |_| {});
    let key = common::create_key(&f.store, "acme", vcci_store::model::keys::Role::Viewer);
    let (_, _, mut doomed) = open(&n.router, Some(&key), None).await;
    let (_, _, mut kept) = open(&n.router, Some(&f.admin), None).await;
    doomed.next(WAIT).await.unwrap();
    kept.next(WAIT).await.unwrap();
    assert!(common::revoke_key(&f.store, &key));
    n.app.poll_generations().await.unwrap();
    let end = doomed.next_of("end", WAIT).await.expect("the stream ends");
    assert_eq!(end.data["reason"], "key_revoked");
    assert!(
        doomed.next(WAIT).await.is_none() && doomed.ended,
        "and closes"
    );
    write_line(&n.router, &f.admin, "k-1").await;
    assert_eq!(kept.next_of("data", WAIT).await.unwrap().event, "data");
    // The key's new stream is refused like any request.
    let (s, _, _) = open(&n.router, Some(&key), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    n.app.begin_shutdown();
    let end = kept.next_of("end", WAIT).await.unwrap();
    assert_eq!(end.data["reason"], "shutting_down");
    assert!(kept.next(WAIT).await.is_none() && kept.ended);
}

#[tokio::test]
async fn a_node_holds_at_most_its_stream_limit() {
    let f = fixture();
    let n = node(&f.store, |c| c.events_max_streams = 1);
    let (s, _, _held) = open(&n.router, Some(&f.admin), None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, mut refused) = open(&n.router, Some(&f.admin), None).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    let mut body = String::new();
    while let Some(Ok(b)) = refused.body.next().await {
        body.push_str(std::str::from_utf8(&b).unwrap());
    }
    assert!(body.contains("too_many_streams"), "{body}");
}

#[tokio::test]
async fn events_cross_nodes() {
    let f = fixture();
    let a = node(&f.store, |_| {});
    let b = node(&f.store, |_| {});
    let bg_a = a.app.start_background();
    let bg_b = b.app.start_background();
    let (_, _, mut on_b) = open(&b.router, Some(&f.admin), None).await;
    let g0 = on_b.next(WAIT).await.unwrap().data["generation"]
        .as_u64()
        .unwrap();
    // A write on node A reaches node B's streams: through Redis when configured, else
    // through B's poll of the database.
    write_line(&a.router, &f.admin, "x-1").await;
    let d = on_b.next_of("data", WAIT).await.unwrap();
    assert!(d.data["generation"].as_u64().unwrap() > g0);
    if common::redis_url().is_some() {
        // A year closed on A: B's streams get the `period` event through Redis.
        let (s, _) = call(
            &a.router,
            "POST",
            "/api/v1/periods/2022/close",
            Some(&f.admin),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::OK);
        let p = on_b.next_of("period", WAIT).await.unwrap();
        assert_eq!(p.data["status"], "closed");
        let (_, _, m) = get(&b.router, "/metrics", None).await;
        assert!(!m.contains("\nvcci_events_remote_total 0\n"), "{m}");
    }
    bg_a.stop().await;
    bg_b.stop().await;
}

#[tokio::test]
async fn the_review_queue_size_follows_writes_and_reviews() {
    let f = fixture();
    let n = node(&f.store, |_| {});
    let bg = n.app.start_background();
    let (_, _, mut acme) = open(&n.router, Some(&f.admin), None).await;
    let (_, _, mut other) = open(&n.router, Some(&f.other), None).await;
    acme.next(WAIT).await.unwrap();
    other.next(WAIT).await.unwrap();
    // A line with nothing to classify from: flagged for review.
    let (s, v) = call(
        &n.router,
        "POST",
        "/api/v1/transactions",
        Some(&f.admin),
        Some(json!({"transactions": [{"transaction_id": "r1", "date": "2023-05-01", "amount": 40, "currency": "USD", "description": "INV-2231"}]})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let e = acme.next_of("review", WAIT).await.expect("a review event");
    assert_eq!(e.data["lines"], 1, "{e:?}");
    assert_eq!(e.data["spend_usd"], 40.0);
    // Reviewed: the queue is empty.
    let (s, v) = call(
        &n.router,
        "POST",
        "/api/v1/classification/review",
        Some(&f.admin),
        Some(json!({"items": [{"transaction_id": "r1", "naics_code": "541511"}]})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let e = acme.next_of("review", WAIT).await.expect("a review event");
    assert_eq!(e.data["lines"], 0, "{e:?}");
    // A write that leaves the queue as it is: no review event, only data.
    write_line(&n.router, &f.admin, "coded-1").await;
    acme.next_of("data", WAIT).await.unwrap();
    write_line(&n.router, &f.admin, "coded-2").await;
    let d = acme.next(WAIT).await.unwrap();
    assert_eq!(d.event, "data", "{d:?}");
    // The other organization heard none of it.
    while let Some(ev) = other.next(Duration::from_millis(200)).await {
        assert_ne!(ev.event, "review", "{ev:?}");
    }
    bg.stop().await;
}
