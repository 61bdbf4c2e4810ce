-- Server-side secrets shared by every API node using this database (e.g. the key that signs
-- pagination cursors). Never returned by the API.
CREATE TABLE server_secrets (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
) WITHOUT ROWID;
