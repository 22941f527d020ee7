-- 001_init.sql — the first schema: metadata, sites, accounts, discovered models, usage logs
-- and runtime settings. Applied inside a transaction by the migration runner, which also
-- records it in schema_migrations. Timestamps of configuration rows are ISO-8601 UTC text
-- (what the admin API shows); usage rows keep integer milliseconds, which index and
-- compare cheaply at high write rates.

-- Internal key/value state of the store itself (the KDF salt, the key check value).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
) WITHOUT ROWID;

-- Upstream relay stations and providers.
CREATE TABLE sites (
    id             INTEGER PRIMARY KEY,
    name           TEXT NOT NULL CHECK (length(name) > 0),
    url            TEXT NOT NULL,
    platform       TEXT NOT NULL,
    status         TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    proxy_url      TEXT,
    custom_headers TEXT, -- JSON object of string values, or NULL
    created_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (platform, url)
);

-- One credential on a site. api_token_enc is sealed by base/secrets (never in clear),
-- bound to ('accounts', 'api_token', id).
CREATE TABLE accounts (
    id              INTEGER PRIMARY KEY,
    site_id         INTEGER NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    username        TEXT,
    api_token_enc   BLOB,
    status          TEXT NOT NULL DEFAULT 'active'
                    CHECK (status IN ('active', 'disabled', 'expired')),
    balance         REAL NOT NULL DEFAULT 0,
    balance_used    REAL NOT NULL DEFAULT 0,
    quota           REAL NOT NULL DEFAULT 0,
    checkin_enabled INTEGER NOT NULL DEFAULT 1,
    last_checkin_at TEXT,
    last_balance_refresh TEXT,
    created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX accounts_site_id ON accounts (site_id);

-- Models discovered per account.
CREATE TABLE account_models (
    id         INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    model_name TEXT NOT NULL,
    available  INTEGER NOT NULL DEFAULT 1,
    checked_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (account_id, model_name)
);

-- One row per upstream attempt (store/usage_queue.h). No foreign keys: logs outlive the
-- sites and accounts they mention. Indexes serve the admin filters (newest first, by
-- status, by requested model) and the retention delete (created_at).
CREATE TABLE usage_logs (
    id                INTEGER PRIMARY KEY,
    created_at        INTEGER NOT NULL, -- ms since the epoch (UTC)
    request_id        TEXT NOT NULL DEFAULT '',
    downstream_path   TEXT NOT NULL DEFAULT '',
    model_requested   TEXT NOT NULL DEFAULT '',
    model_actual      TEXT NOT NULL DEFAULT '',
    account_id        INTEGER, -- NULL when no channel was tried
    site_id           INTEGER,
    downstream_key_id INTEGER, -- NULL = the global PROXY_TOKEN
    status            TEXT NOT NULL CHECK (status IN ('success', 'failed')),
    http_status       INTEGER NOT NULL DEFAULT 0,
    is_stream         INTEGER NOT NULL DEFAULT 0,
    attempt           INTEGER NOT NULL DEFAULT 0,
    first_byte_ms     INTEGER, -- NULL when no byte arrived
    latency_ms        INTEGER NOT NULL DEFAULT 0,
    prompt_tokens     INTEGER, -- NULL when unknown
    completion_tokens INTEGER,
    total_tokens      INTEGER,
    overhead_us       INTEGER NOT NULL DEFAULT 0,
    client_ip         TEXT NOT NULL DEFAULT '',
    error_message     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX usage_logs_created_at ON usage_logs (created_at);
CREATE INDEX usage_logs_status_created_at ON usage_logs (status, created_at);
CREATE INDEX usage_logs_model_created_at ON usage_logs (model_requested, created_at);

-- Runtime-editable settings; value is JSON text.
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL CHECK (json_valid(value))
) WITHOUT ROWID;
