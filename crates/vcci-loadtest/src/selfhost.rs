//! `--self-host`: an in-process vcci server on loopback over a fresh demo dataset in a
//! temporary directory, for trying the load test without a deployment.

use std::sync::Arc;
use vcci_store::import::ImportTarget;

use vcci_store::Store;
use vcci_store::demo::{DemoSpec, generate};
use vcci_store::import::{ImportOptions, RejectsWriter, import_suppliers, import_transactions};
use vcci_store::model::keys::Role;

/// A running in-process server.
#[derive(Debug)]
pub struct SelfHost {
    pub url: String,
    pub key: String,
    pub app: Arc<vcci_server::App>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    background: Option<vcci_server::Background>,
    _dir: tempfile::TempDir,
}

/// Starts a server over `lines` demo lines (organization `loadtest`, an admin key).
pub async fn start(lines: usize) -> Result<SelfHost, String> {
    let dir = tempfile::tempdir().map_err(|e| format!("temporary directory: {e}"))?;
    let store = Store::open_dir(dir.path()).map_err(|e| e.to_string())?;
    let spec = DemoSpec {
        lines,
        suppliers: (lines / 60).clamp(10, 3000),
        ..DemoSpec::default()
    };
    let (mut sup, mut tx) = (Vec::new(), Vec::new());
    generate(&spec, &mut sup, &mut tx).map_err(|e| e.to_string())?;
    let key = {
        let db = store.connect().map_err(|e| e.to_string())?;
        let org = db.ensure_org("loadtest").map_err(|e| e.to_string())?;
        let opts = ImportOptions::default();
        let actor = vcci_store::Actor::system("loadtest setup");
        let mut rejects = RejectsWriter::new(std::io::sink()).map_err(|e| e.to_string())?;
        import_suppliers(
            &ImportTarget {
                store: &store,
                catalog: vcci_core::catalog(),
                org: &org,
                source: "",
                options: &opts,
                actor: &actor,
            },
            &sup[..],
            &mut rejects,
        )
        .map_err(|e| e.to_string())?;
        import_transactions(
            &ImportTarget {
                store: &store,
                catalog: vcci_core::catalog(),
                org: &org,
                source: "demo",
                options: &opts,
                actor: &actor,
            },
            &tx[..],
            &mut rejects,
            &mut |_| {},
        )
        .map_err(|e| e.to_string())?;
        db.create_key(org.id, Role::Admin, &actor)
            .map_err(|e| e.to_string())?
    };
    let app = vcci_server::App::new(
        store,
        vcci_server::AppConfig {
            rate_limit: vcci_server::RateLimit {
                rate: 0.0,
                burst: 0.0,
            },
            ..Default::default()
        },
    )
    .map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let background = app.start_background();
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(vcci_server::serve(
        listener,
        vcci_server::build_app(Arc::clone(&app)),
        async move {
            let _ = rx.await;
        },
    ));
    Ok(SelfHost {
        url: format!("http://{addr}"),
        key,
        app,
        stop: Some(stop),
        server: Some(server),
        background: Some(background),
        _dir: dir,
    })
}

impl SelfHost {
    /// Stops the server (finishing requests in flight) and its background work.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(s) = self.server.take() {
            let _ = s.await;
        }
        if let Some(b) = self.background.take() {
            b.stop().await;
        }
    }
}
