-- 030_control_plane.sql — what the control plane keeps: account credentials (all sealed by
-- base/secrets, bound to ('accounts', <column>, id)), the account's API tokens on its site
-- (synced or manual; keys sealed, bound to ('account_tokens', 'key', id)), check-in logs,
-- events, balance history, model prices, models per token, and job leases.

-- Credentials. credential_mode: 'apikey' (a relay key only, no management), 'session'
-- (access token / cookie / JWT, optionally with a password for automatic re-login).
ALTER TABLE accounts ADD COLUMN password_enc BLOB;
ALTER TABLE accounts ADD COLUMN totp_secret_enc BLOB;
ALTER TABLE accounts ADD COLUMN access_token_enc BLOB;
ALTER TABLE accounts ADD COLUMN refresh_token_enc BLOB;
ALTER TABLE accounts ADD COLUMN cookie_enc BLOB;
ALTER TABLE accounts ADD COLUMN user_id TEXT;
ALTER TABLE accounts ADD COLUMN access_expires_at INTEGER; -- unix seconds, NULL unknown
ALTER TABLE accounts ADD COLUMN credential_mode TEXT NOT NULL DEFAULT 'apikey'
    CHECK (credential_mode IN ('apikey', 'session'));
ALTER TABLE accounts ADD COLUMN status_reason TEXT; -- why the account is 'expired'
ALTER TABLE accounts ADD COLUMN display_name TEXT;  -- as the site shows the user
ALTER TABLE accounts ADD COLUMN user_group TEXT;
ALTER TABLE accounts ADD COLUMN quota_per_unit REAL;
ALTER TABLE accounts ADD COLUMN raw_quota INTEGER;
ALTER TABLE accounts ADD COLUMN currency TEXT;

-- The account's API keys on its site.
CREATE TABLE account_tokens (
    id            INTEGER PRIMARY KEY,
    account_id    INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    site_token_id TEXT, -- the site's own id (NULL for a key added by hand)
    name          TEXT NOT NULL DEFAULT '',
    key_enc       BLOB, -- NULL while the site only showed a masked key
    masked        TEXT NOT NULL DEFAULT '',
    token_group   TEXT,
    enabled       INTEGER NOT NULL DEFAULT 1,
    is_default    INTEGER NOT NULL DEFAULT 0,
    source        TEXT NOT NULL DEFAULT 'manual' CHECK (source IN ('manual', 'sync')),
    value_status  TEXT NOT NULL DEFAULT 'ready' CHECK (value_status IN ('ready', 'masked_pending')),
    unlimited     INTEGER NOT NULL DEFAULT 0,
    remain_quota  REAL, -- money unit, NULL unknown
    expires_at    INTEGER, -- unix seconds, -1 never, NULL unknown
    model_limits  TEXT,
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (account_id, site_token_id)
);
CREATE INDEX account_tokens_account ON account_tokens (account_id);

-- Models a token can use (GET /v1/models with that token).
CREATE TABLE token_models (
    token_id   INTEGER NOT NULL REFERENCES account_tokens (id) ON DELETE CASCADE,
    model_name TEXT NOT NULL,
    PRIMARY KEY (token_id, model_name)
) WITHOUT ROWID;

-- One row per check-in attempt. checkin_day is the local day (TZ) it counts for. The site
-- is the authority on its own day (it answers "already checked in"); scheduled runs skip
-- an account with a success logged for the local day without asking the site.
CREATE TABLE checkin_logs (
    id          INTEGER PRIMARY KEY,
    account_id  INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    status      TEXT NOT NULL CHECK (status IN ('success', 'failed', 'skipped')),
    message     TEXT NOT NULL DEFAULT '',
    reward      REAL, -- money unit, NULL unknown
    checkin_day TEXT NOT NULL,
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX checkin_logs_account ON checkin_logs (account_id, id);
CREATE INDEX checkin_logs_day ON checkin_logs (account_id, checkin_day, status);

-- The program log shown to the user (Metapi's events).
CREATE TABLE events (
    id           INTEGER PRIMARY KEY,
    type         TEXT NOT NULL,
    title        TEXT NOT NULL,
    message      TEXT NOT NULL DEFAULT '',
    level        TEXT NOT NULL DEFAULT 'info' CHECK (level IN ('info', 'warning', 'error')),
    read         INTEGER NOT NULL DEFAULT 0,
    related_id   INTEGER,
    related_type TEXT,
    created_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX events_type ON events (type, id);

CREATE TABLE balance_history (
    id          INTEGER PRIMARY KEY,
    account_id  INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    balance     REAL NOT NULL,
    used        REAL, -- NULL unknown
    recorded_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX balance_history_account ON balance_history (account_id, id);

-- Prices per account (token_id NULL) or per token, in the site's money unit.
CREATE TABLE model_prices (
    id                 INTEGER PRIMARY KEY,
    account_id         INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    token_id           INTEGER REFERENCES account_tokens (id) ON DELETE CASCADE,
    model              TEXT NOT NULL,
    input_per_million  REAL,
    output_per_million REAL,
    per_call           REAL,
    price_group        TEXT,
    updated_at         TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE UNIQUE INDEX model_prices_key ON model_prices (account_id, ifnull(token_id, 0), model);

-- One holder per scheduled job at a time (several nodes on one database).
CREATE TABLE job_leases (
    name     TEXT PRIMARY KEY,
    holder   TEXT NOT NULL,
    until_ms INTEGER NOT NULL
) WITHOUT ROWID;
