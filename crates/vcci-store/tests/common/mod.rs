#![allow(dead_code)]

use std::io::Read;
use vcci_store::import::ImportTarget;

use vcci_core::catalog;
use vcci_store::import::{
    ImportError, ImportOptions, ImportReport, RejectsWriter, import_suppliers, import_transactions,
};
use vcci_store::{Org, Store};

pub struct TestStore {
    pub store: Store,
    pub db: vcci_store::testing::TestDb,
    pub _dir: tempfile::TempDir,
}

/// A fresh store: SQLite, or PostgreSQL when VCCI_TEST_DATABASE_URL is set.
pub fn store() -> TestStore {
    let dir = tempfile::tempdir().unwrap();
    let db = vcci_store::testing::fresh_store(dir.path()).unwrap();
    TestStore {
        store: db.store.clone(),
        db,
        _dir: dir,
    }
}

impl TestStore {
    pub fn org(&self, name: &str) -> Org {
        self.store.connect().unwrap().ensure_org(name).unwrap()
    }

    pub fn import_with(
        &self,
        org: &Org,
        input: impl Read,
        opts: &ImportOptions,
    ) -> (Result<ImportReport, ImportError>, String) {
        let mut rejects = RejectsWriter::new(Vec::new()).unwrap();
        let r = import_transactions(
            &ImportTarget {
                store: &self.store,
                catalog: catalog(),
                org,
                source: "test.csv",
                options: opts,
                actor: &vcci_store::Actor::system("test"),
            },
            input,
            &mut rejects,
            &mut |_| {},
        );
        (r, String::from_utf8(rejects.into_inner()).unwrap())
    }

    pub fn import(&self, org: &Org, csv: &str) -> (ImportReport, String) {
        let (r, rejects) = self.import_with(org, csv.as_bytes(), &ImportOptions::default());
        (r.unwrap(), rejects)
    }

    pub fn import_suppliers(&self, org: &Org, csv: &str) -> (ImportReport, String) {
        let mut rejects = RejectsWriter::new(Vec::new()).unwrap();
        let r = import_suppliers(
            &ImportTarget {
                store: &self.store,
                catalog: catalog(),
                org,
                source: "",
                options: &ImportOptions::default(),
                actor: &vcci_store::Actor::system("test"),
            },
            csv.as_bytes(),
            &mut rejects,
        )
        .unwrap();
        (r, String::from_utf8(rejects.into_inner()).unwrap())
    }

    /// Asserts the read models equal a recomputation from the lines.
    pub fn assert_read_models(&self, org: &Org) {
        let diffs = self
            .store
            .connect()
            .unwrap()
            .verify_read_models(org.id)
            .unwrap();
        assert!(diffs.is_empty(), "read models disagree: {diffs:#?}");
    }
}

pub fn close(a: f64, b: f64) {
    assert!((a - b).abs() <= 1e-6 * b.abs().max(1.0), "{a} != {b}");
}
