-- The mesh model as versioned documents, a global revision, and the references between them.

-- One row: bumped first in every write transaction, so writers are serialised and revision
-- order is commit order.
CREATE TABLE mesh_revision (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    revision BIGINT   NOT NULL
);
INSERT INTO mesh_revision (id, revision) VALUES (1, 0);

CREATE TABLE resources (
    kind       TEXT        NOT NULL,
    name       TEXT        NOT NULL,
    version    BIGINT      NOT NULL,  -- per resource, bumped on every write
    revision   BIGINT      NOT NULL,  -- the global revision of its last write
    spec       TEXT        NOT NULL,
    created_at TEXT        NOT NULL,
    updated_at TEXT        NOT NULL,
    PRIMARY KEY (kind, name)
);

CREATE TABLE resource_refs (
    from_kind TEXT    NOT NULL,
    from_name TEXT    NOT NULL,
    to_kind   TEXT    NOT NULL,
    to_name   TEXT    NOT NULL,
    owned     INTEGER NOT NULL,   -- the referrer is deleted with its target
    PRIMARY KEY (from_kind, from_name, to_kind, to_name),
    FOREIGN KEY (from_kind, from_name) REFERENCES resources (kind, name) ON DELETE CASCADE,
    FOREIGN KEY (to_kind, to_name) REFERENCES resources (kind, name)
);
CREATE INDEX resource_refs_target ON resource_refs (to_kind, to_name);
