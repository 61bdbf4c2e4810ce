//! The router and the serve seam used by `vcci serve`, by tests and by the load tester, and
//! the node's background work (generation poll, Redis listener, job worker).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::DefaultBodyLimit;

use crate::app::{App, MAX_JSON_BODY};
use crate::error::ApiError;

impl App {
    /// Starts the node's background work: the generation poll and the job worker. Returns
    /// a handle that stops them (waiting for a running job to reach a safe point).
    pub fn start_background(self: &Arc<Self>) -> Background {
        let app = Arc::clone(self);
        let poll = tokio::spawn(async move {
            let mut tick = tokio::time::interval(app.config.poll_interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = app.poll_generations().await {
                    tracing::warn!(error = %e.message, "polling generations");
                }
            }
        });
        let worker = tokio::spawn(crate::jobs::worker(Arc::clone(self)));
        // The review queue's size, for the streams of organizations whose data changed.
        let app = Arc::clone(self);
        let review = tokio::spawn(async move {
            loop {
                for org in app.review_sizes.next().await {
                    if !app.live.has_streams(org) {
                        continue;
                    }
                    let id = vcci_store::OrgId(org);
                    match app.db(move |db| db.review_queue_size(id)).await {
                        Ok(size) => {
                            let data = serde_json::json!(size).to_string();
                            if app.review_sizes.changed(org, &data, size.lines == 0) {
                                app.live.emit(org, "review", data);
                            }
                        }
                        Err(e) => {
                            tracing::warn!(org, error = %e.message, "reading a review queue's size")
                        }
                    }
                }
            }
        });
        // `/ready` says `warming` from here, not from when the task first runs: a request
        // served before then must not find the node ready and its cache cold.
        if self.config.warm_orgs > 0 {
            self.warming
                .store(true, std::sync::atomic::Ordering::Release);
        }
        let warm = tokio::spawn(Arc::clone(self).warm_and_watch());
        if let Some(r) = &self.redis {
            let r = Arc::clone(r);
            tokio::spawn(async move {
                r.probe().await;
            });
        }
        let listen = self.redis.as_ref().map(|r| {
            let app = Arc::downgrade(self);
            tokio::spawn(Arc::clone(r).listen(move |ev| {
                let Some(app) = app.upgrade() else { return };
                match ev {
                    crate::shared::Event::Generation { org, generation } => {
                        app.observe_generation(org, generation);
                    }
                    crate::shared::Event::KeyRevoked => app.keys_revoked(),
                    crate::shared::Event::JobQueued => app.jobs_queued.notify_one(),
                    crate::shared::Event::Live {
                        node,
                        org,
                        kind,
                        data,
                    } => {
                        // This node's own events reached its streams when emitted.
                        if node != app.node {
                            app.live.emit_remote(org, &kind, data);
                        }
                    }
                }
            }))
        });
        // Live events for the other nodes, sent in order through Redis.
        let relay = match (&self.redis, self.live.take_outbox()) {
            (Some(r), Some(mut outbox)) => {
                let (r, node) = (Arc::clone(r), self.node.clone());
                Some(tokio::spawn(async move {
                    while let Some(ev) = outbox.recv().await {
                        r.publish(crate::shared::Event::Live {
                            node: node.clone(),
                            org: ev.org,
                            kind: ev.kind.into(),
                            data: ev.data,
                        })
                        .await;
                    }
                }))
            }
            _ => None,
        };
        Background {
            app: Arc::clone(self),
            poll,
            review,
            worker,
            listen,
            relay,
            warm,
        }
    }
}

/// The background tasks of a node.
#[derive(Debug)]
pub struct Background {
    app: Arc<App>,
    poll: tokio::task::JoinHandle<()>,
    review: tokio::task::JoinHandle<()>,
    worker: tokio::task::JoinHandle<()>,
    listen: Option<tokio::task::JoinHandle<()>>,
    relay: Option<tokio::task::JoinHandle<()>>,
    warm: tokio::task::JoinHandle<()>,
}

impl Background {
    /// Stops the poll and the job worker; a running import stops after its current batch
    /// and is queued again, to resume on the next start.
    pub async fn stop(self) {
        self.app.stopping.store(true, Ordering::Relaxed);
        self.app.live.close();
        if let Some(r) = &self.relay {
            r.abort();
        }
        self.app.jobs_queued.notify_waiters();
        self.poll.abort();
        self.review.abort();
        self.warm.abort();
        if let Some(l) = &self.listen {
            l.abort();
        }
        let _ = self.worker.await;
    }
}

/// The whole HTTP API over `app`.
pub fn build_app(app: Arc<App>) -> Router {
    crate::routes::router()
        .fallback(|| async { ApiError::not_found("route") })
        .layer(axum::middleware::from_fn(crate::conditional::etag))
        // Outside the ETag layer: tags are computed on the identity body, and being weak
        // they stand for every content-coding.
        .layer(
            tower_http::compression::CompressionLayer::new().compress_when(
                tower_http::compression::Predicate::and(
                    tower_http::compression::predicate::SizeAbove::new(1024),
                    // Live events go out as they happen, never held in a compressor.
                    tower_http::compression::predicate::NotForContentType::const_new(
                        "text/event-stream",
                    ),
                ),
            ),
        )
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&app),
            crate::middleware::timeout,
        ))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&app),
            crate::middleware::track,
        ))
        .layer(axum::middleware::from_fn(crate::middleware::request_id))
        .with_state(app)
}

/// Serves `router` on `listener` until `shutdown` completes, then finishes in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // As a make-service: axum's `Router` served directly rebuilds its route table for every
    // connection (`with_state`), measured at ~100 KiB per open connection (heaptrack).
    axum::serve(listener, router.into_make_service())
        .with_graceful_shutdown(shutdown)
        .await
}

/// The certificate and key a node serves TLS with (PEM files).
pub fn tls_config(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<Arc<rustls::ServerConfig>, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("{}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate (PEM) in it", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
    // ring, not aws-lc-rs (rustls' default): no C/CMake build, and the same provider the
    // PACT client uses. rustls deprecates it for lacking post-quantum key exchange.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("the certificate and key do not make a TLS configuration: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Serves `router` over TLS on `listener` until `shutdown` completes, then finishes
/// in-flight requests (at most 30 s). Requests carry the [`crate::pact::Tls`] extension,
/// which the PACT routes require. A handshake that fails or stalls (10 s) drops only its
/// connection.
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    router: Router,
    tls: Arc<rustls::ServerConfig>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::TokioIo;
    use hyper_util::service::TowerToHyperService;
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let router = router.layer(axum::Extension(crate::pact::Tls));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, _) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: wait and go on accepting.
                    tracing::warn!(error = %e, "accepting a TLS connection");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let service = TowerToHyperService::new(router.clone());
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(
                std::time::Duration::from_secs(10),
                acceptor.accept(tcp),
            )
            .await
            {
                Ok(Ok(s)) => s,
                _ => return,
            };
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            let _ = watcher.watch(conn).await;
        });
    }
    let _ = tokio::time::timeout(std::time::Duration::from_secs(30), graceful.shutdown()).await;
    Ok(())
}
